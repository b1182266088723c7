#!/usr/bin/env bash
# Bits per byte of a model on the validation texts (data/valid, data/valid-kinds), never on test
# files: the numbers model tuning is decided on. Usage: scripts/valid-bpb.sh [MODEL] [extra args]
# Prints one line per file and the byte-weighted total; checks every round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-gru-cm}"; shift || true
cargo build --release -q
bin=target/release/llmzip
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
total_in=0; total_out=0
printf "%-24s %9s %9s %7s %8s\n" file bytes archive bpb "KiB/s"
for f in data/valid/*.txt data/valid-kinds/*; do
  start=$(date +%s.%N)
  "$bin" -q compress -c -m "$model" "$@" "$f" >"$tmp/a.llmz"
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  "$bin" -q decompress -c "$tmp/a.llmz" | cmp -s - "$f" || { echo "round trip failed: $f" >&2; exit 1; }
  in=$(stat -c %s "$f"); out=$(stat -c %s "$tmp/a.llmz")
  total_in=$((total_in + in)); total_out=$((total_out + out))
  printf "%-24s %9d %9d %7.3f %8.1f\n" "$(basename "$f")" "$in" "$out" \
    "$(echo "8 * $out / $in" | bc -l)" "$(echo "$in / 1024 / $secs" | bc -l)"
done
printf "%-24s %9d %9d %7.3f\n" total "$total_in" "$total_out" "$(echo "8 * $total_out / $total_in" | bc -l)"
