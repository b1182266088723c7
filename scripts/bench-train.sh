#!/usr/bin/env bash
# Training throughput of `llmzip train` (bytes of text per second, validation passes excluded)
# for several model shapes and batch layouts, on a fixed 1 MB budget of data/train.
#   scripts/bench-train.sh [BUDGET (default 1M)]
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-1M}
cargo build --release -q
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "| cell | layers x hidden | batch x seq | threads | training KB/s |"
echo "|---|---|---|---:|---:|"
for run in "gru 2 256 32 32 128 1" "gru 2 256 32 128 64 1" "gru 2 256 32 256 64 1" "gru 2 256 32 128 64 2" \
           "gru 1 128 16 128 64 1" "gru 2 384 32 128 64 1" "gru 2 512 64 128 64 1" "lstm 2 256 32 128 64 1"; do
  set -- $run
  rm -rf "$tmp/m"
  target/release/llmzip train -q --arch "$1" --layers "$2" --hidden "$3" --embed "$4" --batch "$5" \
    --seq-len "$6" --threads "$7" --bytes "$budget" --eval-every 1G \
    --data data/train --valid data/valid --out "$tmp/m"
  speed=$(python3 -c "import json; s=json.load(open('$tmp/m/train_state.json')); print('%.1f' % (s['bytes_seen'] / (s['seconds'] - s['eval_seconds']) / 1000))")
  echo "| $1 | $2 x $3 | $5 x $6 | $7 | $speed |"
done
