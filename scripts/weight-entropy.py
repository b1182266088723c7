#!/usr/bin/env python3
"""Order-0 entropies of the fields of a safetensors file's f32/bf16 tensors: what any per-value
model of the exponent, the sign and the mantissa bytes can hope for (docs/benchmarks.md,
"Weight files"). The last lines bound a per-tensor model of the sign, exponent and top k
mantissa bits *jointly* (the rest raw): the ratio it would reach on the whole file's floats.
No numpy needed.

    python3 scripts/weight-entropy.py crates/llmzip/models/gru/model.safetensors
"""
import collections
import json
import math
import struct
import sys


def entropy(counts):
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values() if c)


def main(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    print(f"{'tensor':<22} {'dtype':<5} {'values':>8} {'exponent':>9} {'sign':>6} "
          f"{'sign|above':>10} {'mantissa bytes (high to low)':>30}")
    joint_bits = collections.Counter()
    raw_bits = 0
    for name, t in sorted(header.items()):
        if name == "__metadata__" or t["dtype"] not in ("F32", "BF16"):
            continue
        start, end = t["data_offsets"]
        width, exp_shift, mant_bits = (4, 23, 23) if t["dtype"] == "F32" else (2, 7, 7)
        fmt = "<%d%s" % ((end - start) // width, "I" if width == 4 else "H")
        values = struct.unpack(fmt, data[base + start:base + end])
        sign_shift = 8 * width - 1
        exps = collections.Counter((v >> exp_shift) & 255 for v in values)
        signs = collections.Counter(v >> sign_shift for v in values)
        # The sign given the sign of the value one row above (rows are the last dimension).
        cols = t["shape"][-1] if len(t["shape"]) >= 2 else 0
        pairs = collections.Counter(
            (values[i] >> sign_shift, values[i - cols] >> sign_shift)
            for i in range(cols, len(values))) if cols else None
        if pairs:
            cond = 0.0
            for above in (0, 1):
                sub = {s: pairs[(s, above)] for s in (0, 1)}
                cond += sum(sub.values()) * entropy(collections.Counter(sub))
            cond /= sum(pairs.values())
            cond_text = f"{cond:.3f}"
        else:
            cond_text = "-"
        mant = []
        for byte in range((mant_bits + 7) // 8):
            shift = max(mant_bits - 8 * (byte + 1), 0)
            mask = (1 << min(8, mant_bits - 8 * byte)) - 1
            mant.append(entropy(collections.Counter((v >> shift) & mask for v in values)))
        raw_bits += 8 * width * len(values)
        for k in (0, 2, 4, 6):
            top = collections.Counter(v >> (mant_bits - k) for v in values)
            joint_bits[k] += len(values) * (entropy(top) + mant_bits - k)
        print(f"{name:<22} {t['dtype']:<5} {len(values):>8} {entropy(exps):>9.3f} "
              f"{entropy(signs):>6.3f} {cond_text:>10} "
              f"{' '.join(f'{m:.3f}' for m in mant):>30}")
    for k, bits in sorted(joint_bits.items()):
        print(f"sign + exponent + top {k} mantissa bits jointly, per tensor, the rest raw: "
              f"{raw_bits / bits:.4f}x of the floats")


if __name__ == "__main__":
    main(sys.argv[1])
