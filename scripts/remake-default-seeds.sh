#!/usr/bin/env bash
# When the default model changes: keeps the fuzz seeds of the old default under its name
# (fuzz/seeds/OLD-KIND.llmz) and writes fuzz/seeds/default-KIND.llmz again with the new one, from
# the same original files and schedule flags, so that `decompress_default` keeps reaching the
# model the CLI uses (docs/robustness.md). Seeds already made by the default are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/llmzip
s=fuzz/seeds
new=$("$bin" models 2>/dev/null | sed -n 's/^ *-6 (default): \([^ ]*\) .*/\1/p')
[ -n "$new" ] || { echo "cannot tell the default model from 'llmzip models'" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for kind in text window binary; do
  f="$s/default-$kind.llmz"
  old=$("$bin" info "$f" | awk '$1 == "model" {print $2}')
  if [ "$old" = "$new" ]; then continue; fi
  case "$kind" in
    window) flags=(--window 64 --min-segment 100) ;;
    *) flags=() ;;
  esac
  "$bin" decompress -q -c "$f" > "$tmp/$kind"
  cp -n "$f" "$s/$old-$kind.llmz"
  # By level, not -m: a named model turns off the routing of binary data to fast blocks, which
  # the binary seed exists to reach. The default level uses the new default model.
  "$bin" compress -q "${flags[@]}" -c "$tmp/$kind" > "$tmp/$kind.llmz"
  "$bin" decompress -q -c "$tmp/$kind.llmz" | cmp - "$tmp/$kind"
  mv "$tmp/$kind.llmz" "$f"
  echo "$f: $old -> $new ($(stat -c %s "$f") bytes; the old one kept as $s/$old-$kind.llmz)" >&2
done
