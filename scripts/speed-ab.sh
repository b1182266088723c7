#!/usr/bin/env bash
# Speed of two llmzip builds on the same files, interleaved (A B A B …), both ways, with 1 and 2
# threads, each archive decompressed and compared; xz -9e's time on the same file in the same
# run as a yardstick. A thin front to scripts/speed-table.sh (whose variants are split at
# commas: the binaries' paths must not contain one).
#
#   scripts/speed-ab.sh OLD_BINARY NEW_BINARY [RUNS] FILES...     # RUNS: 3 when left out
#
# Prints a Markdown table of median seconds and KB/s (1 KB = 1000 bytes), and says whether the
# two builds wrote identical archives ("A=B" under "Identical archives").
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY [RUNS] FILES..." >&2; exit 2; }
a="$1"; b="$2"; shift 2
runs=3
if [[ "$1" =~ ^[0-9]+$ ]]; then runs="$1"; shift; fi
exec "$(dirname "$0")/speed-table.sh" --runs "$runs" "A=$a" "B=$b" -- "$@"
