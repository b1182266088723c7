//! The `.llmz` container: header, blocks, trailer. See `docs/format.md` for the byte layout.
//!
//! Every number read from an archive is checked against a fixed limit or against an earlier,
//! already validated field *before* it is used, and payloads are read incrementally, so a corrupt or
//! hostile archive can neither make us allocate by an unchecked length nor read past its end
//! silently.

mod reader;
mod schedule;
pub mod seek;
pub(crate) mod varint;

use std::io::{Read, Write};

use crate::{Error, Result};

pub use crate::identity::{Backend, Fingerprint, WRITER};
pub use reader::ArchiveReader;
pub use schedule::{segment_lengths, Schedule, MIN_WINDOW};

pub(crate) use varint::{read_bounded, write_u64};

/// First bytes of every archive.
pub const MAGIC: [u8; 4] = *b"LLMZ";
/// Current format version; readers refuse other ones with a clear message.
///
/// Version 1 (llmzip 0.1.0 before the hardening work) had no writer field, no payload checksum
/// and no check values in the coded stream.
pub const VERSION: u8 = 2;
/// Largest block the format allows (the schedule's block size is validated against it).
pub const MAX_BLOCK_SIZE: u64 = 64 << 20;
/// Largest number of lockstep rows (segments) per block.
pub const MAX_SEGMENTS: u64 = 4096;
/// Largest context window a header may ask for, in tokens.
pub const MAX_WINDOW: u64 = 1 << 20;
/// Most tokens a single original byte may take: an escaped byte is spelled as an escape token
/// plus two hex digits (see `tokenization::bpe`).
pub const MAX_TOKENS_PER_BYTE: u64 = 3;
/// Whether checksums are enforced. Fuzzing builds (`--cfg fuzzing`, set by cargo-fuzz) compute
/// them but let mismatches pass, so that mutated archives reach the parsers and the decoder
/// behind the checks; every other build enforces them.
pub const ENFORCE_CHECKSUMS: bool = !cfg!(fuzzing);
/// Longest string field (model name, tokenizer id, backend parts).
const MAX_STR: usize = 255;

/// Everything a decoder needs to know before it reads the first block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The program and release that wrote the archive, e.g. `llmzip 0.1.0`.
    pub writer: String,
    /// Model name as the user knows it (`gru`, `smollm2`, a file stem).
    pub model_name: String,
    /// Hash of the model's weights and configuration.
    pub fingerprint: Fingerprint,
    /// Identity of the tokenizer that produced the symbols.
    pub tokenizer: String,
    /// Device, dtype and CPU kernel family the probabilities were computed with.
    pub backend: Backend,
    /// How input is cut into blocks and segments.
    pub schedule: Schedule,
}

/// The header of one block; the block's payload follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockHeader {
    /// No more blocks; the trailer follows.
    End,
    /// `len` original bytes stored verbatim (incompressible input).
    Stored {
        /// Original bytes.
        len: u64,
        /// CRC-32 of the original bytes.
        crc: u32,
    },
    /// `len` original bytes, tokenized into `tokens` symbols, coded as `segments` lockstep rows
    /// into one range-coder stream of `payload_len` bytes whose CRC-32 is `payload_crc` (checked
    /// before any decoding, so a damaged payload costs no model time).
    Coded {
        /// Original bytes.
        len: u64,
        /// Tokens coded.
        tokens: u64,
        /// Lockstep rows.
        segments: u64,
        /// Bytes of range-coder stream.
        payload_len: u64,
        /// CRC-32 of the payload.
        payload_crc: u32,
        /// CRC-32 of the original bytes.
        crc: u32,
    },
    /// `len` original bytes that looked binary, coded bit by bit by the fast model (`fast1`,
    /// [`crate::models::fast`]) whatever model the archive names, into a binary-coder stream of
    /// `payload_len` bytes (docs/format.md, "Fast blocks").
    Fast {
        /// Original bytes.
        len: u64,
        /// Bytes of binary-coder stream.
        payload_len: u64,
        /// CRC-32 of the payload.
        payload_crc: u32,
        /// CRC-32 of the original bytes.
        crc: u32,
    },
}

/// Written after the end block: the whole input's length and checksum.
///
/// These live at the end rather than in the header so that compression can stream from a pipe
/// whose length is unknown up front, as gzip's trailer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Bytes of the whole original.
    pub original_len: u64,
    /// CRC-32 of the whole original.
    pub crc: u32,
}

const KIND_STORED: u8 = 0;
const KIND_CODED: u8 = 1;
const KIND_FAST: u8 = 2;

impl Header {
    /// Serialises the header, ending with a CRC-32 over all of its bytes.
    pub fn write(&self, out: &mut impl Write) -> Result<()> {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&MAGIC);
        buf.push(VERSION);
        buf.push(0); // flags, reserved
        for s in [
            self.writer.as_str(),
            self.model_name.as_str(),
            self.tokenizer.as_str(),
            self.backend.device.as_str(),
            self.backend.dtype.as_str(),
            self.backend.platform.as_str(),
        ] {
            write_str(&mut buf, s)?;
        }
        buf.extend_from_slice(&self.fingerprint.0);
        let s = &self.schedule;
        for v in [s.block_size, s.max_segments, s.min_segment_tokens, s.window] {
            write_u64(&mut buf, v)?;
        }
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        out.write_all(&buf)?;
        Ok(())
    }

    /// Reads and validates a header.
    pub fn read(input: &mut impl Read) -> Result<Header> {
        let mut r = CrcReader::new(input);
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut r, &mut magic)?;
        if got == 4 && magic == *b"LLMT" {
            return Err(Error::InvalidSetting(
                "this is a weight-file archive (LLMT), not a model-coded one: read it with \
                 llmzip::Decoder, llmzip::decode_all or llmzip::tensors::decompress"
                    .into(),
            ));
        }
        if got < 4 || magic != MAGIC {
            return Err(Error::NotAnArchive);
        }
        let mut vf = [0u8; 2];
        r.read_exact(&mut vf)
            .map_err(|e| Error::from_read(e, "header"))?;
        if vf[0] != VERSION {
            return Err(Error::UnsupportedVersion {
                found: vf[0],
                supported: VERSION,
            });
        }
        if vf[1] != 0 {
            return Err(Error::Corrupt(format!(
                "unknown header flags {:#04x}",
                vf[1]
            )));
        }
        let writer = read_str(&mut r, "writer")?;
        let model_name = read_str(&mut r, "model name")?;
        let tokenizer = read_str(&mut r, "tokenizer id")?;
        let device = read_str(&mut r, "device")?;
        let dtype = read_str(&mut r, "dtype")?;
        let platform = read_str(&mut r, "platform")?;
        let mut fp = [0u8; 16];
        r.read_exact(&mut fp)
            .map_err(|e| Error::from_read(e, "header"))?;
        let schedule = Schedule {
            block_size: read_bounded(&mut r, "block size", MAX_BLOCK_SIZE)?,
            max_segments: read_bounded(&mut r, "segment count", MAX_SEGMENTS)?,
            min_segment_tokens: read_bounded(&mut r, "minimum segment length", MAX_BLOCK_SIZE)?,
            window: read_bounded(&mut r, "context window", MAX_WINDOW)?,
        };
        let computed = r.hasher.clone().finalize();
        let mut stored = [0u8; 4];
        r.inner
            .read_exact(&mut stored)
            .map_err(|e| Error::from_read(e, "header"))?;
        if u32::from_le_bytes(stored) != computed && ENFORCE_CHECKSUMS {
            return Err(Error::Corrupt("header checksum mismatch".into()));
        }
        schedule.validate().map_err(|e| match e {
            Error::InvalidSetting(m) => Error::Corrupt(m),
            other => other,
        })?;
        Ok(Header {
            writer,
            model_name,
            fingerprint: Fingerprint(fp),
            tokenizer,
            backend: Backend {
                device,
                dtype,
                platform,
            },
            schedule,
        })
    }
}

impl BlockHeader {
    /// Serialises the block header (not the payload). Every header but the end marker ends with
    /// a 16-bit check of its fields, so a damaged count is refused before the model runs.
    pub fn write(&self, out: &mut impl Write) -> Result<()> {
        let mut buf = Vec::with_capacity(32);
        match *self {
            BlockHeader::End => write_u64(&mut buf, 0)?,
            BlockHeader::Stored { len, crc } => {
                write_u64(&mut buf, len)?;
                buf.push(KIND_STORED);
                buf.extend_from_slice(&crc.to_le_bytes());
            }
            BlockHeader::Coded {
                len,
                tokens,
                segments,
                payload_len,
                payload_crc,
                crc,
            } => {
                write_u64(&mut buf, len)?;
                buf.push(KIND_CODED);
                write_u64(&mut buf, tokens)?;
                write_u64(&mut buf, segments)?;
                write_u64(&mut buf, payload_len)?;
                buf.extend_from_slice(&payload_crc.to_le_bytes());
                buf.extend_from_slice(&crc.to_le_bytes());
            }
            BlockHeader::Fast {
                len,
                payload_len,
                payload_crc,
                crc,
            } => {
                write_u64(&mut buf, len)?;
                buf.push(KIND_FAST);
                write_u64(&mut buf, payload_len)?;
                buf.extend_from_slice(&payload_crc.to_le_bytes());
                buf.extend_from_slice(&crc.to_le_bytes());
            }
        }
        if *self != BlockHeader::End {
            let check = crc32fast::hash(&buf) as u16;
            buf.extend_from_slice(&check.to_le_bytes());
        }
        out.write_all(&buf)?;
        Ok(())
    }

    /// Reads a block header and checks it against the archive's schedule.
    pub fn read(input: &mut impl Read, schedule: &Schedule) -> Result<BlockHeader> {
        let mut input = CrcReader::new(input);
        let input = &mut input;
        let len = read_bounded(input, "block length", schedule.block_size)?;
        if len == 0 {
            return Ok(BlockHeader::End);
        }
        let mut kind = [0u8];
        input
            .read_exact(&mut kind)
            .map_err(|e| Error::from_read(e, "block header"))?;
        let header = match kind[0] {
            KIND_STORED => BlockHeader::Stored {
                len,
                crc: read_crc(input)?,
            },
            KIND_CODED => {
                // A byte takes at most MAX_TOKENS_PER_BYTE tokens, and a coded payload is only
                // kept when it is smaller than the bytes it replaces.
                let tokens = read_bounded(input, "token count", MAX_TOKENS_PER_BYTE * len)?;
                let segments = read_bounded(input, "segment count", schedule.max_segments)?;
                if tokens == 0 || segments == 0 || segments > tokens {
                    return Err(Error::Corrupt(format!(
                        "block with {tokens} tokens cannot have {segments} segments"
                    )));
                }
                let payload_len = read_bounded(input, "payload length", len)?;
                BlockHeader::Coded {
                    len,
                    tokens,
                    segments,
                    payload_len,
                    payload_crc: read_crc(input)?,
                    crc: read_crc(input)?,
                }
            }
            KIND_FAST => BlockHeader::Fast {
                len,
                // Kept only when smaller than the bytes it replaces.
                payload_len: read_bounded(input, "payload length", len)?,
                payload_crc: read_crc(input)?,
                crc: read_crc(input)?,
            },
            other => {
                return Err(Error::Corrupt(format!(
                    "unknown block kind {other} (damaged, or written by a newer llmzip: this \
                     one knows kinds 0 to {KIND_FAST})"
                )));
            }
        };
        let computed = input.hasher.clone().finalize() as u16;
        let mut check = [0u8; 2];
        input
            .inner
            .read_exact(&mut check)
            .map_err(|e| Error::from_read(e, "block header"))?;
        if u16::from_le_bytes(check) != computed && ENFORCE_CHECKSUMS {
            return Err(Error::Corrupt(
                "a block header's check does not match".into(),
            ));
        }
        Ok(header)
    }
}

impl Trailer {
    /// Serialises the trailer (12 bytes).
    pub fn write(&self, out: &mut impl Write) -> Result<()> {
        let mut buf = [0u8; 12];
        buf[..8].copy_from_slice(&self.original_len.to_le_bytes());
        buf[8..].copy_from_slice(&self.crc.to_le_bytes());
        out.write_all(&buf)?;
        Ok(())
    }

    /// Reads the trailer.
    pub fn read(input: &mut impl Read) -> Result<Trailer> {
        let mut buf = [0u8; 12];
        input
            .read_exact(&mut buf)
            .map_err(|e| Error::from_read(e, "trailer"))?;
        Ok(Trailer {
            original_len: u64::from_le_bytes(buf[..8].try_into().expect("8 bytes")),
            crc: u32::from_le_bytes(buf[8..].try_into().expect("4 bytes")),
        })
    }
}

/// Reads exactly `len` payload bytes without trusting `len` for the allocation: the buffer grows
/// only as bytes actually arrive, so a lying length on a short file costs nothing.
pub(crate) fn read_payload(input: &mut impl Read, len: u64, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    input.take(len).read_to_end(out)?;
    if (out.len() as u64) < len {
        return Err(Error::Truncated(format!(
            "a block payload should hold {len} bytes but only {} remain",
            out.len()
        )));
    }
    Ok(())
}

fn read_crc(input: &mut impl Read) -> Result<u32> {
    let mut b = [0u8; 4];
    input
        .read_exact(&mut b)
        .map_err(|e| Error::from_read(e, "block header"))?;
    Ok(u32::from_le_bytes(b))
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let bytes = s.as_bytes();
    if bytes.len() > MAX_STR {
        return Err(Error::InvalidSetting(format!(
            "'{s}' is longer than {MAX_STR} bytes and cannot be stored in the header"
        )));
    }
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
    Ok(())
}

fn read_str(input: &mut impl Read, what: &str) -> Result<String> {
    let mut len = [0u8];
    input
        .read_exact(&mut len)
        .map_err(|e| Error::from_read(e, "header"))?;
    let mut buf = vec![0u8; len[0] as usize]; // at most 255 bytes
    input
        .read_exact(&mut buf)
        .map_err(|e| Error::from_read(e, "header"))?;
    String::from_utf8(buf).map_err(|_| Error::Corrupt(format!("{what} is not valid UTF-8")))
}

/// Like `read_exact`, but returns how many bytes were read when the input ends early.
pub fn read_up_to(input: &mut (impl Read + ?Sized), buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

/// A reader that checksums what passes through it (used for the header).
struct CrcReader<R> {
    inner: R,
    hasher: crc32fast::Hasher,
}

impl<R: Read> CrcReader<R> {
    fn new(inner: R) -> Self {
        CrcReader {
            inner,
            hasher: crc32fast::Hasher::new(),
        }
    }
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_header() -> Header {
        Header {
            writer: WRITER.into(),
            model_name: "gru".into(),
            fingerprint: Fingerprint([7; 16]),
            tokenizer: "bytes".into(),
            backend: Backend {
                device: "cpu".into(),
                dtype: "f32".into(),
                platform: "x86_64".into(),
            },
            schedule: Schedule::default(),
        }
    }

    #[test]
    fn header_round_trips() {
        let h = sample_header();
        let mut buf = Vec::new();
        h.write(&mut buf).unwrap();
        assert_eq!(Header::read(&mut buf.as_slice()).unwrap(), h);
    }

    #[test]
    fn header_detects_every_single_byte_flip() {
        let mut buf = Vec::new();
        sample_header().write(&mut buf).unwrap();
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(Header::read(&mut bad.as_slice()).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn header_rejects_truncation_and_future_versions() {
        let mut buf = Vec::new();
        sample_header().write(&mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(Header::read(&mut &buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut future = buf.clone();
        future[4] = VERSION + 1;
        assert!(matches!(
            Header::read(&mut future.as_slice()),
            Err(Error::UnsupportedVersion { .. })
        ));
        // An older version is refused too, naming the release that made it.
        let mut old = buf.clone();
        old[4] = 1;
        let err = Header::read(&mut old.as_slice()).unwrap_err().to_string();
        assert!(
            err.contains("version 1") && err.contains("llmzip 0.1.0"),
            "{err}"
        );
    }

    #[test]
    fn block_header_round_trips_and_is_bounded() {
        let s = Schedule::default();
        for b in [
            BlockHeader::End,
            BlockHeader::Stored { len: 5, crc: 9 },
            BlockHeader::Coded {
                len: 100,
                tokens: 90,
                segments: 3,
                payload_len: 40,
                payload_crc: 2,
                crc: 1,
            },
        ] {
            let mut buf = Vec::new();
            b.write(&mut buf).unwrap();
            assert_eq!(BlockHeader::read(&mut buf.as_slice(), &s).unwrap(), b);
        }
        let mut too_big = Vec::new();
        BlockHeader::Stored {
            len: s.block_size + 1,
            crc: 0,
        }
        .write(&mut too_big)
        .unwrap();
        assert!(BlockHeader::read(&mut too_big.as_slice(), &s).is_err());
    }

    #[test]
    fn block_header_flips_are_caught_before_decoding() {
        let s = Schedule::default();
        let mut buf = Vec::new();
        BlockHeader::Coded {
            len: 60_000,
            tokens: 50_000,
            segments: 7,
            payload_len: 9_000,
            payload_crc: 0x1234_5678,
            crc: 0xdead_beef,
        }
        .write(&mut buf)
        .unwrap();
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    BlockHeader::read(&mut bad.as_slice(), &s).is_err(),
                    "flip of bit {bit} at {i} accepted"
                );
            }
        }
    }

    #[test]
    fn payload_read_does_not_trust_length() {
        let mut out = Vec::new();
        let data = [1u8, 2, 3];
        let err = read_payload(&mut data.as_slice(), MAX_BLOCK_SIZE, &mut out).unwrap_err();
        assert!(matches!(err, Error::Truncated(_)));
        assert!(out.capacity() < 1 << 20);
    }
}
