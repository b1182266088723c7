#!/usr/bin/env bash
# Trains several GRU shapes on the same budget and settings, for the configuration table in
# docs/training.md. Each model lands in $OUT/cfg-LxH/ with its curve.
#   scripts/train-configs.sh [BUDGET (default 2M)] [OUT (default target/configs)]
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-2M}; out=${2:-target/configs}
cargo build --release -q
mkdir -p "$out"
for shape in "1 128 16" "2 256 32" "2 384 32"; do
  set -- $shape
  dir="$out/cfg-${1}x${2}"
  rm -rf "$dir"
  target/release/llmzip train -q --threads 1 --data data/train --valid data/valid --out "$dir" \
    --layers "$1" --hidden "$2" --embed "$3" --batch 128 --seq-len 64 --bytes "$budget" --eval-every 1M
  echo "$dir: $(tail -n 1 "$dir/curve.csv")"
done
