#!/usr/bin/env python3
"""The weight-file codec's peers on the same files (scripts/weights-bench.sh): zipnn and bigsmall
from PyPI, pinned, in the Python of target/peers-venv (made by weights-bench.sh). Writes rows in
the format of `llmzip bench`'s results.json, for its --include.

    target/peers-venv/bin/python scripts/peer_bench.py OUT.json FILE...

* zipnn 0.5.4, its byte API (`ZipNN(input_format="byte")`, the file's float type, 2 threads),
  on every file. It does not give these files back (its output differs from the input): its
  rows show its ratio and speed as measured, with `exact` NO.
* bigsmall 4.0.0 (`compress` / `decompress` of a safetensors file; it reads no GGUF), compared
  tensor by tensor, bit for bit. Files of more than 256 MB are left out: at ~2 MB/s it would
  take minutes per file.
Timings are wall-clock, single runs, in this process.
"""
import json
import os
import struct
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")


def row(path, method, archive, c, d, verified):
    size = os.path.getsize(path)
    return {
        "file": os.path.basename(path),
        "original_bytes": size,
        "kind": "baseline",
        "method": method,
        "device": "cpu",
        "status": "ok",
        "archive_bytes": archive,
        "bits_per_byte": 8 * archive / size,
        "compress_seconds": c,
        "decompress_seconds": d,
        "verified": verified,
        "peak_rss_mib": None,
        "compress_profile": [],
    }


def zipnn_row(path):
    import zipnn

    data = open(path, "rb").read()
    dtype = "float32" if "f32" in os.path.basename(path) else "bfloat16"
    make = lambda: zipnn.ZipNN(input_format="byte", bytearray_dtype=dtype, threads=2)
    t0 = time.time()
    packed = make().compress(data)
    t1 = time.time()
    back = make().decompress(packed)
    t2 = time.time()
    same = bytes(back) == data
    return row(path, "zipnn 0.5.4", len(packed), t1 - t0, t2 - t1, same)


def same_tensors(got, path):
    import numpy as np

    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    for name, t in header.items():
        if name == "__metadata__":
            continue
        s, e = t["data_offsets"]
        if np.ascontiguousarray(got[name]).tobytes() != raw[8 + n + s:8 + n + e]:
            return False
    return True


def bigsmall_row(path):
    import bigsmall

    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "x.bs")
        t0 = time.time()
        bigsmall.compress(path, out, progress=False)
        t1 = time.time()
        got = bigsmall.decompress(out, progress=False)
        t2 = time.time()
        same = same_tensors(got, path)
        return row(path, "bigsmall 4.0.0", os.path.getsize(out), t1 - t0, t2 - t1, same)


if __name__ == "__main__":
    # bigsmall works in a process pool that re-imports this file: the work is guarded.
    rows = []
    for path in sys.argv[2:]:
        rows.append(zipnn_row(path))
        if path.endswith(".safetensors") and os.path.getsize(path) <= 256_000_000:
            rows.append(bigsmall_row(path))
        print(f"{path}: done", file=sys.stderr)
    json.dump(rows, open(sys.argv[1], "w"), indent=1)
