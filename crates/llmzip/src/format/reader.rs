//! The one reader of an archive's container, shared by decompression and `inspect`.
//!
//! Both walk the same structure (header, block headers with their payloads, end marker, trailer,
//! nothing after it), and both must refuse the same malformed archives; with one reader they
//! cannot drift apart. The reader knows nothing about models: the codec decides what to do with a
//! block (check its memory claim, decode it, or just count it) between [`ArchiveReader::next_block`]
//! and [`ArchiveReader::read_payload`] / [`ArchiveReader::skip_payload`].

use std::io::Read;

use super::{read_payload, BlockHeader, Header, Trailer};
use crate::{Error, Result};

/// Reads an archive's header, then its blocks one at a time, then its trailer.
pub struct ArchiveReader<R> {
    input: CountingReader<R>,
    header: Header,
    /// Payload bytes of the current block not yet read or skipped.
    pending: u64,
    original_len: u64,
    trailer: Option<Trailer>,
}

impl<R: Read> ArchiveReader<R> {
    /// Reads and validates the header.
    pub fn new(input: R) -> Result<Self> {
        let mut input = CountingReader {
            inner: input,
            count: 0,
        };
        let header = Header::read(&mut input)?;
        Ok(ArchiveReader {
            input,
            header,
            pending: 0,
            original_len: 0,
            trailer: None,
        })
    }

    /// The archive header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next block's header (never [`BlockHeader::End`]), or `None` at the end, once the
    /// trailer has been read, its length checked against the blocks' and nothing found after it.
    /// A payload the caller neither read nor skipped is skipped first.
    pub fn next_block(&mut self) -> Result<Option<BlockHeader>> {
        if self.trailer.is_some() {
            return Ok(None);
        }
        self.skip_payload()?;
        let block = BlockHeader::read(&mut self.input, &self.header.schedule)?;
        let (len, payload) = match block {
            BlockHeader::End => {
                // The member ends here; what follows (another member, or nothing) is the
                // caller's to read (session.rs).
                let trailer = Trailer::read(&mut self.input)?;
                if trailer.original_len != self.original_len {
                    return Err(Error::Corrupt(
                        "the trailer's length does not match the blocks".into(),
                    ));
                }
                self.trailer = Some(trailer);
                return Ok(None);
            }
            BlockHeader::Stored { len, .. } => (len, len),
            BlockHeader::Coded {
                len, payload_len, ..
            }
            | BlockHeader::Fast {
                len, payload_len, ..
            } => (len, payload_len),
        };
        // Bounded by the format's limits on both, so this cannot overflow.
        self.original_len += len;
        self.pending = payload;
        Ok(Some(block))
    }

    /// Reads the current block's payload (the stored bytes, or the range-coder stream) into
    /// `out`, replacing its contents. Memory grows with the bytes actually present, never with
    /// the claimed length alone.
    pub fn read_payload(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let len = std::mem::take(&mut self.pending);
        read_payload(&mut self.input, len, out)
    }

    /// Skips the current block's payload.
    pub fn skip_payload(&mut self) -> Result<()> {
        let len = std::mem::take(&mut self.pending);
        let skipped = std::io::copy(&mut (&mut self.input).take(len), &mut std::io::sink())?;
        if skipped < len {
            return Err(Error::Truncated(
                "the file ends inside a block payload".into(),
            ));
        }
        Ok(())
    }

    /// The trailer, once [`next_block`](Self::next_block) has returned `None`.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.trailer.as_ref()
    }

    /// Bytes of archive read so far (the whole archive at the end).
    pub fn bytes_read(&self) -> u64 {
        self.input.count
    }

    /// The input, positioned after what was read (after the trailer once the member ended).
    pub fn into_inner(self) -> R {
        self.input.inner
    }
}

/// Counts the bytes that pass, for the archive's length.
impl<R: Read + std::io::Seek> ArchiveReader<R> {
    /// As [`skip_payload`](Self::skip_payload), by seeking past the payload: checking where a
    /// member ends (a seek table's claim) reads its block headers and never its payloads. A
    /// payload cut short shows as the next read failing.
    pub fn seek_past_payload(&mut self) -> Result<()> {
        let len = std::mem::take(&mut self.pending);
        // Payloads are bounded by the block limits checked when their header was read.
        let step = i64::try_from(len).map_err(|_| Error::Corrupt("payload too long".into()))?;
        self.input.inner.seek(std::io::SeekFrom::Current(step))?;
        self.input.count += len;
        Ok(())
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
