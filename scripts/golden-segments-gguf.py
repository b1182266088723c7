#!/usr/bin/env python3
"""Writes tests/golden/weights-segments.gguf (scripts/make-golden.sh): a GGUF v3 file whose q4_0
tensor is one chunk of over 2^20 rANS symbols, so that its archive (tensor archive version 2)
holds a chunk of two segments (coder/rans.rs, SEGMENT), the first ending inside a block's run
of 32 nibbles, beside a small q8_0 and an f32 tensor.
Synthetic weights (seeded, bell-shaped nibbles around each block's zero point), not training
data.
    scripts/golden-segments-gguf.py OUT
"""
import random
import struct
import sys

rng = random.Random(20261207)


def f16(x):
    return struct.pack("<e", x)


def string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def q4_0(blocks):
    out = bytearray()
    for _ in range(blocks):
        out += f16(rng.uniform(0.004, 0.02))
        q = [min(15, max(0, round(rng.gauss(8, 2.5)))) for _ in range(32)]
        out += bytes(q[j] | q[j + 16] << 4 for j in range(16))
    return bytes(out)


def q8_0(blocks):
    out = bytearray()
    for _ in range(blocks):
        out += f16(rng.uniform(0.001, 0.004))
        out += bytes(max(-127, min(127, round(rng.gauss(0, 30)))) & 255 for _ in range(32))
    return bytes(out)


def f32(n):
    return b"".join(struct.pack("<f", rng.gauss(0, 0.05)) for _ in range(n))


# (name, dims, GGML type, data): 31,232 q4_0 blocks of 34 symbols each (the scale's two, then a
# run of 32 nibbles): 1,061,888 > 2^20, which falls 16 symbols into block 30,841's run.
rows, cols = 976, 1024
tensors = [
    ("blk.0.ffn_up.weight", [cols, rows], 2, q4_0(rows * cols // 32)),
    ("blk.0.attn_q.weight", [64, 64], 8, q8_0(64 * 64 // 32)),
    ("output_norm.weight", [256], 0, f32(256)),
]
header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 1)
header += string("general.architecture") + struct.pack("<I", 8) + string("llama")
offset, infos, data = 0, b"", b""
for name, dims, kind, blob in tensors:
    infos += string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
    infos += struct.pack("<IQ", kind, offset)
    pad = (-len(blob)) % 32
    data += blob + bytes(pad)
    offset += len(blob) + pad
head = header + infos
head += bytes((-len(head)) % 32)
with open(sys.argv[1], "wb") as f:
    f.write(head + data)
