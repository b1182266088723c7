#!/usr/bin/env bash
# Assembles llmzip's data from package registries only (Debian, PyPI, the local cargo registry):
#   data/train/  training corpus (Debian texts + Rust sources), never used for testing
#   data/valid/  held-out validation text (whole fortune files: literature, people, wisdom)
#   data/valid-kinds/  validation texts of other kinds (JSON, TSV, C, man pages, HTML, Polish)
#   data/test/   the Canterbury texts alice29, asyoulik, lcet10, plrabn12 (from Brotli's sdist),
#                used for tests and benchmarks, never for training
#   data/large/  with --large only: a 10 MiB text for GPU benchmarks (kernel documentation)
# Idempotent: files already present are kept. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data/train data/valid data/test
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- test texts: Canterbury corpus inside the Brotli source distribution -----------------------
if [ ! -s data/test/plrabn12.txt ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "Brotli==1.1.0"
  tar -xzf "$tmp"/[Bb]rotli-*.tar.gz -C "$tmp"
  for f in alice29.txt asyoulik.txt lcet10.txt plrabn12.txt; do
    cp "$(find "$tmp" -path "*tests/testdata/$f" | head -n 1)" data/test/$f
  done
  rm -rf "$tmp"
fi

# --- training texts: Debian packages ------------------------------------------------------------
need=()
command -v bible >/dev/null || need+=(bible-kjv)
[ -d /usr/share/games/fortunes ] || need+=(fortunes)
[ -d /usr/share/dictd ] && ls /usr/share/dictd/gcide* >/dev/null 2>&1 || need+=(dict-gcide)
[ -d /usr/share/doc/debian-handbook ] || need+=(debian-handbook)
if [ ${#need[@]} -gt 0 ]; then
  sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq "${need[@]}" >/dev/null
fi

# King James Bible, one verse per line (~4.4 MB).
[ -s data/train/bible-kjv.txt ] || bible -f 'Gen1:1-Rev22:21' </dev/null >data/train/bible-kjv.txt

# Fortune cookies (plain text files, '%' separated). Three whole category files are held out
# as the validation split; the rest train.
heldout="literature people wisdom"
if [ ! -s data/train/fortunes.txt ] || [ ! -s data/valid/fortunes-heldout.txt ]; then
  : >data/train/fortunes.txt; : >data/valid/fortunes-heldout.txt
  for f in $(find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort); do
    case " $heldout " in
      *" $(basename "$f") "*) cat "$f" >>data/valid/fortunes-heldout.txt ;;
      *) cat "$f" >>data/train/fortunes.txt ;;
    esac
  done
fi

# GNU Collaborative International Dictionary of English (dictzip is gzip-compatible), first
# 12 MB (entries A to about F): the whole 40 MB would swamp the other sources.
if [ ! -s data/train/gcide.txt ]; then
  zcat /usr/share/dictd/gcide.dict.dz | head -c 12000000 >data/train/gcide.txt || true
fi

# The Debian Administrator's Handbook (English HTML -> text with tags stripped).
if [ ! -s data/train/debian-handbook.txt ]; then
  find /usr/share/doc/debian-handbook/html/en-US -name '*.html' -print0 | sort -z \
    | xargs -0 cat | python3 -c '
import html, re, sys
t = sys.stdin.read()
t = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", t)
t = re.sub(r"(?s)<[^>]+>", "", t)
t = html.unescape(t)
t = re.sub(r"(?m)^[ \t]+", "", t)
t = re.sub(r"[ \t]+\n", "\n", t)
t = re.sub(r"\n{3,}", "\n\n", t)
sys.stdout.write(t)' >data/train/debian-handbook.txt
fi

# Rust sources from the local cargo registry (the crates llmzip itself builds with), capped at 4 MB.
if [ ! -s data/train/rust-sources.rs.txt ]; then
  find "${CARGO_HOME:-$HOME/.cargo}"/registry/src -name '*.rs' -size -64k -print0 2>/dev/null | sort -z \
    | xargs -0 cat 2>/dev/null | head -c 4000000 >data/train/rust-sources.rs.txt || true
fi

# --- validation texts of other kinds (data/valid-kinds/): for tuning models on more than prose,
# never for training. Each is cut to at most 300 KB. All come from Debian packages installed
# here (iso-codes, tzdata, the C library headers, man pages, package documentation) or
# downloaded with apt-get download (fortunes-pl, Polish UTF-8). `head` closes the pipes early,
# hence the `|| true`s.
mkdir -p data/valid-kinds
cap() { head -c 300000; }
[ -s data/valid-kinds/iso-3166-2.json ] || cap </usr/share/iso-codes/json/iso_3166-2.json >data/valid-kinds/iso-3166-2.json
if [ ! -s data/valid-kinds/packages.tsv ]; then
  dpkg-query -W -f='${Package}\t${Version}\t${Architecture}\t${Installed-Size}\t${Maintainer}\n' \
    | sort | cap >data/valid-kinds/packages.tsv || true
fi
if [ ! -s data/valid-kinds/c-headers.h ]; then
  find /usr/include -maxdepth 1 -name '*.h' -print0 | sort -z | xargs -0 cat | cap >data/valid-kinds/c-headers.h || true
fi
if [ ! -s data/valid-kinds/man-pages.troff ]; then
  find /usr/share/man/man1 -name '*.1.gz' -print0 | sort -z | xargs -0 zcat 2>/dev/null | cap \
    >data/valid-kinds/man-pages.troff || true
fi
if [ ! -s data/valid-kinds/docs.html ]; then
  find /usr/share/doc -name '*.html' ! -path '*debian-handbook*' -print0 | sort -z \
    | xargs -0 cat 2>/dev/null | cap >data/valid-kinds/docs.html || true
fi
if [ ! -s data/valid-kinds/fortunes-pl.txt ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download fortunes-pl >/dev/null && dpkg-deb -x fortunes-pl_*.deb x)
  find "$tmp/x/usr/share/games/fortunes/pl" -type f ! -name '*.dat' ! -name '*.u8' -print0 | sort -z \
    | xargs -0 cat | cap >data/valid-kinds/fortunes-pl.txt || true
  rm -rf "$tmp"
fi

# --- a large benchmark text (data/large/, only with --large): >= 10 MB for GPU benchmarks
# (scripts/gpu-bench.sh), never for training or tuning. The Linux kernel's documentation
# (reStructuredText, Debian package linux-doc-6.1, downloaded with apt-get download, not
# installed): every .rst.gz file in path order, uncompressed, cut at 10 MiB.
if [ "${1:-}" = --large ] && [ ! -s data/large/kernel-docs.txt ]; then
  mkdir -p data/large
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download linux-doc-6.1 >/dev/null && dpkg-deb -x linux-doc-6.1_*.deb x)
  find "$tmp/x/usr/share/doc" -name '*.rst.gz' -print0 | LC_ALL=C sort -z \
    | xargs -0 zcat | head -c 10485760 >data/large/kernel-docs.txt.part || true
  [ "$(wc -c <data/large/kernel-docs.txt.part)" = 10485760 ]
  mv data/large/kernel-docs.txt.part data/large/kernel-docs.txt
  rm -rf "$tmp"
fi

echo "training corpus (data/train):"
ls -l data/train | awk 'NR>1 {printf "  %-28s %10d bytes\n", $9, $5; s+=$5} END {printf "  %-28s %10d bytes\n", "total", s}'
echo "validation text (data/valid):"
ls -l data/valid | awk 'NR>1 {printf "  %-28s %10d bytes\n", $9, $5}'
echo "validation texts of other kinds (data/valid-kinds):"
ls -l data/valid-kinds | awk 'NR>1 {printf "  %-28s %10d bytes\n", $9, $5}'
echo "test texts (data/test):"
ls -l data/test | awk 'NR>1 {printf "  %-28s %10d bytes\n", $9, $5}'
