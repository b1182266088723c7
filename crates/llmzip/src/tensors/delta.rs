//! Fine-tunes against their base (`llmzip compress --base BASE FILE`): each tensor of the file
//! that has a partner in the base — the same name, dtype and shape — is coded as the XOR of its
//! bytes with the partner's.
//!
//! **Why XOR.** A fine-tune moves most weights a little: their sign and exponent bits, and the
//! top bits of their mantissas, are mostly the base's, so the XOR is mostly zero bits in exactly
//! the fields the codec models (`tensors/fields.rs`), and what is left is the change. It is exact
//! and its own inverse, needs no arithmetic that could round, and works on every number format
//! alike, quantized blocks included (ZipLLM, NSDI '26, stores fine-tunes as XOR deltas too).
//!
//! **What the archive records.** The base's SHA-256 and length, and the *patches*: for each
//! partnered tensor, where it lies in the file, its length, and where its partner lies in the
//! base. Matching by name is the encoder's business only: the decoder XORs each decoded chunk
//! with the base bytes the patches name, and needs nothing but the same base file, which it
//! checks by its digest before decoding anything. A tensor without a partner is coded alone.
//!
//! The chunk checksums are those of the original bytes, after the XOR is undone, so a wrong base
//! that passed the digest check (it cannot) would still not produce unchecked output.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::layout::{self, TensorEntry};
use crate::format::varint;
use crate::{Error, Result};

/// A base file: its identity, its tensors, and positioned reads of its bytes.
pub struct Base {
    path: PathBuf,
    file: Mutex<File>,
    id: BaseId,
    tensors: Vec<TensorEntry>,
}

/// What identifies a base: its SHA-256 and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseId {
    /// SHA-256 of the whole file.
    pub digest: [u8; 32],
    /// Its length in bytes.
    pub len: u64,
}

impl BaseId {
    /// The digest in hex, for messages.
    pub fn hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A tensor of the file coded against its partner in the base: `len` bytes at `start` in the
/// file, XORed with `len` bytes at `base` in the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    /// Where the tensor starts in the file.
    pub start: u64,
    /// Its length in bytes (≥ 1).
    pub len: u64,
    /// Where its partner starts in the base.
    pub base: u64,
}

/// What a delta archive adds to its header: the base it needs and the patches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The base's identity.
    pub base: BaseId,
    /// The patched tensors, in file order, none overlapping.
    pub patches: Vec<Patch>,
}

impl Base {
    /// Opens `path` as a base: reads it whole once for its digest, and describes its tensors.
    /// Fails unless it is a safetensors or GGUF file this build recognises.
    pub fn open(path: &Path) -> Result<Base> {
        let fail = |what: String| Error::InvalidSetting(format!("base {}: {what}", path.display()));
        let mut file = File::open(path).map_err(|e| fail(e.to_string()))?;
        let len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
        let (head, layout) = layout::recognise(&mut file, len)?;
        let tensors = layout
            .and_then(|_| layout::tensors(&head, len))
            .ok_or_else(|| {
                fail(
                    "not a safetensors or GGUF file that llmzip recognises (a base must be \
                      a weight file of the same kind as the one it is the base of)"
                        .into(),
                )
            })?;
        file.rewind()?;
        let digest = crate::identity::sha256_of(&mut file)?;
        Ok(Base {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            id: BaseId { digest, len },
            tensors,
        })
    }

    /// Its identity.
    pub fn id(&self) -> BaseId {
        self.id
    }

    /// Its tensors, in file order.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// The patches for a file with `tensors`: each tensor with a partner of the same name,
    /// dtype, shape and length (a tensor without one is coded alone).
    pub fn delta(&self, tensors: &[TensorEntry]) -> Delta {
        let by_name: std::collections::HashMap<&str, &TensorEntry> =
            self.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut patches: Vec<Patch> = tensors
            .iter()
            .filter(|t| t.len > 0)
            .filter_map(|t| {
                let b = by_name.get(t.name.as_str())?;
                (b.dtype == t.dtype && b.dims == t.dims && b.len == t.len).then_some(Patch {
                    start: t.start,
                    len: t.len,
                    base: b.start,
                })
            })
            .collect();
        patches.sort_by_key(|p| p.start);
        Delta {
            base: self.id,
            patches,
        }
    }

    /// Checks that this is the base `delta` was made against.
    pub fn check(&self, delta: &Delta) -> Result<()> {
        if self.id == delta.base {
            return Ok(());
        }
        Err(Error::InvalidSetting(format!(
            "the base {} (SHA-256 {}, {} bytes) is not the file this archive was made against \
             (SHA-256 {}, {} bytes)",
            self.path.display(),
            self.id.hex(),
            self.id.len,
            delta.base.hex(),
            delta.base.len
        )))
    }

    /// The XOR mask of a chunk of `len` bytes at `offset` in the file: the partners' bytes
    /// where patches lie, zeros elsewhere; empty where no patch reaches the chunk.
    pub(super) fn mask(
        &self,
        patches: &[Patch],
        offset: u64,
        len: u64,
        mask: &mut Vec<u8>,
    ) -> Result<()> {
        mask.clear();
        let end = offset + len;
        let first = patches.partition_point(|p| p.start + p.len <= offset);
        for p in patches[first..].iter().take_while(|p| p.start < end) {
            if mask.is_empty() {
                mask.resize(len as usize, 0);
            }
            let (from, to) = (p.start.max(offset), (p.start + p.len).min(end));
            let dst = &mut mask[(from - offset) as usize..(to - offset) as usize];
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            file.seek(SeekFrom::Start(p.base + (from - p.start)))?;
            file.read_exact(dst).map_err(|e| {
                Error::InvalidSetting(format!(
                    "base {}: cannot read its bytes ({e}); did it change?",
                    self.path.display()
                ))
            })?;
        }
        Ok(())
    }
}

/// `data ^= mask` (nothing when the mask is empty).
pub(super) fn apply(data: &mut [u8], mask: &[u8]) {
    if !mask.is_empty() {
        data.iter_mut().zip(mask).for_each(|(d, m)| *d ^= m);
    }
}

impl Delta {
    /// Whether a patch reaches bytes `offset .. offset + len` of the file.
    pub(super) fn touches(&self, offset: u64, len: u64) -> bool {
        let first = self.patches.partition_point(|p| p.start + p.len <= offset);
        self.patches
            .get(first)
            .is_some_and(|p| p.start < offset + len)
    }

    /// Appends the header fields: digest, base length, patch count, then per patch the gap
    /// since the previous one's end, its length and its place in the base.
    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.base.digest);
        varint::write_u64(out, self.base.len)?;
        varint::write_u64(out, self.patches.len() as u64)?;
        let mut end = 0;
        for p in &self.patches {
            varint::write_u64(out, p.start - end)?;
            varint::write_u64(out, p.len)?;
            varint::write_u64(out, p.base)?;
            end = p.start + p.len;
        }
        Ok(())
    }

    /// Reads what [`Delta::write`] wrote, for a file of `total` bytes, every field checked
    /// (patches in order, inside the file and the base) before anything is sized by it; the
    /// bytes read are appended to `header` (for its CRC).
    pub(super) fn read(r: &mut impl Read, header: &mut Vec<u8>, total: u64) -> Result<Delta> {
        let mut digest = [0u8; 32];
        r.read_exact(&mut digest)
            .map_err(|e| Error::from_read(e, "header"))?;
        header.extend_from_slice(&digest);
        let mut number = |what: &str, max: u64| -> Result<u64> {
            let v = varint::read_bounded(&mut *r, what, max)?;
            varint::write_u64(header, v)?;
            Ok(v)
        };
        let base_len = number("base length", u64::MAX)?;
        let count = number("patch count", total.min(super::MAX_REGIONS))?;
        let mut patches = Vec::new();
        let mut end = 0u64;
        for _ in 0..count {
            let start = end + number("patch gap", total - end)?;
            let len = number("patch length", total - start)?;
            if len == 0 || len > base_len {
                return Err(Error::Corrupt(
                    "a patch in a delta archive is empty or longer than its base".into(),
                ));
            }
            let base = number("patch base", base_len - len)?;
            patches.push(Patch { start, len, base });
            end = start + len;
        }
        Ok(Delta {
            base: BaseId {
                digest,
                len: base_len,
            },
            patches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_fields_round_trip_and_claims_are_bounded() {
        let delta = Delta {
            base: BaseId {
                digest: [7; 32],
                len: 1000,
            },
            patches: vec![
                Patch {
                    start: 10,
                    len: 90,
                    base: 5,
                },
                Patch {
                    start: 100,
                    len: 400,
                    base: 600,
                },
            ],
        };
        let mut bytes = Vec::new();
        delta.write(&mut bytes).unwrap();
        let read = |bytes: &[u8], total: u64| {
            let mut header = Vec::new();
            let delta = Delta::read(&mut &bytes[..], &mut header, total)?;
            assert_eq!(header, bytes);
            Ok::<Delta, Error>(delta)
        };
        assert_eq!(read(&bytes, 500).unwrap(), delta);
        // A file shorter than the patches claim, or a base shorter than a patch's partner.
        assert!(read(&bytes, 499).is_err());
        let mut short_base = delta.clone();
        short_base.base.len = 999;
        let mut b = Vec::new();
        short_base.write(&mut b).unwrap();
        assert!(read(&b, 500).is_err());
    }
}
