#!/usr/bin/env bash
# GPU benchmark, run ON the GPU machine (which has the NVIDIA driver, CUDA 13 libraries and
# PyTorch, but no Rust and no registry), from the pieces scripts/gpu-pack.sh made here:
#
#   scripts/gpu-bench.sh [--models gru4-cm5,gru,smollm2:f32,smollm2:q4_1] [--bytes N]
#                        [--check-bytes N] [--limit SECONDS]
#
# For each model (`name` or `name:weights`) on data/large/kernel-docs.txt (10 MiB, or its first
# --bytes):
# 1. `llmzip bench --devices cuda` with lockstep rows scaled up for the GPU (GRU_ROWS, default
#    1024; LLM_ROWS, default 256) and one block for the whole text: archive size, bpb, both
#    speeds, peak memory, the compress profile, and an exact round trip. Rows are tagged with
#    the GPU's name (--machine).
# 2. Determinism, on the first --check-bytes (default 1 MiB): compress twice in two processes
#    (archives must be identical) and decompress in a third (output must equal the input).
# Each model gets at most --limit seconds (default 240) for the two; one that runs out is
# reported and the next one runs.
#
# Results go to $OUT (the device tool's folder that comes back) or bench-results/gpu/:
# results.json (all bench rows, for `llmzip bench --include`), table.md, log.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
models="gru4-cm5,gru,smollm2:f32,smollm2:q4_1"
bytes=""
check_bytes=$((1 << 20))
limit=240
while [ $# -gt 0 ]; do
    case "$1" in
        --models) models="$2"; shift 2 ;;
        --bytes) bytes="$2"; shift 2 ;;
        --check-bytes) check_bytes="$2"; shift 2 ;;
        --limit) limit="$2"; shift 2 ;;
        *) echo "usage: $0 [--models a,b:weights] [--bytes N] [--check-bytes N] [--limit S]" >&2
           exit 2 ;;
    esac
done
out="${OUT:-bench-results/gpu}"
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
work=/tmp/llmzip-gpu
mkdir -p "$work/models" "$work/lib"
pack=gpu-pack

# --- unpack (and check) what gpu-pack.sh sent --------------------------------------------
[ -s "$work/llmzip-cuda" ] || xz -dc "$pack/llmzip-cuda.xz" >"$work/llmzip-cuda"
chmod +x "$work/llmzip-cuda"
[ -s "$work/kernel-docs.txt" ] || xz -dc "$pack/kernel-docs.txt.xz" >"$work/kernel-docs.txt"
gguf="$work/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$gguf" ] && ls "$pack"/smollm2.gguf.* >/dev/null 2>&1; then
    cat "$pack"/smollm2.gguf.* >"$gguf"
fi
(cd "$work" && cp "$OLDPWD/$pack/SHA256SUMS" . &&
    for f in llmzip-cuda kernel-docs.txt; do grep " $f\$" SHA256SUMS | sha256sum -c --quiet; done &&
    if [ -s "$gguf" ]; then (cd models && grep ' SmolLM2' ../SHA256SUMS | sha256sum -c --quiet); fi)
bin="$work/llmzip-cuda"
export LLMZIP_MODELS="$work/models"

# --- CUDA libraries: the binary (built against CUDA 11.8) loads libcublas.so etc. by name ----
# Unversioned links to whatever version this machine has (CUDA 13 in PyTorch's wheels or the
# toolkit), found in the usual places.
dirs=(/usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64)
site="$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)"
for s in $site; do
    for d in "$s"/nvidia/*/lib "$s"/nvidia/cu*/lib; do [ -d "$d" ] && dirs+=("$d"); done
done
for lib in cublas cublasLt curand nvrtc; do
    for d in "${dirs[@]}"; do
        f="$(ls "$d/lib$lib.so"* 2>/dev/null | head -1 || true)"
        if [ -n "$f" ]; then ln -sf "$f" "$work/lib/lib$lib.so"; break; fi
    done
done
export LD_LIBRARY_PATH="$work/lib:$(IFS=:; echo "${dirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ls -l "$work/lib"
gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
    head -1 || true)"
gpu="${gpu:-no GPU found}"
echo "GPU: $gpu; CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
name="$(echo "$gpu" | cut -d, -f1)"

text="$work/kernel-docs.txt"
if [ -n "$bytes" ]; then
    head -c "$bytes" "$work/kernel-docs.txt" >"$work/text.txt"
    text="$work/text.txt"
fi
head -c "$check_bytes" "$text" >"$work/check.txt"

# --- per model ---------------------------------------------------------------------------
results=()
IFS=, read -r -a specs <<<"$models"
for spec in "${specs[@]}"; do
    model="${spec%%:*}"
    weights=""
    [ "$spec" != "$model" ] && weights="${spec#*:}"
    case "$model" in
        smollm2*|*.gguf) rows="${LLM_ROWS:-256}" ;;
        *) rows="${GRU_ROWS:-1024}" ;;
    esac
    tag="${spec//[:\/]/-}"
    sched=(--block-size 64M --segments "$rows" --memory 120G)
    wopt=()
    [ -n "$weights" ] && wopt=(--dtype "$weights")
    echo "== $spec: $rows rows"
    start=$SECONDS
    if timeout "$limit" "$bin" -q bench "$text" --models "$model" --devices cuda "${wopt[@]}" \
        "${sched[@]}" --no-baselines --machine "$name" --out "$work/bench-$tag"; then
        results+=("$work/bench-$tag/results.json")
    else
        echo "!! $spec: bench failed or ran past ${limit}s"
        continue
    fi
    left=$((limit - (SECONDS - start)))
    [ "$left" -gt 10 ] || { echo "!! $spec: no time left for the determinism check"; continue; }
    c=(-q --device cuda compress -c -m "$model" "${wopt[@]}" "${sched[@]}" "$work/check.txt")
    t0=$(date +%s.%N)
    if timeout "$left" "$bin" "${c[@]}" >"$work/a.llmz" &&
        timeout "$left" "$bin" "${c[@]}" >"$work/b.llmz" &&
        timeout "$left" "$bin" -q --memory 120G decompress -c "$work/a.llmz" >"$work/back.txt"; then
        t1=$(date +%s.%N)
        if cmp -s "$work/a.llmz" "$work/b.llmz" && cmp -s "$work/back.txt" "$work/check.txt"; then
            echo "ok $spec: deterministic on $(wc -c <"$work/check.txt") bytes: two compressions" \
                "identical ($(wc -c <"$work/a.llmz") bytes), separate decompression exact" \
                "($(awk "BEGIN {print $t1 - $t0}") s for the three)"
        else
            echo "!! $spec: NOT deterministic (archives or output differ)"
        fi
    else
        echo "!! $spec: determinism check failed or ran out of time"
    fi
done

# Classic compressors on the same text, on this machine's CPU, once.
"$bin" -q bench "$text" --models '' --machine "$name" \
    --out "$work/bench-baselines" >/dev/null 2>&1 &&
    results+=("$work/bench-baselines/results.json") || true

python3 - "$out/results.json" "${results[@]}" <<'PY'
import json, sys
rows = []
for path in sys.argv[2:]:
    rows += json.load(open(path))
json.dump(rows, open(sys.argv[1], "w"), indent=1)
PY
"$bin" -q bench "$work/check.txt" --models '' --no-baselines \
    --include "$out/results.json" --out "$work/table" >"$out/table.md" 2>/dev/null || true
cat "$out/table.md"
