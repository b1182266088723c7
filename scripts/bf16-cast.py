#!/usr/bin/env python3
"""Casts an f32 safetensors file to bf16 (round to nearest, ties to even: what torch's
.to(torch.bfloat16) does), keeping names, shapes, order and metadata. Standard library only.

    python3 scripts/bf16-cast.py IN.safetensors OUT.safetensors
"""
import json
import struct
import sys

src = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", src[:8])[0]
header = json.loads(src[8:8 + n])
base = 8 + n
out, data = {}, bytearray()
tensors = [(k, v) for k, v in header.items() if k != "__metadata__"]
for name, t in sorted(tensors, key=lambda kv: kv[1]["data_offsets"][0]):
    assert t["dtype"] == "F32", f"{name} is {t['dtype']}, not F32"
    s, e = t["data_offsets"]
    start = len(data)
    for (x,) in struct.iter_unpack("<I", src[base + s:base + e]):
        data += struct.pack("<H", ((x + 0x7FFF + ((x >> 16) & 1)) >> 16) & 0xFFFF)
    out[name] = {"dtype": "BF16", "shape": t["shape"], "data_offsets": [start, len(data)]}
if "__metadata__" in header:
    out["__metadata__"] = header["__metadata__"]
j = json.dumps(out, separators=(",", ":")).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(j)) + j + data)
