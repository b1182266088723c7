"""Shared fixtures: sample data, the command-line tool, the repository's files."""

import os
import pathlib
import random
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli():
    """The `llmzip` binary of this checkout (built by `cargo test --release` or `cargo build
    --release`; LLMZIP_BIN overrides)."""
    path = os.environ.get("LLMZIP_BIN") or str(ROOT / "target" / "release" / "llmzip")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release", "--bin", "llmzip"], cwd=ROOT, check=True)
    return path


def text(n):
    """English-like text of `n` bytes (the repository's own docs, repeated)."""
    source = b"".join(p.read_bytes() for p in sorted((ROOT / "docs").glob("*.md")))
    return (source * (n // len(source) + 1))[:n]


def random_bytes(n, seed):
    return random.Random(seed).randbytes(n)


@pytest.fixture(scope="session")
def sample():
    return text(30_000)


@pytest.fixture
def weights_file(tmp_path):
    """A real safetensors file: the embedded GRU's weights."""
    src = ROOT / "crates" / "llmzip" / "models" / "gru" / "model.safetensors"
    dst = tmp_path / "model.safetensors"
    shutil.copy(src, dst)
    return dst
