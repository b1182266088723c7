//! Tokenizers: reversible maps from bytes to the symbols a model predicts.
//!
//! The codec checks `decode(encode(x)) == x` on every block it codes, so a tokenizer that cannot
//! reproduce some input never costs losslessness: that block is stored instead. (The byte-level
//! BPE tokenizer goes further and spells such input in single-byte tokens, see `tokenization::bpe`.)

mod bpe;
mod bytes;
mod spm;

pub use bpe::{byte_characters, tokenizer_json, BpeOptions, BpeTokenizer};
pub use bytes::{ByteTokenizer, BYTES_ID};
pub use spm::{PieceKind, SpmTokenizer};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The bytes of each token id (`None`: never produced by encoding), the decode table of the
/// subword tokenizers.
type ByteTable = [Option<Box<[u8]>>];

/// The bytes of token `t` in `table`, or the error of an archive that names another token.
fn token_bytes(table: &ByteTable, t: u32) -> Result<&[u8]> {
    table
        .get(t as usize)
        .and_then(|b| b.as_deref())
        .ok_or_else(|| Error::Corrupt(format!("token {t} has no byte form")))
}

/// A tokenizer's id, `{kind}{count}-{hash}`: the hash names its decode table (after `salt`), so
/// two tokenizers that decode every id to the same bytes are interchangeable for decompression,
/// whatever their encoding rules.
fn table_id(kind: &str, salt: &[u8], table: &ByteTable) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    for bytes in table {
        match bytes {
            Some(b) => {
                h.update((b.len() as u32).to_le_bytes());
                h.update(b);
            }
            None => h.update(u32::MAX.to_le_bytes()),
        }
    }
    let hex: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{kind}{}-{hex}", table.len())
}

/// A reversible mapping between bytes and token ids.
pub trait Tokenizer: Send + Sync {
    /// Identity recorded in archive headers (e.g. `bytes`).
    fn id(&self) -> &str;
    /// Splits `bytes` into token ids.
    fn encode(&self, bytes: &[u8]) -> Result<Vec<u32>>;
    /// Appends the bytes of `tokens` to `out`.
    fn decode(&self, tokens: &[u32], out: &mut Vec<u8>) -> Result<()>;

    /// Appends the bytes of one token sequence given in consecutive parts (a block's rows) to
    /// `out`, exactly as [`decode`](Self::decode) of their concatenation would. The default
    /// builds that concatenation, because one token's bytes may depend on its neighbours (an
    /// escape may straddle two parts); tokenizers whose tokens decode one at a time skip the
    /// copy, which for bytes would be four bytes of memory per byte of block.
    fn decode_parts(&self, parts: &[Vec<u32>], out: &mut Vec<u8>) -> Result<()> {
        self.decode(&parts.concat(), out)
    }
}
