//! The seek table: an optional member, at the end of a file of members, that lists each member's
//! archive and original length, so that a reader with `Seek` finds any member without reading
//! the others (as zstd's seekable format does with a skippable frame).
//!
//! Why a member of its own rather than a field: the members before it stay whole, unchanged
//! archives (each decodes alone, and `cat` still makes a valid file), and the table can be
//! written last, when every member's length is known, by a writer that streams. It is found
//! from the end of the file: its last eight bytes are its own length and its magic. Its length
//! also follows its first magic, so that a sequential reader skips a table of any version
//! without understanding it (a table holds no data).
//!
//! Layout (docs/format.md, "Seek table"):
//!
//! | field | type |
//! |---|---|
//! | magic | `LLMS` |
//! | table length | u32, bytes of the whole table |
//! | version | u8, `1` |
//! | members | varint |
//! | per member | archive bytes varint, original bytes varint |
//! | CRC | u32, CRC-32 of every byte of the table before it |
//! | table length | u32, again |
//! | magic | `LLMS` |
//!
//! A seeking reader trusts a table only after checking it against the members it lists
//! (`members.rs`): a table says where members start, and a wrong one must never misplace a
//! range.

use std::io::{Read, Seek, SeekFrom};

use super::varint::{read_u64, write_u64};
use crate::{Error, Result};

/// First (and last) four bytes of a seek table.
pub const MAGIC: [u8; 4] = *b"LLMS";
/// The table layout this release writes and reads.
pub const VERSION: u8 = 1;
/// Bytes at the end of a table that say where it starts: its length (u32) and its magic.
pub const FOOTER_LEN: u64 = 8;
/// Bytes before the version: the magic and the length.
const HEAD_LEN: u64 = 8;
/// The smallest table: head, version, a count of zero, CRC, footer.
const MIN_LEN: u64 = HEAD_LEN + 1 + 1 + 4 + FOOTER_LEN;
/// The largest table a reader accepts, and so the largest one written: 16 MiB, two to three
/// million members at the usual 5–7 bytes an entry (terabytes of input at 1 MiB members). A
/// file with more members gets no table, and readers find its members by walking them.
pub const MAX_LEN: u64 = 16 << 20;
/// Fewer archive bytes than any member takes (a header alone is longer): bounds the member
/// count a table may claim by the bytes before it.
pub const MIN_MEMBER_LEN: u64 = 16;

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
    /// The table's bytes; `None` when it would be longer than [`MAX_LEN`] (then none is
    /// written: readers walk the members instead).
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        let mut body = vec![VERSION];
        write_u64(&mut body, self.entries.len() as u64).expect("writing to a Vec");
        for e in &self.entries {
            write_u64(&mut body, e.archive_len).expect("writing to a Vec");
            write_u64(&mut body, e.original_len).expect("writing to a Vec");
        }
        let total = HEAD_LEN + body.len() as u64 + 4 + FOOTER_LEN;
        if total > MAX_LEN {
            return None;
        }
        let total = (total as u32).to_le_bytes();
        let mut buf = MAGIC.to_vec();
        buf.extend_from_slice(&total);
        buf.extend_from_slice(&body);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf.extend_from_slice(&total);
        buf.extend_from_slice(&MAGIC);
        Some(buf)
    }

    /// Reads a table from `input`, positioned just after its first magic (where a sequential
    /// reader meets it), and returns its length in bytes: `Some` table of a version this
    /// release reads, checked (CRC, both lengths, closing magic); `None` for a table of a later
    /// version, skipped whole (tables hold no data). Reads at most [`MAX_LEN`] bytes.
    pub fn read_after_magic(input: &mut (impl Read + ?Sized)) -> Result<(Option<SeekTable>, u64)> {
        let mut len = [0u8; 4];
        input
            .read_exact(&mut len)
            .map_err(|e| Error::from_read(e, "seek table"))?;
        let total = u64::from(u32::from_le_bytes(len));
        if !(MIN_LEN..=MAX_LEN).contains(&total) {
            return Err(Error::Corrupt(format!(
                "seek table claims {total} bytes, outside {MIN_LEN}..={MAX_LEN}"
            )));
        }
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&len);
        // Grows with the bytes actually present, never beyond the checked length.
        let read = input
            .take(total - HEAD_LEN)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::from_read(e, "seek table"))?;
        if (read as u64) < total - HEAD_LEN {
            return Err(Error::Truncated("the file ends inside a seek table".into()));
        }
        let table = SeekTable::parse(&bytes)?;
        Ok((table, total))
    }

    /// A whole table's bytes: `None` for a later version (its framing checked).
    fn parse(bytes: &[u8]) -> Result<Option<SeekTable>> {
        let n = bytes.len();
        let footer = &bytes[n - FOOTER_LEN as usize..];
        if footer[4..] != MAGIC || footer[..4] != bytes[4..8] {
            return Err(Error::Corrupt(
                "seek table's closing length or magic is wrong".into(),
            ));
        }
        if bytes[8] != VERSION {
            return Ok(None);
        }
        let crc_at = n - FOOTER_LEN as usize - 4;
        let crc = u32::from_le_bytes(bytes[crc_at..crc_at + 4].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(&bytes[..crc_at]) {
            return Err(Error::Corrupt(
                "seek table CRC mismatch (the members before it are whole: cut the file where \
                 the table starts, at its last `LLMS` but one, to decode them)"
                    .into(),
            ));
        }
        let mut body = &bytes[9..crc_at];
        let count = read_u64(&mut body, "seek table's member count")?;
        // Every entry takes at least two bytes.
        if count > body.len() as u64 / 2 {
            return Err(Error::Corrupt(format!(
                "seek table claims {count} members in {} bytes",
                body.len()
            )));
        }
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let archive_len = read_u64(&mut body, "seek table entry")?;
            let original_len = read_u64(&mut body, "seek table entry")?;
            entries.push(Entry {
                archive_len,
                original_len,
            });
        }
        if !body.is_empty() {
            return Err(Error::Corrupt(
                "seek table has bytes after its last entry".into(),
            ));
        }
        Ok(Some(SeekTable { entries }))
    }

    /// The table that ends `input`, with the offset where it starts; `None` when the input does
    /// not end with a whole table of this version listing no more members than the bytes
    /// before it can hold (a file without one, or a damaged one: the caller then walks the
    /// members). Leaves `input` at an unspecified position.
    pub fn read_from_end<R: Read + Seek + ?Sized>(
        input: &mut R,
    ) -> Result<Option<(SeekTable, u64)>> {
        let end = input.seek(SeekFrom::End(0))?;
        if end < MIN_LEN {
            return Ok(None);
        }
        input.seek(SeekFrom::Start(end - FOOTER_LEN))?;
        let mut footer = [0u8; FOOTER_LEN as usize];
        input.read_exact(&mut footer)?;
        if footer[4..] != MAGIC {
            return Ok(None);
        }
        let total = u64::from(u32::from_le_bytes(footer[..4].try_into().expect("4 bytes")));
        if total > end || !(MIN_LEN..=MAX_LEN).contains(&total) {
            return Ok(None);
        }
        let start = end - total;
        input.seek(SeekFrom::Start(start))?;
        let mut bytes = vec![0u8; total as usize];
        input.read_exact(&mut bytes)?;
        if bytes[..4] != MAGIC {
            return Ok(None);
        }
        match SeekTable::parse(&bytes) {
            Ok(Some(table)) if table.entries.len() as u64 <= start / MIN_MEMBER_LEN => {
                Ok(Some((table, start)))
            }
            Ok(_) | Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn sample() -> SeekTable {
        SeekTable {
            entries: vec![
                Entry {
                    archive_len: 120,
                    original_len: 1 << 20,
                },
                Entry {
                    archive_len: 70,
                    original_len: 0,
                },
            ],
        }
    }

    #[test]
    fn round_trips_sequentially_and_from_the_end() {
        let t = sample();
        let bytes = t.to_bytes().unwrap();
        let (back, len) = SeekTable::read_after_magic(&mut &bytes[4..]).unwrap();
        assert_eq!((back.unwrap(), len), (t.clone(), bytes.len() as u64));
        let mut file = vec![0xAAu8; 190];
        file.extend_from_slice(&bytes);
        let (back, start) = SeekTable::read_from_end(&mut io::Cursor::new(&file))
            .unwrap()
            .unwrap();
        assert_eq!((back, start), (t, 190));
        // More members than the bytes before the table can hold: not used.
        assert!(SeekTable::read_from_end(&mut io::Cursor::new(&bytes))
            .unwrap()
            .is_none());
    }

    #[test]
    fn damage_is_refused_or_ignored_never_misread() {
        let bytes = sample().to_bytes().unwrap();
        let mut file = vec![0u8; 200];
        file.extend_from_slice(&bytes);
        for i in 0..bytes.len() {
            for flip in [1u8, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                let seq = SeekTable::read_after_magic(&mut &bad[4..]);
                // A changed version byte reads as a later version, skipped whole.
                if i >= 4 && i != 8 {
                    assert!(seq.is_err(), "byte {i} flipped by {flip} read sequentially");
                }
                let mut bad_file = file.clone();
                bad_file[200 + i] ^= flip;
                let end = SeekTable::read_from_end(&mut io::Cursor::new(&bad_file)).unwrap();
                assert!(
                    end.is_none(),
                    "byte {i} flipped by {flip} read from the end"
                );
            }
        }
        // Truncation: an error, not a panic or a large allocation.
        for cut in 4..bytes.len() {
            assert!(SeekTable::read_after_magic(&mut &bytes[4..cut]).is_err());
            assert!(
                SeekTable::read_from_end(&mut io::Cursor::new(&bytes[..cut]))
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn later_versions_are_skipped_and_lengths_bounded() {
        let mut later = sample().to_bytes().unwrap();
        later[8] = VERSION + 1;
        let (table, len) = SeekTable::read_after_magic(&mut &later[4..]).unwrap();
        assert_eq!((table, len), (None, later.len() as u64));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(SeekTable::read_after_magic(&mut &huge[4..]).is_err());
        let too_many = SeekTable {
            entries: vec![
                Entry {
                    archive_len: 1,
                    original_len: 1
                };
                (MAX_LEN / 2) as usize
            ],
        };
        assert!(
            too_many.to_bytes().is_none(),
            "never written beyond MAX_LEN"
        );
    }
}
