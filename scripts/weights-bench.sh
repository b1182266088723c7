#!/usr/bin/env bash
# The weight-file benchmark (docs/benchmarks.md, "Weight files"): the tensor codec against the
# classic compressors and byte grouping + zstd -19, on real weights:
#
#   gru-f32.safetensors    the embedded GRU, f32 as trained (crates/llmzip/models/gru)
#   gru-bf16.safetensors   the same weights cast to bf16 (round to nearest even): a stand-in,
#                          since no registry package reachable here ships bf16 LLM weights
#   smollm2.gguf           SmolLM2-135M-Instruct Q4_1 (scripts/fetch-models.sh): q4_1, q8_0, f32
#   gru-k-quants.gguf      the GRU's matrices quantized by candle to Q4_K, Q5_K and Q6_K (the
#                          k_quant_gguf example): K-quants of real weights, a stand-in
#   gemma3.gguf            Gemma 3 270M Q4_K_M (scripts/fetch-models.sh gemma3): q8_0, q5_0,
#                          q4_k, q6_k, f32, as llama.cpp's quantizer mixes them
#
# The peers zipnn and bigsmall (PyPI, pinned in scripts/peer_bench.py, installed in
# target/peers-venv on first use) run on the same files and join the table through --include.
#
# One `llmzip bench` run over the three (every row decompressed and compared), plus gru-cm4 on
# the two GRU files for the text model's figure (too slow for the 98 MB GGUF: hours), whose rows
# join the table through --include. Writes docs/bench/weights/ and the section of
# docs/benchmarks.md between its markers.
#   scripts/weights-bench.sh [--no-text-model]
set -euo pipefail
cd "$(dirname "$0")/.."
text_model=1
[ "${1:-}" = --no-text-model ] && text_model=0
cargo build --release -q
bin=target/release/llmzip
[ -s models/gemma-3-270m-q4_k_m.gguf ] || scripts/fetch-models.sh gemma3
venv=target/peers-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "zipnn==0.5.4" "bigsmall==4.0.0" \
        numpy safetensors
fi
work=bench-results/weights
out=docs/bench/weights
mkdir -p "$work" "$out"
cp crates/llmzip/models/gru/model.safetensors "$work/gru-f32.safetensors"
cp models/SmolLM2-135M-Instruct.Q4_1.gguf "$work/smollm2.gguf"
cp models/gemma-3-270m-q4_k_m.gguf "$work/gemma3.gguf"
python3 scripts/bf16-cast.py "$work/gru-f32.safetensors" "$work/gru-bf16.safetensors"
cargo run --release -q -p llmzip --example k_quant_gguf -- "$work/gru-f32.safetensors" \
    "$work/gru-k-quants.gguf"
files=("$work/gru-f32.safetensors" "$work/gru-bf16.safetensors" "$work/smollm2.gguf"
    "$work/gru-k-quants.gguf" "$work/gemma3.gguf")
"$venv/bin/python" scripts/peer_bench.py "$work/peers.json" "${files[@]}" 2>/dev/null
include=(--include "$work/peers.json")
if [ "$text_model" = 1 ]; then
    "$bin" -q bench "${files[0]}" "${files[1]}" --models gru-cm4 --no-baselines \
        --out "$work/text-model" >/dev/null
    include+=(--include "$work/text-model/results.json")
fi
table=$("$bin" -q bench "${files[@]}" --models tensors "${include[@]}" --out "$out")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
section=$(
    echo "<!-- weights: begin (scripts/weights-bench.sh writes this section) -->"
    echo "## Weight files"
    echo
    echo "Regenerate with \`scripts/weights-bench.sh\`. Machine: $(nproc) cores ($cpu); $(date -u +%Y-%m-%d);"
    echo "llmzip $(git rev-parse --short HEAD 2>/dev/null || echo unknown). \`tensors\` is the weight-file codec"
    echo "(\`llmzip compress\` picks it by content); \`grouped + zstd -19\` regroups the bytes of every"
    echo "float tensor (all first bytes, then all second bytes, ...) before zstd, as the seed studies"
    echo "did. gru-bf16 is a bf16 cast of the GRU's f32 weights, a stand-in for real bf16 weights;"
    echo "gru-k-quants holds the GRU's matrices quantized by candle to Q4_K, Q5_K and Q6_K (stand-ins too)."
    echo "gemma3 is Gemma 3 270M's Q4_K_M GGUF (q8_0, q5_0, q4_k, q6_k and f32 tensors)."
    echo "Speeds are in-memory runs with all cores: single runs, except the tensor codec's, the fastest of three (its speed is close to that of fresh memory, which varies from run to run on this machine); a file smaller than one 4 MiB chunk (gru-bf16) is coded by one thread. bpb = bits per byte of the file."
    echo "zipnn 0.5.4 and bigsmall 4.0.0 (PyPI) ran on the same files in Python (scripts/peer_bench.py; single runs, 2 threads for zipnn): zipnn through its byte API, which does not give these files back (exact: NO; its ratio and speed as measured), bigsmall on safetensors only (it reads no GGUF), checked tensor by tensor."
    echo
    echo "$table"
    echo
    echo "Raw data: [results.csv](bench/weights/results.csv), [results.json](bench/weights/results.json)."
    echo "<!-- weights: end -->"
)
doc=docs/benchmarks.md
python3 scripts/replace-section.py weights "$doc" "$section"
printf '%s\n' "$section" >"$out/section.md"
echo "wrote the weight-file section of $doc"
