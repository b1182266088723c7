#!/usr/bin/env bash
# Weight files at scale (docs/benchmarks.md, "Weight files at scale"): a multi-gigabyte
# safetensors file through `llmzip compress` and `decompress` as a user runs them (files on disk,
# temp file + rename, fsync), with the peak resident memory and the wall time of each, and a
# byte-for-byte comparison. The point is that memory does not grow with the file.
#
# The file: GiB × 16 bf16 tensors of 4096 × 8192 (64 MiB each), every one the GRU's weights
# cast to bf16 (round to nearest even) and tiled to fill it. Real values, so the coder does real
# work; the tiling changes nothing for the codec, which codes 4 MiB chunks independently and
# finds no repeats. A stand-in, like gru-bf16 in the weight-file table: no registry package
# reachable here ships a multi-gigabyte weight file.
#   scripts/weights-memory.sh [GiB (default 3)] [threads (default: all cores)]
set -euo pipefail
cd "$(dirname "$0")/.."
gib=${1:-3}
threads=${2:-$(nproc)}
cargo build --release -q
bin=$PWD/target/release/llmzip
work=bench-results/weights-memory
mkdir -p "$work"
big=$work/big-bf16.safetensors
python3 - crates/llmzip/models/gru/model.safetensors "$big" "$gib" <<'PY'
import json, struct, sys
src = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", src[:8])[0]
header = json.loads(src[8:8 + n])
base = 8 + n
pattern = bytearray()
for name, t in sorted(header.items()):
    if name == "__metadata__":
        continue
    s, e = t["data_offsets"]
    for (x,) in struct.iter_unpack("<I", src[base + s:base + e]):
        pattern += struct.pack("<H", ((x + 0x7FFF + ((x >> 16) & 1)) >> 16) & 0xFFFF)
rows, cols = 4096, 8192
size = rows * cols * 2
tensor = (bytes(pattern) * (size // len(pattern) + 1))[:size]
count = int(sys.argv[3]) * 16
meta = {f"layers.{i}.weight": {"dtype": "BF16", "shape": [rows, cols],
                               "data_offsets": [i * size, (i + 1) * size]} for i in range(count)}
j = json.dumps(meta, separators=(",", ":")).encode()
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<Q", len(j)) + j)
    for _ in range(count):
        f.write(tensor)
PY
bytes=$(stat -c %s "$big")
measure() { # label, then the command; prints "seconds peak-KiB"
    local label=$1
    shift
    /usr/bin/time -f "%e %M" -o "$work/$label.time" "$@"
    cat "$work/$label.time"
}
read -r c_s c_kb < <(measure compress "$bin" compress -q -f --threads "$threads" -o "$work/big.llmz" "$big")
read -r d_s d_kb < <(measure decompress "$bin" decompress -q -f --threads "$threads" -o "$work/big.out" "$work/big.llmz")
cmp "$big" "$work/big.out"
archive=$(stat -c %s "$work/big.llmz")
rm -f "$work/big.out"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
mib() { python3 -c "print(f'{$1 / 1048576:.0f}')"; }
rate() { python3 -c "print(f'{$1 / 1048576 / $2:.0f}')"; }
section=$(
    echo "<!-- weights-memory: begin (scripts/weights-memory.sh writes this section) -->"
    echo "## Weight files at scale"
    echo
    echo "Regenerate with \`scripts/weights-memory.sh $gib $threads\`. Machine: $(nproc) cores ($cpu), $threads threads;"
    echo "$(date -u +%Y-%m-%d); llmzip $(git rev-parse --short HEAD 2>/dev/null || echo unknown). A $gib GiB safetensors file of"
    echo "bf16 tensors (the GRU's weights cast to bf16 and tiled: a stand-in), compressed and"
    echo "decompressed file to file as a user runs it (temp file, fsync, rename); peak = the"
    echo "process's peak resident memory (\`/usr/bin/time\`). Round trip compared byte for byte."
    echo
    echo "| step | input MiB | output MiB | seconds | MiB/s of the original | peak MiB |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| compress | $(mib "$bytes") | $(mib "$archive") | $c_s | $(rate "$bytes" "$c_s") | $((c_kb / 1024)) |"
    echo "| decompress | $(mib "$archive") | $(mib "$bytes") | $d_s | $(rate "$bytes" "$d_s") | $((d_kb / 1024)) |"
    echo
    echo "Ratio $(python3 -c "print(f'{$bytes / $archive:.4f}')")×. <!-- weights-memory: end -->"
)
doc=docs/benchmarks.md
python3 scripts/replace-section.py weights-memory "$doc" "$section"
printf '%s\n' "$section"
rm -f "$big" "$work/big.llmz"
