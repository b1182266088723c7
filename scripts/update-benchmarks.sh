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
# GPU rows come from a GPU machine (scripts/gpu-bench.sh writes results.json there); kept in
# docs/bench/gpu-results.json, they join this run's tables and plots.
gpu=()
[ -f "$out/gpu-results.json" ] && gpu=(--include "$out/gpu-results.json")
table=$(target/release/llmzip bench -q --out "$out" "${gpu[@]}" "$@")
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
  if [ ${#gpu[@]} -gt 0 ]; then
    echo "Rows whose device names a GPU were measured on that GPU's machine by"
    echo "\`scripts/gpu-bench.sh\` (docs/devices.md) and kept in [gpu-results.json](bench/gpu-results.json);"
    echo "its text is data/large/kernel-docs.txt (10 MiB), its baselines ran on that machine's CPU."
  else
    echo "GPU figures: none yet. The CUDA binary (\`scripts/build-cuda.sh\`) and the GPU benchmark"
    echo "(\`scripts/gpu-bench.sh\`) exist, but no session has been lent a GPU machine (docs/devices.md)."
  fi
  # The weight-file section, kept from its own script (scripts/weights-bench.sh).
  if [ -f "$out/weights/section.md" ]; then
    echo
    cat "$out/weights/section.md"
  fi
} >docs/benchmarks.md
echo "wrote docs/benchmarks.md"
