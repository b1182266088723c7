//! The seek table: an optional member, at the end of a file of members, that lists each member's
//! archive and original length, so that a reader with `Seek` finds any member without reading
//! the others (as zstd's seekable format does with a skippable frame).
//!
//! Why a member of its own rather than a field: the members before it stay whole, unchanged
//! archives (each decodes alone, and `cat` still makes a valid file), and the table can be
//! written last, when every member's length is known, by a writer that streams. It is found
//! from the end of the file: its last eight bytes are its own length and its magic.
//!
//! Layout (docs/format.md, "Seek table"):
//!
//! | field | type |
//! |---|---|
//! | magic | `LLMS` |
//! | version | u8, `1` |
//! | members | varint |
//! | per member | archive bytes varint, original bytes varint |
//! | CRC | u32, CRC-32 of every byte of the table before it |
//! | table length | u32, bytes of the whole table, this field and the magic after it included |
//! | magic | `LLMS` |
//!
//! A table is trusted for nothing a member's own checks cover: it only says where members
//! start. A reader that uses it checks that it covers exactly the bytes before it and that a
//! member's magic stands at each offset; every member then verifies its own CRCs as it decodes.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::varint::{read_u64, write_u64};
use crate::{Error, Result};

/// First (and last) four bytes of a seek table.
pub const MAGIC: [u8; 4] = *b"LLMS";
/// The table layout this release writes and reads.
pub const VERSION: u8 = 1;
/// Bytes at the end of a table that say where it starts: its length (u32) and its magic.
pub const FOOTER_LEN: u64 = 8;
/// The largest table a reader accepts (about 20 million members).
pub const MAX_LEN: u64 = 256 << 20;

/// One member: how many bytes of archive it takes and how many original bytes it decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Bytes of the member in the archive.
    pub archive_len: u64,
    /// Bytes it decodes to.
    pub original_len: u64,
}

/// The members a seek table lists, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeekTable {
    /// One entry per member before the table.
    pub entries: Vec<Entry>,
}

impl SeekTable {
    /// The table's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = MAGIC.to_vec();
        buf.push(VERSION);
        write_u64(&mut buf, self.entries.len() as u64).expect("writing to a Vec");
        for e in &self.entries {
            write_u64(&mut buf, e.archive_len).expect("writing to a Vec");
            write_u64(&mut buf, e.original_len).expect("writing to a Vec");
        }
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let total = buf.len() as u64 + FOOTER_LEN;
        let total = u32::try_from(total).expect("a table of fewer than 2^32 bytes");
        buf.extend_from_slice(&total.to_le_bytes());
        buf.extend_from_slice(&MAGIC);
        buf
    }

    /// Writes the table.
    pub fn write(&self, out: &mut (impl Write + ?Sized)) -> Result<()> {
        out.write_all(&self.to_bytes())?;
        Ok(())
    }

    /// Reads a table from `input`, positioned just after its first magic (where a sequential
    /// reader meets it), checking its version, CRC, length and closing magic. Allocation grows
    /// with the bytes actually read, never with the count the table claims.
    pub fn read_after_magic(input: &mut (impl Read + ?Sized)) -> Result<SeekTable> {
        let mut bytes = MAGIC.to_vec();
        let mut counted = Counting {
            inner: input,
            seen: &mut bytes,
        };
        let mut version = [0u8];
        counted
            .read_exact(&mut version)
            .map_err(|e| Error::from_read(e, "seek table"))?;
        if version[0] != VERSION {
            return Err(Error::Corrupt(format!(
                "seek table version {} is not one this release reads (version {VERSION}): it \
                 was written by a newer llmzip; upgrade llmzip",
                version[0]
            )));
        }
        let count = read_u64(&mut counted, "seek table's member count")?;
        if count > MAX_LEN / 2 {
            return Err(Error::Corrupt(format!(
                "seek table claims {count} members, more than a table of at most {MAX_LEN} \
                 bytes holds"
            )));
        }
        let mut entries = Vec::new();
        for _ in 0..count {
            let archive_len = read_u64(&mut counted, "seek table entry")?;
            let original_len = read_u64(&mut counted, "seek table entry")?;
            if counted.seen.len() as u64 > MAX_LEN {
                return Err(Error::Corrupt("seek table longer than allowed".into()));
            }
            entries.push(Entry {
                archive_len,
                original_len,
            });
        }
        let expected = crc32fast::hash(counted.seen);
        let mut tail = [0u8; 12];
        counted
            .inner
            .read_exact(&mut tail)
            .map_err(|e| Error::from_read(e, "seek table"))?;
        let crc = u32::from_le_bytes(tail[0..4].try_into().expect("4 bytes"));
        let total = u32::from_le_bytes(tail[4..8].try_into().expect("4 bytes"));
        if crc != expected {
            return Err(Error::Corrupt("seek table CRC mismatch".into()));
        }
        if u64::from(total) != bytes.len() as u64 + 12 || tail[8..12] != MAGIC {
            return Err(Error::Corrupt(
                "seek table's length or closing magic is wrong".into(),
            ));
        }
        Ok(SeekTable { entries })
    }

    /// The table that ends `input`, with the offset where it starts; `None` when the input does
    /// not end with a valid table (a file of members without one, or damage at its end: the
    /// caller then walks the members instead). Leaves `input` at an unspecified position.
    pub fn read_from_end<R: Read + Seek + ?Sized>(
        input: &mut R,
    ) -> Result<Option<(SeekTable, u64)>> {
        let end = input.seek(SeekFrom::End(0))?;
        if end < FOOTER_LEN {
            return Ok(None);
        }
        input.seek(SeekFrom::Start(end - FOOTER_LEN))?;
        let mut footer = [0u8; FOOTER_LEN as usize];
        input.read_exact(&mut footer)?;
        if footer[4..] != MAGIC {
            return Ok(None);
        }
        let total = u64::from(u32::from_le_bytes(footer[..4].try_into().expect("4 bytes")));
        if total > end || total > MAX_LEN || total < 4 + 1 + 1 + 4 + FOOTER_LEN {
            return Ok(None);
        }
        let start = end - total;
        input.seek(SeekFrom::Start(start))?;
        let mut magic = [0u8; 4];
        input.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Ok(None);
        }
        let mut limited = (&mut *input).take(total - 4);
        match SeekTable::read_after_magic(&mut limited) {
            Ok(table) => Ok(Some((table, start))),
            Err(Error::Io(e)) => Err(Error::Io(e)),
            Err(_) => Ok(None),
        }
    }
}

/// Keeps a copy of what passes through (for the CRC over a table's bytes).
struct Counting<'a, R: ?Sized> {
    inner: &'a mut R,
    seen: &'a mut Vec<u8>,
}

impl<R: Read + ?Sized> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SeekTable {
        SeekTable {
            entries: vec![
                Entry {
                    archive_len: 120,
                    original_len: 1 << 20,
                },
                Entry {
                    archive_len: 7,
                    original_len: 0,
                },
            ],
        }
    }

    #[test]
    fn round_trips_sequentially_and_from_the_end() {
        let t = sample();
        let bytes = t.to_bytes();
        assert_eq!(
            SeekTable::read_after_magic(&mut &bytes[4..]).unwrap(),
            t,
            "sequential"
        );
        let mut file = vec![0xAAu8; 127];
        file.extend_from_slice(&bytes);
        let (back, start) = SeekTable::read_from_end(&mut io::Cursor::new(&file))
            .unwrap()
            .unwrap();
        assert_eq!((back, start), (t, 127));
    }

    #[test]
    fn damage_is_refused_or_ignored_never_misread() {
        let bytes = sample().to_bytes();
        for i in 0..bytes.len() {
            for flip in [1u8, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                let seq = SeekTable::read_after_magic(&mut &bad[4..]);
                if i >= 4 {
                    assert!(seq.is_err(), "byte {i} flipped by {flip} read sequentially");
                }
                let end = SeekTable::read_from_end(&mut io::Cursor::new(&bad)).unwrap();
                assert!(
                    end.is_none(),
                    "byte {i} flipped by {flip} read from the end"
                );
            }
        }
        // Truncation: an error, not a panic or a huge allocation.
        for cut in 0..bytes.len() {
            assert!(SeekTable::read_after_magic(&mut &bytes[4..cut.max(4)]).is_err());
            assert!(
                SeekTable::read_from_end(&mut io::Cursor::new(&bytes[..cut]))
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn a_lying_count_allocates_nothing_it_did_not_read() {
        let mut bytes = MAGIC.to_vec();
        bytes.push(VERSION);
        write_u64(&mut bytes, MAX_LEN / 2).unwrap();
        assert!(SeekTable::read_after_magic(&mut &bytes[4..]).is_err());
        let mut newer = MAGIC.to_vec();
        newer.push(VERSION + 1);
        let err = SeekTable::read_after_magic(&mut &newer[4..]).unwrap_err();
        assert!(err.to_string().contains("upgrade llmzip"), "{err}");
    }
}
