#!/usr/bin/env bash
# Speed and size of several ways of running llmzip on the same files, interleaved (A B C A B C …),
# both ways, with 1 and 2 threads; every archive decompressed and compared. Yardsticks measured
# in the same run, so that the figures travel between machines: xz -9e's compression time on
# each file, and paq8px's when PAQ8PX names its binary (scripts/paq8px.sh builds one).
#
#   scripts/speed-table.sh [--runs N] [--threads "1 2"] NAME=BINARY[,ARG...]... -- FILES...
#
# A variant is a name, a binary and the arguments it compresses with (after `compress`), e.g.
#   scripts/speed-table.sh A=/tmp/llmzip-old B=target/release/llmzip -- data/test/alice29.txt
#   scripts/speed-table.sh level-6=target/release/llmzip,-6 level-8=target/release/llmzip,-8 -- F
# Prints a Markdown table of median seconds and KB/s (1 KB = 1000 bytes), then which variants
# wrote identical archives. Speed is only comparable inside one run: run nothing else meanwhile.
set -euo pipefail
runs=3; threads="1 2"; names=(); bins=(); argss=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --) shift; break ;;
    *=*)
      names+=("${1%%=*}")
      spec="${1#*=}"
      bins+=("${spec%%,*}")
      if [[ "$spec" == *,* ]]; then argss+=("${spec#*,}"); else argss+=(""); fi
      shift ;;
    *) echo "usage: $0 [--runs N] [--threads \"1 2\"] NAME=BINARY[,ARG...]... -- FILES..." >&2; exit 2 ;;
  esac
done
[ ${#names[@]} -gt 0 ] && [ $# -gt 0 ] || { echo "usage: $0 [--runs N] NAME=BINARY[,ARG...]... -- FILES..." >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
elapsed() { echo "$(now) - $1" | bc; }
paq=${PAQ8PX:-}
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs; $(date -u +%F)"
echo
head="| file | threads | variant | archive bytes | bpb | compress s | KB/s | decompress s | KB/s | × xz -9e time (compress) |"
rule="|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
if [ -n "$paq" ]; then head+=" paq8px time ÷ this (compress) |"; rule+="---:|"; fi
echo "$head"; echo "$rule"
yardsticks=""
for f in "$@"; do
  size=$(stat -c %s "$f")
  s=$(now); xz -9e -c "$f" > "$work/x.xz"; xz_s=$(elapsed "$s")
  yardsticks+="$(basename "$f"): xz -9e $(printf %.2f "$xz_s") s"
  if [ -n "$paq" ]; then
    rm -f "$work/p.paq8px"*
    s=$(now)
    "$paq" -9 "$f" "$work/p.paq8px" > /dev/null 2>&1 || { echo "paq8px ($paq) failed on $f" >&2; exit 1; }
    paq_s=$(elapsed "$s")
    yardsticks+=", paq8px -9 $(printf %.1f "$paq_s") s ($(stat -c %s "$work"/p.paq8px* | head -n 1) bytes)"
  fi
  yardsticks+="; "
  for t in $threads; do
    for i in "${!names[@]}"; do : > "$work/$i.c"; : > "$work/$i.d"; done
    for _ in $(seq "$runs"); do
      for i in "${!names[@]}"; do
        IFS=, read -r -a extra <<< "${argss[$i]}"
        s=$(now); "${bins[$i]}" -q --threads "$t" compress "${extra[@]}" -f "$f" -o "$work/$i.llmz"
        elapsed "$s" >> "$work/$i.c"
        s=$(now); "${bins[$i]}" -q --threads "$t" decompress -f "$work/$i.llmz" -o "$work/$i.out"
        elapsed "$s" >> "$work/$i.d"
        cmp -s "$f" "$work/$i.out" || { echo "round trip failed: ${names[$i]} $f" >&2; exit 1; }
      done
    done
    for i in "${!names[@]}"; do
      c=$(median < "$work/$i.c"); d=$(median < "$work/$i.d"); bytes=$(stat -c %s "$work/$i.llmz")
      row=$(printf "| %s | %s | %s | %d | %.3f | %.2f | %.1f | %.2f | %.1f | %.0f× |" "$(basename "$f")" "$t" \
        "${names[$i]}" "$bytes" "$(echo "8 * $bytes / $size" | bc -l)" "$c" "$(echo "$size / $c / 1000" | bc -l)" \
        "$d" "$(echo "$size / $d / 1000" | bc -l)" "$(echo "$c / $xz_s" | bc -l)")
      [ -n "$paq" ] && row+=$(printf " %.1f× |" "$(echo "$paq_s / $c" | bc -l)")
      echo "$row"
    done
    # Which variants wrote the same archive (this file, this thread count).
    groups=""
    for i in "${!names[@]}"; do
      for j in "${!names[@]}"; do
        [ "$j" -lt "$i" ] || continue
        cmp -s "$work/$i.llmz" "$work/$j.llmz" && groups+=" ${names[$j]}=${names[$i]}"
      done
    done
    echo "$(basename "$f"), $t thread(s):${groups:- none}" >> "$work/same"
  done
done
echo
echo "Medians of $runs runs; yardsticks (one run each): ${yardsticks%; }."
echo "Identical archives:"
sed 's/^/- /' "$work/same"
