#!/usr/bin/env bash
# Writes the golden archives of tests/golden/ that do not exist yet, with the release binary.
#
# Golden archives are never rewritten: they are what proves that archives made by an earlier
# llmzip still decode (tests/golden.rs, and tests/models.rs for SmolLM2). A model or format
# change that breaks one must come as a new model version or a format version bump instead
# (docs/format.md, "Compatibility"). To cover a new model, add its original file here with a new
# name and a line below, and run this script: it only creates archives that are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/llmzip
g=tests/golden
# The tiny test models (tests/golden/models, written once by examples/tiny_models.rs) load by
# name from there, as they do when the golden tests decode their archives.
export LLMZIP_MODELS="$PWD/$g/models"
run=("$bin")
make() { # NAME ARGS...
  local name="$1"; shift
  if [ -e "$g/$name.llmz" ]; then return; fi
  "${run[@]}" compress -q "$@" "$g/$name" -o "$g/$name.llmz"
  echo "wrote $g/$name.llmz: $(stat -c %s "$g/$name.llmz") bytes" >&2
}
make empty
make stored.bin
make gru-cm.txt
make gru.txt -m gru
make gru-cm-window.txt --window 64 --min-segment 200
make gru-cm-multiblock.txt --block-size 1K
make gru-cm2-window.txt -m gru-cm2 --window 64 --min-segment 200
make gru-cm3.txt -m gru-cm3
make gru-cm4.txt -m gru-cm4 --window 64 --min-segment 200
make gru2.txt -m gru2
make gru2-cm5.txt -m gru2-cm5 --window 64 --min-segment 200
make gru3-cm5.txt -m gru3-cm5 --window 64 --min-segment 200
make gru4-cm5.txt -m gru4-cm5 --window 64 --min-segment 200
make fast1.txt -m fast1 --block-size 2K
# The default level with a block that is not text: coded by fast1 (block kind 2) between two text
# blocks coded by the default model.
make fast-blocks.bin --block-size 4K
# The tiny test models: every network's code path, cheap enough to decode under an emulated CPU
# in CI (scripts/cross-cpu.sh).
cargo run --release --quiet -p llmzip --features test-support --example tiny_models -- "$g/models"
make tiny-gru.txt -m tiny-gru --window 64 --min-segment 100
make tiny-gru-cm5.txt -m tiny-gru-cm5 --window 64 --min-segment 100
make tiny-gru-libm.txt -m tiny-gru-libm --window 64 --min-segment 100
make tiny-llama-int8.txt -m tiny-llama-cm2 --dtype int8 --window 64 --segments 2 --min-segment 32
make tiny-llama-kv8.txt -m tiny-llama-cm2 --dtype int8-kv8 --window 64 --segments 2 --min-segment 32
make tiny-llama-f32.txt -m tiny-llama --dtype f32 --window 64 --segments 2 --min-segment 32
make tiny-gpt2.txt -m tiny-gpt2 --window 64 --segments 2 --min-segment 32
make tiny-gemma3-kv8.txt -m tiny-gemma3-cm2 --dtype int8-kv8 --window 64 --segments 2 --min-segment 32
make tiny-gemma3-f32.txt -m tiny-gemma3 --dtype f32 --window 64 --segments 2 --min-segment 32
# Two made on an emulated CPU without AVX or FMA (the platform in their headers says so), which
# every other CPU must decode: the other direction of the cross-CPU promise.
command -v qemu-x86_64 >/dev/null || { apt-get update -qq && apt-get install -y -qq qemu-user; }
run=(qemu-x86_64 -cpu Nehalem "$bin")
make tiny-nehalem-gru-cm5.txt -m tiny-gru-cm5 --window 64 --min-segment 100
make tiny-nehalem-llama-f32.txt -m tiny-llama-cm --dtype f32 --window 64 --segments 2 --min-segment 32
run=("$bin")
# Weight files (the tensor codec, chosen by content): every modelled format of each container.
make weights.safetensors
make weights.gguf
make weights-k.gguf
# A fine-tune against its base (`--base`, tensors/delta.rs): weights-tuned.safetensors is
# weights.safetensors with most floats moved by a few ulps (made once, by hand, for this fixture).
make weights-tuned.safetensors --base "$g/weights.safetensors"
# Tensor archives of version 2 (four interleaved rANS states, in segments; llmzip 0.6): the
# originals above again under new names, and a GGUF with a chunk of two segments.
for f in weights.safetensors weights.gguf weights-k.gguf weights-tuned.safetensors; do
  [ -e "$g/${f/./-v2.}" ] || cp "$g/$f" "$g/${f/./-v2.}"
done
[ -e "$g/weights-tuned-v2.safetensors.base" ] || echo weights-v2.safetensors >"$g/weights-tuned-v2.safetensors.base"
[ -e "$g/weights-segments.gguf" ] || python3 scripts/golden-segments-gguf.py "$g/weights-segments.gguf"
make weights-v2.safetensors
make weights-v2.gguf
make weights-k-v2.gguf
make weights-tuned-v2.safetensors --base "$g/weights-v2.safetensors"
make weights-segments.gguf
if [ "${1:-}" != "--no-smollm2" ]; then
  # Into models/ (found there: the registry always looks in ./models), not the tiny models' dir.
  LLMZIP_MODELS= scripts/fetch-models.sh gemma3
  make smollm2-f32.txt -m smollm2 --dtype f32
  make smollm2-q8_0.txt -m smollm2 --dtype q8_0
  make smollm2-window.txt -m smollm2 --window 64 --segments 2 --min-segment 64 --dtype f32
  make smollm2-cm.txt -m smollm2-cm --segments 2 --min-segment 64 --dtype f32
  make smollm2-int8.txt -m smollm2-cm --window 64 --segments 2 --min-segment 64 --dtype int8
  make smollm2-cm2.txt -m smollm2-cm2 --window 64 --segments 2 --min-segment 64 --dtype int8
  make smollm2-kv8.txt -m smollm2-cm2 --window 64 --segments 2 --min-segment 64 --dtype int8-kv8
  # Rows of ~820 tokens: past Gemma's sliding window of 512, and a shift at 640.
  make gemma3-cm2.txt -m gemma3-cm2 --window 640 --segments 2 --min-segment 600
fi
