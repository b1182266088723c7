#!/usr/bin/env bash
# Builds paq8px, the yardstick of issue 28 ("paq8px's ratio at 10x its speed"), from a source
# tree, so that its speed can be measured in the same run as llmzip's (scripts/speed-table.sh
# with PAQ8PX=target/paq8px/paq8px). paq8px is on no package registry these machines reach:
# get its source from https://github.com/hxim/paq8px (measured: v216, commit 29237fb) and pass
# the folder.
#
#   scripts/paq8px.sh SRC_DIR      # writes target/paq8px/paq8px
#
# The flags are those of its CMakeLists.txt (-O3 and its loop options, no fast math, no RTTI,
# NDEBUG, link-time optimisation) with NATIVECPU on (-march=native) and zlib off (text needs no
# deflate recompression): the build its authors offer for speed, on this CPU.
set -euo pipefail
src="${1:?usage: scripts/paq8px.sh SRC_DIR (paq8px source, https://github.com/hxim/paq8px)}"
[ -f "$src/src/paq8px.cpp" ] || { echo "$src does not look like paq8px's source (no src/paq8px.cpp)" >&2; exit 1; }
src=$(cd "$src" && pwd)
cd "$(dirname "$0")/.."
out=target/paq8px
rm -rf "$out/obj"
mkdir -p "$out/obj"
flags=(-std=c++17 -O3 -floop-strip-mine -funroll-loops -ftree-vectorize -fgcse-sm -falign-loops=16
  -fno-fast-math -ffp-contract=off -march=native -mtune=native -fno-rtti -DNDEBUG -DDISABLE_ZLIB
  -flto)
# One compiler per core; each object is named after its path below src/.
find "$src/src" -name '*.cpp' -print0 |
  xargs -0 -P "$(nproc)" -I{} sh -c 'o="$1/obj/$(printf %s "$2" | tr / _).o"; shift 2; exec g++ "$@" -c "$0" -o "$o"' \
    {} "$out" {} "${flags[@]}"
g++ "${flags[@]}" -flto="$(nproc)" "$out"/obj/*.o -o "$out/paq8px" -lpthread
rm -rf "$out/obj"
echo "$out/paq8px"
