#!/usr/bin/env bash
# Measures SmolLM2-135M in llmzip: the tables of docs/models.md. Prints markdown rows.
#
#   scripts/bench-smollm2.sh files     per Canterbury file, default schedule, compress (bpb)
#   scripts/bench-smollm2.sh threads   alice29, 1 vs 2 threads, compress+decompress, exact?
#   scripts/bench-smollm2.sh segments  alice29, segment count vs bpb and compress speed
#   scripts/bench-smollm2.sh window    32 KB of alice29 in 8 segments, window vs bpb
#   scripts/bench-smollm2.sh weights   6 KB of alice29 in 8 segments, weight format vs speed
#   scripts/bench-smollm2.sh latin2    Czech text as UTF-8 vs ISO-8859-2 (Debian fortunes-cs)
#
# Needs scripts/fetch-models.sh and scripts/fetch-data.sh. Wall-clock timings: run it on an
# otherwise idle machine. THREADS (default 2) sets --threads where a table does not vary it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/llmzip
threads="${THREADS:-2}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
# run_one FILE THREADS ARGS... -> "archive_bytes bpb compress_B/s decompress_B/s exact"
run_one() {
    local file="$1" t="$2"; shift 2
    local size a b c
    size=$(stat -c %s "$file")
    a=$(now); "$bin" -q --threads "$t" compress -f "$@" "$file" -o "$tmp/x.llmz"; b=$(now)
    "$bin" -q --threads "$t" decompress -f "$tmp/x.llmz" -o "$tmp/x.out"; c=$(now)
    local exact=no; cmp -s "$file" "$tmp/x.out" && exact=yes
    local arch; arch=$(stat -c %s "$tmp/x.llmz")
    awk -v s="$size" -v z="$arch" -v a="$a" -v b="$b" -v c="$c" -v e="$exact" 'BEGIN {
        printf "%d | %.3f | %.0f | %.0f | %s", z, 8*z/s, s/(b-a), s/(c-b), e }'
}
# compress_only FILE THREADS ARGS... -> "archive_bytes bpb compress_B/s"
compress_only() {
    local file="$1" t="$2"; shift 2
    local size a b arch
    size=$(stat -c %s "$file")
    a=$(now); "$bin" -q --threads "$t" compress -f "$@" "$file" -o "$tmp/x.llmz"; b=$(now)
    arch=$(stat -c %s "$tmp/x.llmz")
    awk -v s="$size" -v z="$arch" -v a="$a" -v b="$b" 'BEGIN {
        printf "%d | %.3f | %.0f", z, 8*z/s, s/(b-a) }'
}

case "${1:-files}" in
files)
    echo "| file | bytes | archive | bpb | compress B/s |"
    echo "|---|---|---|---|---|"
    for f in ${FILES:-alice29 asyoulik lcet10 plrabn12}; do
        p=data/test/$f.txt
        echo "| $f | $(stat -c %s "$p") | $(compress_only "$p" "$threads" -m smollm2) |"
    done ;;
threads)
    echo "| threads | archive | bpb | compress B/s | decompress B/s | exact |"
    echo "|---|---|---|---|---|---|"
    for t in 1 2; do
        echo "| $t | $(run_one data/test/alice29.txt "$t" -m smollm2) |"
    done ;;
segments)
    echo "| segments | tokens/segment | archive | bpb | compress B/s |"
    echo "|---|---|---|---|---|"
    for s in 16 32 64; do
        echo "| $s | ~$((42000 / s)) | $(compress_only data/test/alice29.txt "$threads" -m smollm2 --segments "$s" --min-segment 1) |"
    done ;;
window)
    head -c 32768 data/test/alice29.txt > "$tmp/alice32k.txt"
    echo "| window | archive | bpb | compress B/s |"
    echo "|---|---|---|---|"
    for w in 256 512 1024 2048; do
        echo "| $w | $(compress_only "$tmp/alice32k.txt" "$threads" -m smollm2 --segments 8 --min-segment 1 --window "$w") |"
    done ;;
weights)
    head -c 6144 data/test/alice29.txt > "$tmp/alice6k.txt"
    echo "| weights | archive | bpb | compress B/s |"
    echo "|---|---|---|---|"
    for w in f32 q8_0 q4_1; do
        echo "| $w | $(compress_only "$tmp/alice6k.txt" "$threads" -m smollm2 --dtype "$w" --segments 8 --min-segment 1) |"
    done ;;
latin2)
    (cd "$tmp" && apt-get download fortunes-cs >/dev/null 2>&1 && dpkg -x fortunes-cs_*.deb fcs)
    head -c 16384 "$tmp"/fcs/usr/share/games/fortunes/cs/citace > "$tmp/cs-utf8.txt"
    iconv -c -f UTF-8 -t ISO-8859-2 "$tmp/cs-utf8.txt" > "$tmp/cs-latin2.txt"
    echo "| model | encoding | bytes | archive | bpb | compress B/s |"
    echo "|---|---|---|---|---|---|"
    for m in smollm2 gru-cm; do
        for e in utf8 latin2; do
            f="$tmp/cs-$e.txt"
            echo "| $m | $e | $(stat -c %s "$f") | $(compress_only "$f" "$threads" -m "$m") |"
        done
    done ;;
*) echo "unknown table '$1'" >&2; exit 2 ;;
esac
