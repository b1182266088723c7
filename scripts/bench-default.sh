#!/usr/bin/env bash
# Measures llmzip (default model unless -m is given) next to classic compressors on the same
# files, on this machine, in one run. Prints a markdown table of archive bytes, bits per byte and
# speeds, and checks every llmzip round trip.
#
#   scripts/bench-default.sh [--threads N] [-m MODEL] [FILES...]
#
# Default files: the Canterbury texts fetched by scripts/fetch-data.sh (data/test/*.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=$(nproc); model=gru; files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    -m|--model) model=$2; shift 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
[ ${#files[@]} -gt 0 ] || files=(data/test/alice29.txt data/test/asyoulik.txt data/test/lcet10.txt data/test/plrabn12.txt)
for f in "${files[@]}"; do [ -f "$f" ] || { echo "missing $f: run scripts/fetch-data.sh" >&2; exit 1; }; done

cargo build --release -q
bin=target/release/llmzip
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
bpb() { awk -v c="$1" -v o="$2" 'BEGIN { printf "%.3f", 8 * c / o }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) print "-"; else printf "%.1f", n / s / 1024 }'; }

# classic compressor: name, compress command (stdin -> stdout)
classic=(
  "gzip -9|gzip -9c"
  "bzip2 -9|bzip2 -9c"
  "xz -9e|xz -9e -c"
  "zstd -19|zstd -19 -q -c"
)

echo "llmzip model: $model, threads: $threads, CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| file | bytes | compressor | archive bytes | bpb | compress KiB/s | decompress KiB/s |"
echo "|---|---:|---|---:|---:|---:|---:|"
for f in "${files[@]}"; do
  name=$(basename "$f"); size=$(stat -c %s "$f")
  t0=$(now); "$bin" compress -q -f --threads "$threads" -m "$model" "$f" -o "$tmp/a.llmz"; t1=$(now)
  "$bin" decompress -q -f --threads "$threads" -m "$model" "$tmp/a.llmz" -o "$tmp/back"; t2=$(now)
  cmp -s "$f" "$tmp/back" || { echo "ROUND TRIP FAILED on $f" >&2; exit 1; }
  c=$(stat -c %s "$tmp/a.llmz")
  echo "| $name | $size | llmzip -m $model | $c | $(bpb "$c" "$size") | $(rate "$size" "$(echo "$t1 - $t0" | bc)") | $(rate "$size" "$(echo "$t2 - $t1" | bc)") |"
  for entry in "${classic[@]}"; do
    label=${entry%%|*}; cmd=${entry#*|}
    tool=${cmd%% *}
    command -v "$tool" >/dev/null || { echo "| $name | $size | $label | not installed | | | |"; continue; }
    t0=$(now); $cmd <"$f" >"$tmp/c"; t1=$(now)
    "$tool" -dc <"$tmp/c" >/dev/null; t2=$(now)
    c=$(stat -c %s "$tmp/c")
    echo "| $name | $size | $label | $c | $(bpb "$c" "$size") | $(rate "$size" "$(echo "$t1 - $t0" | bc)") | $(rate "$size" "$(echo "$t2 - $t1" | bc)") |"
  done
done
