#!/usr/bin/env python3
"""Model-ideal bits per byte of a GGUF model on text files, through llama.cpp (issue 29, part 2).

An outside reference, not part of llmzip: it measures what a model *could* give before any work
goes into supporting it in llmzip (Gemma 3 270M has its own architecture and a 262 K
SentencePiece vocabulary that llmzip's network and tokenizers do not have yet). The schedule
imitates llmzip's default for transformers: the text is tokenized whole, cut into rows of
`--row` tokens, each row starts from BOS with an empty cache, and every token of every row is
charged -log2 p under the model's distribution after the tokens before it in its row. No
mixing, no coder: bits / bytes is the model-ideal rate (llmzip's `--stats` "model ideal").

Setup (llama.cpp is compiled from the sdist, ~10 minutes on 2 cores; numpy from PyPI):
    python3 -m venv /tmp/lcp
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DGGML_OPENMP=OFF" \
        /tmp/lcp/bin/pip install llama-cpp-python==0.3.36 numpy
Run:
    /tmp/lcp/bin/python scripts/experiments/llama-cpp-ideal.py MODEL.gguf FILE... \
        [--row 1536] [--limit BYTES] [--threads 2]
"""

import argparse
import math
import sys
import time

import numpy as np
from llama_cpp import Llama


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--row", type=int, default=1536, help="tokens per row (llmzip int8: 1536)")
    ap.add_argument("--limit", type=int, default=0, help="first BYTES of each file (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    llm = Llama(
        model_path=args.model,
        n_ctx=args.row + 8,
        n_batch=512,
        n_ubatch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        logits_all=True,
        verbose=False,
    )
    bos = llm.token_bos()
    total_bits = total_bytes = 0.0
    for path in args.files:
        data = open(path, "rb").read()
        if args.limit:
            data = data[: args.limit]
            # Do not cut a UTF-8 sequence in two.
            while data and (data[-1] & 0xC0) == 0x80:
                data = data[:-1]
            if data and data[-1] >= 0xC0:
                data = data[:-1]
        tokens = llm.tokenize(data, add_bos=False, special=False)
        back = llm.detokenize(tokens)
        exact = back == data
        bits = 0.0
        start = time.time()
        for r in range(0, len(tokens), args.row):
            row = tokens[r : r + args.row]
            llm.reset()
            llm.eval([bos] + row)
            # scores[i] is the distribution after the i-th fed token (BOS first).
            logits = np.asarray(llm.scores[: len(row)], dtype=np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            logz = np.log(np.exp(logits).sum(axis=1))
            chosen = logits[np.arange(len(row)), row]
            bits += float((logz - chosen).sum()) / math.log(2)
        secs = time.time() - start
        total_bits += bits
        total_bytes += len(data)
        print(
            f"{path}\t{len(data)} bytes\t{len(tokens)} tokens\t"
            f"{bits / len(data):.4f} bpb\t{len(data) / secs / 1000:.2f} KB/s\t"
            f"round trip {'exact' if exact else 'NOT exact'}",
            flush=True,
        )
    print(f"total\t{int(total_bytes)} bytes\t{total_bits / total_bytes:.4f} bpb", flush=True)


if __name__ == "__main__":
    sys.exit(main())
