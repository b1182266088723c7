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
make() { # NAME ARGS...
  local name="$1"; shift
  if [ -e "$g/$name.llmz" ]; then return; fi
  "$bin" compress -q "$@" "$g/$name" -o "$g/$name.llmz"
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
# Weight files (the tensor codec, chosen by content): every modelled format of each container.
make weights.safetensors
make weights.gguf
make weights-k.gguf
if [ "${1:-}" != "--no-smollm2" ]; then
  scripts/fetch-models.sh
  make smollm2-f32.txt -m smollm2 --dtype f32
  make smollm2-q8_0.txt -m smollm2 --dtype q8_0
  make smollm2-window.txt -m smollm2 --window 64 --segments 2 --min-segment 64 --dtype f32
  make smollm2-cm.txt -m smollm2-cm --segments 2 --min-segment 64 --dtype f32
  make smollm2-int8.txt -m smollm2-cm --window 64 --segments 2 --min-segment 64
  make smollm2-cm2.txt -m smollm2-cm2 --window 64 --segments 2 --min-segment 64
fi
