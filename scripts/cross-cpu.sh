#!/usr/bin/env bash
# Decodes golden archives on other CPUs than this one, under qemu-user, and compares the bytes:
# the check that a CPU archive decodes on every x86-64 machine (docs/format.md, "Portability").
#
#   scripts/cross-cpu.sh            # every golden archive, natively and under -cpu Haswell
#                                   # (AVX2 + FMA, no AVX-512) and -cpu Nehalem (SSE4.2: no AVX,
#                                   # no FMA); SmolLM2's only when scripts/fetch-models.sh ran
#   scripts/cross-cpu.sh --quick    # the CI subset (tests/cross_cpu.rs): the tiny test models'
#                                   # archives, the empty and stored ones, and the default model's
#   CPUS="Nehalem" scripts/cross-cpu.sh   # other CPU models (qemu-x86_64 -cpu help lists them)
#   ARCHIVES="weights* gru*" scripts/cross-cpu.sh   # only the golden archives these globs name
#   CPUS=aarch64 LLMZIP_BIN=... scripts/cross-cpu.sh   # an aarch64 build under qemu-aarch64
#                                   # (scripts/cross-aarch64.sh builds one and runs this)
#
# Installs qemu-user (Debian) when it is missing. Archives listed in
# tests/golden/machine-bound.txt may fail, but only with the message that calls them
# machine-bound; any other failure fails the run. Emulation is slow: a tiny model's archive takes
# seconds, the default model's 20-200 s, SmolLM2's many minutes (each decode is stopped, and
# counted as failed, after DECODE_TIMEOUT seconds, default 7200). Ends with "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  *) echo "usage: scripts/cross-cpu.sh [--quick]" >&2; exit 2 ;;
esac
read -r -a cpus <<<"${CPUS:-native Haswell Nehalem}"
[ ${#cpus[@]} -gt 0 ] || { echo "CPUS names no CPU" >&2; exit 2; }

if ! command -v qemu-x86_64 >/dev/null; then
  echo "qemu-x86_64 is missing: installing Debian's qemu-user" >&2
  apt-get update -qq >&2 && apt-get install -y -qq qemu-user >&2
fi
if [ -n "${LLMZIP_BIN:-}" ]; then
  bin="$LLMZIP_BIN"
else
  cargo build --release --quiet --bin llmzip
  bin="$PWD/target/release/llmzip"
fi
g=tests/golden
# The fetched models and the tiny test models first, then whatever the caller had.
export LLMZIP_MODELS="$PWD/models:$PWD/$g/models${LLMZIP_MODELS:+:$LLMZIP_MODELS}"
# The archives that may fail, with the machine-bound message only (the golden test reads the
# same file): names without comments, blank lines, surrounding blanks or carriage returns.
[ -r "$g/machine-bound.txt" ] || { echo "$g/machine-bound.txt is missing" >&2; exit 2; }
declare -A bound=()
while IFS= read -r line; do
  line="${line%$'\r'}"
  line="${line#"${line%%[![:space:]]*}"}"
  line="${line%"${line##*[![:space:]]}"}"
  [ -z "$line" ] || [ "${line:0:1}" = "#" ] || bound["$line"]=1
done <"$g/machine-bound.txt"

archives=()
for a in "$g"/*.llmz; do
  name="$(basename "$a")"
  if [ $quick = 1 ]; then
    case "$name" in
      tiny-*|empty.llmz|stored.bin.llmz|gru4-cm5.txt.llmz|fast1.txt.llmz|fast-blocks.bin.llmz|weights-segments.gguf.llmz) ;;
      *) continue ;;
    esac
  fi
  if [ -n "${ARCHIVES:-}" ]; then
    keep=0
    for pattern in $ARCHIVES; do
      # shellcheck disable=SC2053 # a glob on purpose
      [[ "$name" == $pattern ]] && keep=1
    done
    [ $keep = 1 ] || continue
  fi
  archives+=("$name")
done

passed=0
failed=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for cpu in "${cpus[@]}"; do
  case "$cpu" in
    native) run=("$bin") ;;
    aarch64) run=(qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin") ;;
    *) run=(qemu-x86_64 -cpu "$cpu" "$bin") ;;
  esac
  for name in "${archives[@]}"; do
    if [[ "$name" == smollm2* ]] && [ ! -e models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
      echo "skip  $cpu  $name (SmolLM2 is not downloaded: scripts/fetch-models.sh)"
      continue
    fi
    if [[ "$name" == gemma3* ]] && [ ! -e models/gemma-3-270m-q4_k_m.gguf ]; then
      echo "skip  $cpu  $name (Gemma 3 is not downloaded: scripts/fetch-models.sh gemma3)"
      continue
    fi
    start=$(date +%s)
    rc=0
    # A fine-tune's archive names its base in NAME.base (tests/golden/README.md).
    base=()
    [ ! -e "$g/${name%.llmz}.base" ] || base=(--base "$g/$(head -n1 "$g/${name%.llmz}.base")")
    timeout -k 30 "${DECODE_TIMEOUT:-7200}" "${run[@]}" -q decompress "${base[@]}" -c "$g/$name" \
      >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" != 124 ] || echo "timed out after ${DECODE_TIMEOUT:-7200} s" >>"$tmp/err"
    if [ "$rc" = 0 ] && cmp -s "$tmp/out" "$g/${name%.llmz}"; then
      echo "ok    $cpu  $name  $(( $(date +%s) - start )) s"
      passed=$((passed + 1))
    elif [ -n "${bound[$name]:-}" ] && grep -q "machine-bound" "$tmp/err"; then
      echo "ok    $cpu  $name  machine-bound, refused as such: $(head -c 120 "$tmp/err")..."
      passed=$((passed + 1))
    else
      echo "FAIL  $cpu  $name: $(head -c 600 "$tmp/err")"
      failed=$((failed + 1))
    fi
  done
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
