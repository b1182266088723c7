#!/usr/bin/env bash
# Builds paq8px, the yardstick of issue 28 ("paq8px's ratio at 10x its speed"), from a source
# tree, so that its speed can be measured in the same run as llmzip's (scripts/speed-table.sh
# with PAQ8PX=target/paq8px/paq8px). paq8px is on no package registry these machines reach:
# get its source from https://github.com/hxim/paq8px (measured: commit 29237fb) and pass the
# folder.
#
#   scripts/paq8px.sh SRC_DIR      # writes target/paq8px/paq8px
#
# Built as its CMakeLists.txt builds it (-O3, no fast math, no RTTI, NDEBUG), without zlib (text
# needs no deflate recompression) and for this CPU (-march=native), the fastest paq8px this
# machine runs: a yardstick that errs in paq8px's favour.
set -euo pipefail
src="${1:?usage: scripts/paq8px.sh SRC_DIR (paq8px source, https://github.com/hxim/paq8px)}"
[ -f "$src/src/paq8px.cpp" ] || { echo "$src does not look like paq8px's source (no src/paq8px.cpp)" >&2; exit 1; }
cd "$(dirname "$0")/.."
out=target/paq8px
mkdir -p "$out/obj"
flags=(-std=c++17 -O3 -march=native -fno-fast-math -ffp-contract=off -fno-rtti -DNDEBUG -DDISABLE_ZLIB)
find "$src/src" -name '*.cpp' -print0 |
  xargs -0 -P "$(nproc)" -I{} sh -c 'o="$1/obj/$(echo "$2" | tr / _).o"; shift 2; g++ "$@" -c "$0" -o "$o"' {} "$out" {} "${flags[@]}"
g++ "$out"/obj/*.o -o "$out/paq8px" -lpthread
rm -rf "$out/obj"
echo "$out/paq8px"
