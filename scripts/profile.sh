#!/usr/bin/env bash
# Where the cycles go: a flat `perf` profile (self time per function) of `llmzip compress` and
# `decompress` with one model on one file, with the functions grouped into the pipeline's parts.
#
#   scripts/profile.sh [MODEL] [FILE] [THREADS]     # default: gru4-cm5, data/test/alice29.txt, 1
#
# Prints one table per direction: the share of samples per part of the pipeline (the GRU's
# matrix products and activations, the context mixing's parts, the coder, memory, thread
# hand-offs). Needs `perf` (Debian's linux-perf; installed here when missing) and
# target/release/llmzip (LLMZIP_BIN=path profiles another build).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-gru4-cm5}"
file="${2:-data/test/alice29.txt}"
threads="${3:-1}"
command -v perf >/dev/null || { apt-get install -y -q linux-perf >&2; }
bin="${LLMZIP_BIN:-target/release/llmzip}"
[ -x "$bin" ] || cargo build --release >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "model $model, $(basename "$file") ($(stat -c %s "$file") bytes), $threads thread(s);" \
  "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs"
# Each sample goes to the innermost llmzip module on its call stack (models::matmul,
# models::bit_mix, mixing::context, coder::…); samples in no llmzip code go to page zeroing and
# copies, or to thread hand-offs (rayon's job queue, the scheduler), or to "other".
fold='
import collections, re, sys
counts, total, stack = collections.Counter(), 0, []
def flush():
    global total
    if not stack:
        return
    total += 1
    head, key = " ".join(stack[:3]), None
    if re.search(r"clear_page|page_fault|folio_zero|memset|memmove|memcpy", head):
        key = "(memory: zeroing new pages, copies)"
    for frame in ([] if key else stack):
        m = re.search(r"llmzip::(?:unstable::)?((?:models|mixing|coder|codec|format|tokenization|stats|tensors)::\w+)", frame)
        if m:
            key = m.group(1)
            break
    if key is None:
        if re.search(r"sched|futex|switch|yield|spin|rayon|crossbeam|wake|Condvar|syscall", " ".join(stack[:40])):
            key = "(thread hand-offs: rayon, scheduler)"
        else:
            key = "(other)"
    counts[key] += 1
for line in sys.stdin:
    if line.startswith(("\t", "        ")) and line.strip():
        parts = line.strip().split(" ", 1)
        if len(parts) == 2:
            stack.append(parts[1])
    else:
        flush()
        stack.clear()
flush()
print("| where (innermost llmzip module) | share of samples |")
print("|---|---:|")
for k, v in counts.most_common(14):
    print(f"| {k} | {100 * v / max(total, 1):.1f} % |")
print(f"\n{total} samples")
'
for direction in compress decompress; do
  if [ "$direction" = compress ]; then
    args=(compress -m "$model" -f "$file" -o "$work/a.llmz")
  else
    args=(decompress -f "$work/a.llmz" -o "$work/back")
  fi
  start=$(date +%s.%N)
  perf record -q --call-graph dwarf,16384 -F 499 -o "$work/perf.data" -- \
    "$bin" -q --threads "$threads" "${args[@]}" 2>/dev/null
  end=$(date +%s.%N)
  echo
  echo "## $direction ($(echo "$end - $start" | bc | cut -c1-5) s wall under perf)"
  echo
  perf script -i "$work/perf.data" 2>/dev/null | python3 -c "$fold"
done
cmp "$file" "$work/back" && echo && echo "(round trip checked)"
