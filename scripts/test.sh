#!/usr/bin/env bash
# The whole test suite (the README's test command; .ci/run calls it): the Rust workspace, then
# the Python package in a virtual environment made here (target/python-venv), installed the way
# users install it (`pip install ./python[ray]`, which builds the native module with maturin
# from PyPI), with its pytest suite, the two-node Ray cluster tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace
venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "./python[ray,test]"
"$venv/bin/python" -m pytest -q python/tests
