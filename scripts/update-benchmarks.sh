#!/usr/bin/env bash
# Regenerates docs/benchmarks.md (and docs/bench/: CSV, JSON, plots) by running `llmzip bench`
# on the Canterbury texts with every model given (default: the embedded gru) on this machine.
#   scripts/update-benchmarks.sh [--one-thread MODELS] [--memory-probe MODEL] [--models gru,...]
#                                [--devices cpu,...] [--threads N]
# --one-thread MODELS adds a table of those models with one compute thread (the main table uses
# all cores); --memory-probe MODEL adds the peak memory of compressing and decompressing 5 MB of
# random base64 (nearly every context new, so every table page is touched) with the default
# 1 MiB blocks and with one 8 MiB block. The other arguments go to `llmzip bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
one_thread=""; probe=""
while [ $# -gt 0 ]; do
  case "$1" in
    --one-thread) one_thread="$2"; shift 2 ;;
    --memory-probe) probe="$2"; shift 2 ;;
    *) break ;;
  esac
done
[ -f data/test/alice29.txt ] || scripts/fetch-data.sh
cargo build --release -q
out=docs/bench
mkdir -p "$out"
bin=target/release/llmzip
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
one_table=""
if [ -n "$one_thread" ]; then
  one_table=$("$bin" --threads 1 bench -q --no-baselines --models "$one_thread" --out "$tmp/one")
fi
probe_table=""
if [ -n "$probe" ]; then
  head -c 3900000 /dev/urandom | base64 -w 76 >"$tmp/random.b64"
  size=$(stat -c %s "$tmp/random.b64")
  probe_table="| blocks | compress peak MiB | decompress peak MiB | exact |"$'\n'"|---|---:|---:|---|"
  for blocks in 1M 8M; do
    /usr/bin/time -f %M -o "$tmp/c.kib" "$bin" -q compress -m "$probe" --block-size "$blocks" \
      -c "$tmp/random.b64" >"$tmp/r.llmz"
    /usr/bin/time -f %M -o "$tmp/d.kib" "$bin" -q decompress -c "$tmp/r.llmz" >"$tmp/back"
    exact=no; cmp -s "$tmp/back" "$tmp/random.b64" && exact=yes
    probe_table+=$'\n'"| $blocks | $(($(cat "$tmp/c.kib") / 1024)) | $(($(cat "$tmp/d.kib") / 1024)) | $exact |"
  done
fi
# GPU rows come from a GPU machine (scripts/gpu-bench.sh writes results.json there); kept in
# docs/bench/gpu-results.json, they join this run's tables and plots.
gpu=()
[ -f "$out/gpu-results.json" ] && gpu=(--include "$out/gpu-results.json")
table=$("$bin" bench -q --out "$out" "${gpu[@]}" "$@")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
{
  echo "# Benchmarks"
  echo
  args="$*"
  [ -n "$probe" ] && args="--memory-probe $probe $args"
  [ -n "$one_thread" ] && args="--one-thread $one_thread $args"
  echo "Regenerate with \`scripts/update-benchmarks.sh $args\` (runs \`llmzip bench\` on the Canterbury"
  echo "texts from \`scripts/fetch-data.sh\`, then rewrites this page and \`docs/bench/\`)."
  echo
  echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%d);"
  echo "llmzip $(git rev-parse --short HEAD 2>/dev/null || echo unknown). Every llmzip row was"
  echo "decompressed and compared byte for byte (column *exact*). Speeds are single runs on a shared"
  echo "machine: orders of magnitude, not decimals (a model row that takes under a second both ways"
  echo "is run up to three times and its fastest run kept). Peak MiB is the process's resident peak during"
  echo "that row (VmHWM), which includes the loaded models."
  echo
  echo "$table"
  echo
  echo "![bits per byte vs compression speed](bench/pareto.svg)"
  echo
  echo "![compression time by stage](bench/profile.svg)"
  echo
  echo "Raw data: [results.csv](bench/results.csv), [results.json](bench/results.json)."
  echo
  echo "## Levels"
  echo
  echo "Rows named \`level-N\` are level N's model and schedule (\`llmzip compress -N\`); a row"
  echo "named by a model is that model at its own schedule: \`fast1\` is level 1 (and levels 2-3,"
  echo "which differ only in block size, on files under 1 MiB), \`gru4-cm5\` level 6, \`smollm2-cm2\`"
  echo "level 9. From \`llmzip models\`:"
  echo
  echo '```text'
  "$bin" models | sed -n '2,10p'
  echo '```'
  echo
  echo "The fast level against the classic compressors that come closest, same run (KiB/s both ways):"
  echo
  python3 - "$out/results.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
def get(f, m):
    return next((r for r in rows if r["file"] == f and r["method"] == m and not r.get("machine")), None)
files = sorted({r["file"] for r in rows}, key=lambda f: [r["file"] for r in rows].index(f))
print("| file | fast1 bpb | compress KiB/s | decompress KiB/s | bzip2 -9 bpb | brotli -q11 bpb | smaller than both |")
print("|---|---:|---:|---:|---:|---:|---|")
for f in files:
    a, b, c = get(f, "fast1"), get(f, "bzip2 -9"), get(f, "brotli -q11")
    if not (a and b and c):
        continue
    kib = lambda s: a["original_bytes"] / s / 1024
    win = a["archive_bytes"] < min(b["archive_bytes"], c["archive_bytes"])
    print(f"| {f} | {a['bits_per_byte']:.3f} | {kib(a['compress_seconds']):.0f} | "
          f"{kib(a['decompress_seconds']):.0f} | {b['bits_per_byte']:.3f} | "
          f"{c['bits_per_byte']:.3f} | {'yes' if win else 'no'} |")
PY
  echo
  echo "Speeds of \`fast1\` on files this small include setting up its 96 MiB of tables; on the"
  echo "first 4 MB of GCIDE it codes 1.2 MB/s each way (docs/models.md, \"The fast level\")."
  echo
  if [ ${#gpu[@]} -gt 0 ]; then
    echo "Rows whose device names a GPU were measured on that GPU's machine by"
    echo "\`scripts/gpu-bench.sh\` (docs/devices.md) and kept in [gpu-results.json](bench/gpu-results.json);"
    echo "its text is data/large/kernel-docs.txt (10 MiB), its baselines ran on that machine's CPU."
  else
    echo "GPU figures: none yet. The CUDA binary (\`scripts/build-cuda.sh\`) and the GPU benchmark"
    echo "(\`scripts/gpu-bench.sh\`) exist, but no session has been lent a GPU machine (docs/devices.md)."
  fi
  if [ -n "$one_table" ]; then
    echo
    echo "## One compute thread"
    echo
    echo "\`llmzip --threads 1 bench --no-baselines --models $one_thread\`, same run (archives are"
    echo "identical to the ones above: results never depend on the thread count)."
    echo
    echo "$one_table"
  fi
  if [ -n "$probe_table" ]; then
    echo
    echo "## Peak memory on incompressible text"
    echo
    echo "$size bytes of random base64 (\`head -c 3900000 /dev/urandom | base64 -w 76\`: nearly every"
    echo "context is new, so every page of the model's tables is touched), \`-m $probe\`, peak resident"
    echo "memory of the whole process (\`/usr/bin/time -f %M\`), compressing with \`--block-size\` as"
    echo "given and decompressing that archive."
    echo
    echo "$probe_table"
  fi
  # The frontier and weight-file sections, kept from their own scripts (scripts/frontier.sh,
  # scripts/weights-bench.sh).
  if [ -f "$out/frontier/section.md" ]; then
    echo
    cat "$out/frontier/section.md"
  fi
  if [ -f "$out/weights/section.md" ]; then
    echo
    cat "$out/weights/section.md"
  fi
} >docs/benchmarks.md
echo "wrote docs/benchmarks.md"
