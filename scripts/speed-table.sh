#!/usr/bin/env bash
# Speed and size of several ways of running llmzip on the same files, interleaved (A B C A B C …),
# both ways, with 1 and 2 threads; every archive decompressed and compared. Yardsticks from the
# same run: xz -9e's compression time on each file (run once per round, interleaved with the
# variants, median), and paq8px -9's when PAQ8PX names its binary (scripts/paq8px.sh builds one;
# run once per file: it takes minutes). A ratio to a yardstick depends less on how fast the
# machine happens to be than KB/s do, but it still moves when a machine is slowed: compare
# figures from one run.
#
#   scripts/speed-table.sh [--runs N] [--threads "1 2"] NAME=BINARY[,ARG...]... -- FILES...
#
# A variant is a name, a binary and the arguments it compresses with (after `compress`; a comma
# separates them, so a binary's path must not contain one), e.g.
#   scripts/speed-table.sh A=/tmp/llmzip-old B=target/release/llmzip -- data/test/alice29.txt
#   scripts/speed-table.sh level-6=target/release/llmzip,-6 level-8=target/release/llmzip,-8 -- F
# Decompression gets no arguments: the archive says how it was made.
# Prints a Markdown table of median seconds (the lower middle one for an even count of runs) and
# KB/s (1 KB = 1000 bytes), then which variants wrote identical archives.
set -euo pipefail
export LC_ALL=C
usage="usage: $0 [--runs N] [--threads \"1 2\"] NAME=BINARY[,ARG...]... -- FILES..."
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
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[ ${#names[@]} -gt 0 ] && [ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "--runs takes a positive count, not '$runs'" >&2; exit 2; }
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
rows=""; yardsticks=""
for f in "$@"; do
  size=$(stat -c %s "$f")
  : > "$work/xz"
  if [ -n "$paq" ]; then
    rm -f "$work/p.paq8px"*
    s=$(now)
    "$paq" -9 "$f" "$work/p.paq8px" > /dev/null 2>&1 || { echo "paq8px ($paq) failed on $f" >&2; exit 1; }
    paq_s=$(elapsed "$s")
    paq_out=$(ls "$work"/p.paq8px* 2>/dev/null | head -n 1)
    [ -n "$paq_out" ] || { echo "paq8px ($paq) wrote no archive for $f" >&2; exit 1; }
    paq_bytes=$(stat -c %s "$paq_out")
  fi
  for t in $threads; do
    for i in "${!names[@]}"; do : > "$work/$i.c"; : > "$work/$i.d"; done
    for _ in $(seq "$runs"); do
      s=$(now); xz -9e -c "$f" > "$work/x.xz"; elapsed "$s" >> "$work/xz"
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
      printf "%s|%s|%s|%s|%s|%s|%s\n" "$(basename "$f")" "$t" "${names[$i]}" "$bytes" "$size" "$c" "$d" >> "$work/rows"
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
  # Every row of this file against the median of all its xz runs.
  xz_s=$(median < "$work/xz")
  while IFS='|' read -r name t variant bytes sz c d; do
    [ "$name" = "$(basename "$f")" ] || continue
    row=$(printf "| %s | %s | %s | %d | %.3f | %.2f | %.1f | %.2f | %.1f | %.0f× |" "$name" "$t" \
      "$variant" "$bytes" "$(echo "8 * $bytes / $sz" | bc -l)" "$c" "$(echo "$sz / $c / 1000" | bc -l)" \
      "$d" "$(echo "$sz / $d / 1000" | bc -l)" "$(echo "$c / $xz_s" | bc -l)")
    [ -n "$paq" ] && row+=$(printf " %.1f× |" "$(echo "$paq_s / $c" | bc -l)")
    rows+="$row"$'\n'
  done < "$work/rows"
  : > "$work/rows"
  yardsticks+="$(basename "$f"): xz -9e $(printf %.3f "$xz_s") s (median of $(wc -l < "$work/xz"))"
  [ -n "$paq" ] && yardsticks+=", paq8px -9 $(printf %.1f "$paq_s") s (one run, $paq_bytes bytes)"
  yardsticks+="; "
done
echo "$head"; echo "$rule"; printf %s "$rows"
echo
echo "Medians of $runs runs; yardsticks, on one thread: ${yardsticks%; }."
echo "Identical archives:"
sed 's/^/- /' "$work/same"
