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

use crate::Result;

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
