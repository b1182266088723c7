#!/usr/bin/env bash
# Speed of two llmzip builds on the same files, interleaved (A B A B …), both ways, with 1 and 2
# threads, each archive decompressed and compared; xz -9e's time on the same file in the same
# run as the yardstick that travels between machines. A thin front to scripts/speed-table.sh.
#
#   scripts/speed-ab.sh OLD_BINARY NEW_BINARY [RUNS] FILES...
#
# Prints a Markdown table of median seconds and KB/s (1 KB = 1000 bytes), and says whether the
# two builds wrote identical archives ("A=B" under "Identical archives").
set -euo pipefail
a="$1"; b="$2"; runs="${3:-3}"; shift 3
exec "$(dirname "$0")/speed-table.sh" --runs "$runs" "A=$a" "B=$b" -- "$@"
