//! The byte-level tokenizer: token `b` is byte `b`. Total and trivially reversible.

use super::Tokenizer;
use crate::{Error, Result};

/// The byte tokenizer's identity in archive headers.
pub const BYTES_ID: &str = "bytes";

/// Maps each byte to the token with the same value (vocabulary of 256).
#[derive(Debug, Default, Clone, Copy)]
pub struct ByteTokenizer;

impl Tokenizer for ByteTokenizer {
    fn id(&self) -> &str {
        BYTES_ID
    }

    fn encode(&self, bytes: &[u8]) -> Result<Vec<u32>> {
        Ok(bytes.iter().map(|&b| u32::from(b)).collect())
    }

    fn decode(&self, tokens: &[u32], out: &mut Vec<u8>) -> Result<()> {
        out.reserve(tokens.len());
        for &t in tokens {
            let b =
                u8::try_from(t).map_err(|_| Error::Corrupt(format!("token {t} is not a byte")))?;
            out.push(b);
        }
        Ok(())
    }

    /// Every token is one byte: the parts decode one after the other.
    fn decode_parts(&self, parts: &[Vec<u32>], out: &mut Vec<u8>) -> Result<()> {
        out.reserve(parts.iter().map(Vec::len).sum());
        parts.iter().try_for_each(|p| self.decode(p, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_bytes() {
        let data: Vec<u8> = (0..=255u8).chain([0, 13, 10, 0xff]).collect();
        let tokens = ByteTokenizer.encode(&data).unwrap();
        let mut back = Vec::new();
        ByteTokenizer.decode(&tokens, &mut back).unwrap();
        assert_eq!(back, data);
        let parts = [tokens[..7].to_vec(), Vec::new(), tokens[7..].to_vec()];
        let mut joined = Vec::new();
        ByteTokenizer.decode_parts(&parts, &mut joined).unwrap();
        assert_eq!(joined, data);
        assert!(ByteTokenizer
            .decode_parts(&[vec![1], vec![256]], &mut joined)
            .is_err());
        assert!(ByteTokenizer.decode(&[256], &mut back).is_err());
    }
}
