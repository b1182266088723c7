#!/usr/bin/env bash
# Speed of two llmzip builds on the same files, interleaved (A B A B …), both ways, with 1 and 2
# threads, each archive decompressed and compared; xz -9e's time on the same file in the same
# run as the yardstick that travels between machines.
#
#   scripts/speed-ab.sh OLD_BINARY NEW_BINARY [RUNS] FILES...
#
# Prints a Markdown table of median seconds and KB/s (1 KB = 1000 bytes), and says whether the
# two builds wrote identical archives.
set -euo pipefail
a="$1"; b="$2"; runs="${3:-3}"; shift 3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs; $(date -u +%F)"
echo
echo "| file | threads | build | compress s | KB/s | decompress s | KB/s | × xz -9e time (compress) | archive |"
echo "|---|---|---|---:|---:|---:|---:|---:|---|"
for f in "$@"; do
  size=$(stat -c %s "$f")
  s=$(now); xz -9e -c "$f" > "$work/x.xz"; xz_s=$(echo "$(now) - $s" | bc)
  for t in 1 2; do
    for which in A B; do : > "$work/$which.c"; : > "$work/$which.d"; done
    for _ in $(seq "$runs"); do
      for which in A B; do
        bin=$a; [ "$which" = B ] && bin=$b
        s=$(now); "$bin" -q --threads "$t" compress -f "$f" -o "$work/$which.llmz"; echo "$(now) - $s" | bc >> "$work/$which.c"
        s=$(now); "$bin" -q --threads "$t" decompress -f "$work/$which.llmz" -o "$work/$which.out"; echo "$(now) - $s" | bc >> "$work/$which.d"
        cmp -s "$f" "$work/$which.out" || { echo "round trip failed: $bin $f" >&2; exit 1; }
      done
    done
    same=$(cmp -s "$work/A.llmz" "$work/B.llmz" && echo identical || echo DIFFERENT)
    for which in A B; do
      c=$(median < "$work/$which.c"); d=$(median < "$work/$which.d")
      printf "| %s | %s | %s | %.2f | %.1f | %.2f | %.1f | %.0f× | %s |\n" "$(basename "$f")" "$t" "$which" \
        "$c" "$(echo "$size / $c / 1000" | bc -l)" "$d" "$(echo "$size / $d / 1000" | bc -l)" \
        "$(echo "$c / $xz_s" | bc -l)" "$same"
    done
  done
done
echo
echo "A = $a, B = $b; medians of $runs runs; xz -9e: one run per file."
