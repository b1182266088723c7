#!/usr/bin/env bash
# Regenerates docs/benchmarks.md (and docs/bench/: CSV, JSON, plots) by running `llmzip bench`
# on the Canterbury texts with every model given (default: the embedded gru) on this machine.
#   scripts/update-benchmarks.sh [--models gru,...] [--devices cpu,...] [--threads N]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f data/test/alice29.txt ] || scripts/fetch-data.sh
cargo build --release -q
out=docs/bench
mkdir -p "$out"
table=$(target/release/llmzip bench -q --out "$out" "$@")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
{
  echo "# Benchmarks"
  echo
  echo "Regenerate with \`scripts/update-benchmarks.sh $*\` (runs \`llmzip bench\` on the Canterbury"
  echo "texts from \`scripts/fetch-data.sh\`, then rewrites this page and \`docs/bench/\`)."
  echo
  echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%d);"
  echo "llmzip $(git rev-parse --short HEAD 2>/dev/null || echo unknown). Every llmzip row was"
  echo "decompressed and compared byte for byte (column *exact*). Speeds are single runs on a shared"
  echo "machine: orders of magnitude, not decimals. Peak MiB is the process's resident peak during"
  echo "that row (VmHWM), which includes the loaded models."
  echo
  echo "$table"
  echo
  echo "![bits per byte vs compression speed](bench/pareto.svg)"
  echo
  echo "![compression time by stage](bench/profile.svg)"
  echo
  echo "Raw data: [results.csv](bench/results.csv), [results.json](bench/results.json)."
  echo
  echo "GPU figures: none yet. The \`cuda\` and \`metal\` features pass through to candle for every"
  echo "model; no GPU machine was available to the session that wrote this page."
} >docs/benchmarks.md
echo "wrote docs/benchmarks.md"
