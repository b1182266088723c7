#!/usr/bin/env bash
# Packs what scripts/gpu-bench.sh needs on a GPU machine that has no Rust and no registry, in
# pieces that fit the device tool's 64 MiB per call (docs/devices.md, "Running on a GPU"):
#
#   gpu-pack/llmzip-cuda.xz       the stripped CUDA binary from scripts/build-cuda.sh
#   gpu-pack/kernel-docs.txt.xz   the 10 MiB benchmark text (scripts/fetch-data.sh --large)
#   gpu-pack/smollm2.gguf.NN      the SmolLM2 GGUF (98 MB) cut into pieces
#   gpu-pack/SHA256SUMS           of the unpacked files, checked by gpu-bench.sh
#
# and prints the plan: one line per device call, the paths to `carry` in it. Ignored files stay
# on a warm machine between calls that follow within its idle time, so the calls are made back
# to back and the last one runs the benchmark. gpu-pack/ is ignored by git.
#   scripts/gpu-pack.sh [--no-smollm2]
set -euo pipefail
cd "$(dirname "$0")/.."
smollm2=1
[ "${1:-}" = --no-smollm2 ] && smollm2=0
limit=$((56 << 20)) # per call, below 64 MiB: the tracked tree travels too (3.5 MiB now)
pack=gpu-pack
mkdir -p "$pack"

bin="$(scripts/build-cuda.sh | tail -1)"
text=data/large/kernel-docs.txt
[ -s "$text" ] || scripts/fetch-data.sh --large >/dev/null
gguf=models/SmolLM2-135M-Instruct.Q4_1.gguf
[ "$smollm2" = 0 ] || [ -s "$gguf" ] || scripts/fetch-models.sh

fresh() { [ -s "$2" ] && [ "$2" -nt "$1" ]; } # is $2 newer than $1?
fresh "$bin" "$pack/llmzip-cuda.xz" || xz -6 -T0 -c "$bin" >"$pack/llmzip-cuda.xz"
fresh "$text" "$pack/kernel-docs.txt.xz" || xz -6 -T0 -c "$text" >"$pack/kernel-docs.txt.xz"
{
    (cd "$(dirname "$bin")" && sha256sum "$(basename "$bin")")
    (cd data/large && sha256sum kernel-docs.txt)
    [ "$smollm2" = 0 ] || (cd models && sha256sum "$(basename "$gguf")")
} >"$pack/SHA256SUMS"

# Calls: the first carries the small files and as much of the GGUF as fits; each later one
# another piece. Pieces are cut so that every call stays under $limit.
small=("$pack/SHA256SUMS" "$pack/llmzip-cuda.xz" "$pack/kernel-docs.txt.xz")
used=0
for f in "${small[@]}"; do used=$((used + $(stat -c %s "$f"))); done
rm -f "$pack"/smollm2.gguf.*
calls=()
first="${small[*]}"
if [ "$smollm2" = 1 ]; then
    size=$(stat -c %s "$gguf")
    offset=0
    n=0
    room=$((limit - used))
    while [ "$offset" -lt "$size" ]; do
        piece=$(printf '%s/smollm2.gguf.%02d' "$pack" "$n")
        len=$((size - offset < room ? size - offset : room))
        dd if="$gguf" of="$piece" iflag=skip_bytes,count_bytes skip="$offset" count="$len" \
            bs=1M status=none
        if [ "$n" = 0 ]; then first="$first $piece"; else calls+=("$piece"); fi
        offset=$((offset + len))
        n=$((n + 1))
        room=$limit
    done
fi
# The benchmark runs in the call that brings the last piece; the small files go first.
echo "device calls, back to back (carry these paths; the last call runs scripts/gpu-bench.sh):"
echo "  1: $first"
i=2
for c in "${calls[@]}"; do
    echo "  $i: $c"
    i=$((i + 1))
done
