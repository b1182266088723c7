#!/usr/bin/env bash
# Archive bytes of a model on the tuning files of issue 12 (validation texts only), one thread:
# the numbers the tuning tables in docs/training.md are made of. Environment variables reach the
# model (experiment knobs, when a build has them). Usage: scripts/experiments/mix-sizes.sh MODEL
# [FILE...] (default files: fortunes-heldout, c-headers, docs.html).
set -euo pipefail
cd "$(dirname "$0")/../.."
model="${1:-gru-cm4}"; shift || true
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(data/valid/fortunes-heldout.txt data/valid-kinds/c-headers.h data/valid-kinds/docs.html)
total=0; line=""
for f in "${files[@]}"; do
  n=$(target/release/llmzip -q --threads 1 compress -c -m "$model" "$f" | wc -c)
  total=$((total + n)); line="$line $(basename "$f")=$n"
done
echo "$model$line total=$total"
