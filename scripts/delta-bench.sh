#!/usr/bin/env bash
# Fine-tunes against their base (issue 30, part 2): `llmzip compress --base` against bigsmall's
# `compress_delta` (PyPI bigsmall, pinned below), side by side on the same real pairs, each also
# coded alone. The pairs are the embedded GRUs, each trained on from the one before
# (crates/llmzip/models/gru -> gru2 -> gru3), in f32 as trained and cast to bf16
# (scripts/bf16-cast.py). Every archive is decompressed and compared byte for byte (bigsmall's
# tensors value for value, bit for bit). Prints a markdown table; the bigsmall venv is made in
# target/bigsmall-venv on first use.
#   scripts/delta-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin="$PWD/target/release/llmzip"
venv=target/bigsmall-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "bigsmall==4.0.0" numpy safetensors
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
m=crates/llmzip/models
for g in gru gru2 gru3; do
    cp "$m/$g/model.safetensors" "$work/$g-f32.safetensors"
    python3 scripts/bf16-cast.py "$work/$g-f32.safetensors" "$work/$g-bf16.safetensors"
done
cat >"$work/bigsmall_pair.py" <<'PY'
import sys, time, os, warnings
import bigsmall
sys.path.insert(0, os.environ["LLMZIP_SCRIPTS"])
from peer_bench import same_tensors  # the check weights-bench.sh's peers use too
warnings.filterwarnings("ignore")

if __name__ == "__main__":
    # bigsmall works in a process pool that re-imports this file: the work is guarded.
    tuned, base, work = sys.argv[1:4]
    a = os.path.join(work, "alone.bs")
    bigsmall.compress(tuned, a, progress=False)
    d = os.path.join(work, "delta.bs")
    t2 = time.time(); bigsmall.compress_delta(tuned, base, d, progress=False); t3 = time.time()
    got = bigsmall.decompress_delta(d, base, progress=False); t4 = time.time()
    assert same_tensors(got, tuned), f"{tuned}: bigsmall's delta did not give it back"
    print(os.path.getsize(a), os.path.getsize(d), f"{t3 - t2:.3f}", f"{t4 - t3:.3f}")
PY
now() { date +%s.%N; }
mbs() { echo "$1 / 1000000 / ($3 - $2)" | bc -l | xargs printf "%.1f"; }
echo "| pair | bytes | llmzip alone | llmzip --base | bigsmall alone | bigsmall compress_delta |"
echo "|---|---:|---:|---:|---:|---:|"
for dtype in f32 bf16; do
    for pair in gru:gru2 gru2:gru3; do
        base="$work/${pair%%:*}-$dtype.safetensors"
        tuned="$work/${pair##*:}-$dtype.safetensors"
        size=$(stat -c %s "$tuned")
        t0=$(now); "$bin" -q compress -f -c "$tuned" >"$work/alone.llmz"; t1=$(now)
        "$bin" -q decompress -c "$work/alone.llmz" | cmp -s - "$tuned"
        t2=$(now); "$bin" -q compress -f --base "$base" -c "$tuned" >"$work/delta.llmz"; t3=$(now)
        "$bin" -q decompress --base "$base" -c "$work/delta.llmz" | cmp -s - "$tuned"; t4=$(now)
        alone=$(stat -c %s "$work/alone.llmz"); delta=$(stat -c %s "$work/delta.llmz")
        bs=$(LLMZIP_SCRIPTS="$PWD/scripts" "$venv/bin/python" "$work/bigsmall_pair.py" "$tuned" "$base" "$work" 2>/dev/null | tail -1)
        read -r bs_alone bs_delta bs_c bs_d <<<"$bs"
        ratio() { echo "$size / $1" | bc -l | xargs printf "%.4fx"; }
        echo "| ${pair%%:*} → ${pair##*:} ($dtype) | $size | $alone ($(ratio "$alone")) | **$delta ($(ratio "$delta"))**, $(mbs "$size" "$t2" "$t3") / $(mbs "$size" "$t3" "$t4") MB/s | $bs_alone ($(ratio "$bs_alone")) | $bs_delta ($(ratio "$bs_delta")), $(echo "$size / 1000000 / $bs_c" | bc -l | xargs printf "%.1f") / $(echo "$size / 1000000 / $bs_d" | bc -l | xargs printf "%.1f") MB/s |"
    done
done
