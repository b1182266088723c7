#!/usr/bin/env python3
"""Mean of llmzip train checkpoints (safetensors, all F32), each tensor summed in f64 and
rounded to f32: how gru4's shipped weights were made from its last 8 checkpoints (docs/training.md,
"Issue 28, third session"). Usage: average-checkpoints.py OUT.safetensors IN.safetensors...; put
the run's config.json next to OUT to use it as a model directory (`-m DIR-cm5`). Needs numpy."""
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8+n]); data = b[8+n:]
    meta = h.pop('__metadata__', None)
    t = {k: np.frombuffer(data[v['data_offsets'][0]:v['data_offsets'][1]], dtype=np.float32).reshape(v['shape']) for k, v in h.items()}
    assert all(v['dtype'] == 'F32' for v in h.values())
    return t, meta
out, ins = sys.argv[1], sys.argv[2:]
acc = None
for p in ins:
    t, meta = load(p)
    if acc is None: acc = {k: v.astype(np.float64) for k, v in t.items()}
    else:
        for k in acc: acc[k] += t[k]
keys = sorted(acc)
hdr = {}; off = 0; blobs = []
for k in keys:
    a = (acc[k] / len(ins)).astype(np.float32)
    bb = a.tobytes(); hdr[k] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [off, off+len(bb)]}; off += len(bb); blobs.append(bb)
if meta: hdr['__metadata__'] = meta
hj = json.dumps(hdr, separators=(',', ':')).encode()
hj += b' ' * ((8 - len(hj) % 8) % 8)
open(out, 'wb').write(struct.pack('<Q', len(hj)) + hj + b''.join(blobs))
print(out, len(ins), 'checkpoints')
