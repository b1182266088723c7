//! What identifies the computation behind an archive: the release that wrote it, the model's
//! fingerprint and the backend it ran on. Plain data with no dependencies inside the crate, so
//! that the container (which records it) and the errors (which name it) both build on it without
//! depending on each other, on models or on candle (the constructors that look at a model or a
//! device live with the models).

use std::fmt;

use sha2::{Digest, Sha256};

/// The writer field of new archives: this release (`llmzip info` shows it; messages about old
/// archives name the release that can read them).
pub const WRITER: &str = concat!("llmzip ", env!("CARGO_PKG_VERSION"));

/// SHA-256 of what `input` holds from where it stands, read in 1 MiB pieces: what identifies a
/// model file or a fine-tune's base.
pub fn sha256_of(input: &mut impl std::io::Read) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Hash of a model's configuration and weights (first 16 bytes of a SHA-256).
///
/// Recorded in every archive: decoding with any other model would silently produce garbage, so a
/// mismatch is refused before decoding starts.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 16]);

impl Fingerprint {
    /// Hashes the given parts, each prefixed by its length so that boundaries count.
    pub fn of(parts: &[&[u8]]) -> Fingerprint {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        let digest = h.finalize();
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&digest[..16]);
        Fingerprint(fp)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Where and how a model computes: the parts of the environment that change its floating-point
/// results, and therefore must match between compression and decompression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `cpu`, `cuda` or `metal`.
    pub device: String,
    /// Compute dtype of the model (`f32`, …).
    pub dtype: String,
    /// CPU architecture and the SIMD level the matrix kernels dispatch on.
    pub platform: String,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} ({})", self.device, self.dtype, self.platform)
    }
}
