//! Random access to a file of members: where each member lies ([`members`]), and a reader that
//! decodes any byte range by decoding only the members it touches ([`SeekableDecoder`]).
//!
//! Members are independent archives, so a member decodes with nothing but its own bytes: that is
//! what lets a reader start anywhere, and what lets several workers (threads, machines: see the
//! Python package's `llmzip.ray`) decode members in parallel and write them in order.
//!
//! Where the members lie is read from the file's seek table when it ends with one that covers
//! exactly the bytes before it (`compress --members` writes one); otherwise, found by walking
//! the members' structure (headers, block headers, trailers: every byte is read once, nothing is
//! decoded). The table is checked before it is used: each entry must be exactly one whole
//! member of the listed lengths, which for a model's member means reading its header, block
//! headers and trailer and seeking past its payloads (a few bytes per block); a table that
//! fails is not used and the members are walked. Each member then checks its own CRCs as it
//! decodes, and a member that decodes to another length than listed is an error.

use std::io::{self, Read, Seek, SeekFrom};

use crate::format::seek::SeekTable;
use crate::models::LanguageModel;
use crate::session::{ArchiveDescription, ArchiveKind};
use crate::stream::Decoder;
use crate::{Error, Options, Result};

/// Where one member lies in the archive, and which original bytes it decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Offset of its first byte in the archive.
    pub archive_offset: u64,
    /// Bytes of archive it takes.
    pub archive_len: u64,
    /// Offset of its first decoded byte in the whole original.
    pub original_offset: u64,
    /// Bytes it decodes to.
    pub original_len: u64,
}

/// The members of an archive file, in order, from its seek table when it has a usable one,
/// otherwise by walking the members (reading, not decoding). Leaves `input` at an unspecified
/// position.
pub fn members<R: Read + Seek + ?Sized>(input: &mut R) -> Result<Vec<Member>> {
    if let Some(list) = from_table(input)? {
        return Ok(list);
    }
    input.seek(SeekFrom::Start(0))?;
    walk(&mut io::BufReader::with_capacity(1 << 16, input))
}

/// The members the file's seek table lists, if it ends with one that covers exactly the bytes
/// before it and agrees with every member it lists; `None` otherwise (the caller walks instead).
fn from_table<R: Read + Seek + ?Sized>(input: &mut R) -> Result<Option<Vec<Member>>> {
    let Some((table, start)) = SeekTable::read_from_end(input)? else {
        return Ok(None);
    };
    let mut list = Vec::new();
    let (mut archive, mut original) = (0u64, 0u64);
    for e in &table.entries {
        let m = Member {
            archive_offset: archive,
            archive_len: e.archive_len,
            original_offset: original,
            original_len: e.original_len,
        };
        let (Some(a), Some(o)) = (
            archive.checked_add(e.archive_len),
            original.checked_add(e.original_len),
        ) else {
            return Ok(None);
        };
        if a > start || !is_one_member(input, &m)? {
            return Ok(None);
        }
        (archive, original) = (a, o);
        list.push(m);
    }
    Ok((archive == start && !list.is_empty()).then_some(list))
}

/// Whether exactly one whole member of this original length fills `m`'s bytes: for a model's
/// member its header, block headers and trailer are read (payloads are sought past, not read);
/// a weight-file member is read through. A few bytes per block: cheap next to decoding, and
/// what keeps a wrong table from misplacing a range (two members listed as one would shift
/// every later offset).
fn is_one_member<R: Read + Seek + ?Sized>(input: &mut R, m: &Member) -> Result<bool> {
    input.seek(SeekFrom::Start(m.archive_offset))?;
    let mut magic = [0u8; 4];
    let n = crate::format::read_up_to(input, &mut magic)?;
    input.seek(SeekFrom::Start(m.archive_offset))?;
    if n < 4 {
        return Ok(false);
    }
    let structural = |e: Error| match e {
        Error::Io(e) if e.kind() != io::ErrorKind::UnexpectedEof => Err(Error::Io(e)),
        _ => Ok(false),
    };
    if magic == crate::format::MAGIC {
        let buffered = io::BufReader::with_capacity(1 << 12, &mut *input);
        let mut reader = match crate::format::ArchiveReader::new(buffered) {
            Ok(r) => r,
            Err(e) => return structural(e),
        };
        loop {
            match reader.next_block() {
                Ok(Some(_)) => reader.seek_past_payload()?,
                Ok(None) => break,
                Err(e) => return structural(e),
            }
        }
        let original = reader.trailer().map(|t| t.original_len);
        Ok(reader.bytes_read() == m.archive_len && original == Some(m.original_len))
    } else if magic == crate::tensors::MAGIC {
        let mut member = io::BufReader::new((&mut *input).take(m.archive_len));
        match crate::tensors::inspect_member(&mut member) {
            Ok(s) => Ok(s.archive_len == m.archive_len && s.original_len == m.original_len),
            Err(e) => structural(e),
        }
    } else {
        Ok(false)
    }
}

/// The members found by reading through the file.
fn walk(input: &mut impl Read) -> Result<Vec<Member>> {
    let pos = std::cell::Cell::new(0u64);
    let mut counted = Position {
        inner: input,
        pos: &pos,
    };
    let (mut kind, mut member) = ArchiveKind::peek(&mut counted)?;
    let mut start = 0u64;
    let mut original = 0u64;
    let mut list = Vec::new();
    loop {
        let original_len = match crate::session::describe(kind, &mut member)? {
            ArchiveDescription::Model(info) => info.original_len,
            ArchiveDescription::Tensors(summary) => summary.original_len,
        };
        drop(member);
        list.push(Member {
            archive_offset: start,
            archive_len: pos.get() - start,
            original_offset: original,
            original_len,
        });
        original += original_len;
        match ArchiveKind::next_member(&mut counted, &mut 0)? {
            Some((k, next)) => {
                start = pos.get() - 4;
                (kind, member) = (k, next);
            }
            None => return Ok(list),
        }
    }
}

/// Counts the bytes read through it.
struct Position<'a, R> {
    inner: R,
    pos: &'a std::cell::Cell<u64>,
}

impl<R: Read> Read for Position<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos.set(self.pos.get() + n as u64);
        Ok(n)
    }
}

/// A `Read + Seek` view of an archive's original: seeking is free, and reading decodes only the
/// member that holds the position (from where that member starts: members are the unit of
/// random access, so `compress --members SIZE` sets its granularity).
///
/// ```
/// use std::io::{Cursor, Read, Seek, SeekFrom};
/// let text = b"It was the best of times, it was the worst of times. ".repeat(40);
/// let options = llmzip::Options::default().level(llmzip::Level::FAST).members(512);
/// let archive = llmzip::encode_all(&text[..], &options)?;
/// let mut reader = llmzip::SeekableDecoder::new(Cursor::new(archive))?;
/// assert_eq!(reader.len(), text.len() as u64);
/// reader.seek(SeekFrom::Start(1000))?;
/// let mut slice = vec![0; 100];
/// reader.read_exact(&mut slice)?;
/// assert_eq!(slice, text[1000..1100]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Memory stays what one [`Decoder`] needs; the model is loaded once and kept across members
/// that use it.
pub struct SeekableDecoder<R: Read + Seek> {
    members: Vec<Member>,
    options: Options,
    state: State<R>,
    /// The position reads start from, in the original.
    pos: u64,
}

enum State<R: Read + Seek> {
    /// No member open; the model kept from the last one.
    Idle(R, Option<Box<dyn LanguageModel>>),
    /// Decoding member `index`; `at` original bytes of the whole file come before its next byte.
    Open {
        decoder: Box<Decoder<io::Take<R>>>,
        index: usize,
        at: u64,
    },
    /// After an error: every later read fails.
    Failed,
}

impl<R: Read + Seek> SeekableDecoder<R> {
    /// A reader over an archive file, decoding with the model each member names.
    pub fn new(input: R) -> Result<Self> {
        SeekableDecoder::with_options(input, &Options::default())
    }

    /// As [`new`](Self::new), with decoding options (a model for archives made with one loaded
    /// from a path, the memory limit, …).
    pub fn with_options(mut input: R, options: &Options) -> Result<Self> {
        let members = members(&mut input)?;
        Ok(SeekableDecoder {
            members,
            options: options.clone(),
            state: State::Idle(input, None),
            pos: 0,
        })
    }

    /// Bytes of the whole original.
    pub fn len(&self) -> u64 {
        self.members
            .last()
            .map_or(0, |m| m.original_offset + m.original_len)
    }

    /// Whether the original is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The members, in order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member holding original byte `pos` (`pos < len()`).
    fn member_at(&self, pos: u64) -> usize {
        // The last member starting at or before `pos` that is not empty.
        let i = self
            .members
            .partition_point(|m| m.original_offset + m.original_len <= pos);
        i.min(self.members.len() - 1)
    }

    /// Makes the open member the one holding `self.pos`, decoded up to it.
    fn position(&mut self) -> Result<()> {
        let index = self.member_at(self.pos);
        let m = self.members[index];
        let reopen = match &self.state {
            State::Open { index: i, at, .. } => *i != index || *at > self.pos,
            State::Idle(..) => true,
            State::Failed => {
                return Err(Error::Corrupt(
                    "an earlier read of this archive failed".into(),
                ))
            }
        };
        if reopen {
            let (mut input, model) = match std::mem::replace(&mut self.state, State::Failed) {
                State::Idle(input, model) => (input, model),
                State::Open { decoder, .. } => {
                    let (take, model) = decoder.into_parts().ok_or_else(|| {
                        Error::Corrupt("an earlier read of this archive failed".into())
                    })?;
                    (take.into_inner(), model)
                }
                State::Failed => unreachable!("handled above"),
            };
            input.seek(SeekFrom::Start(m.archive_offset))?;
            let decoder = Decoder::open(input.take(m.archive_len), Some(&self.options), model)?;
            self.state = State::Open {
                decoder: Box::new(decoder),
                index,
                at: m.original_offset,
            };
        }
        let State::Open { decoder, at, .. } = &mut self.state else {
            unreachable!("opened above")
        };
        let skip = self.pos - *at;
        let skipped = io::copy(&mut (&mut **decoder).take(skip), &mut io::sink())?;
        *at += skipped;
        if skipped < skip {
            return Err(short_member(index));
        }
        Ok(())
    }

    fn read_checked(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() || self.pos >= self.len() {
            return Ok(0);
        }
        self.position()?;
        let State::Open { decoder, index, at } = &mut self.state else {
            unreachable!("positioned")
        };
        let index = *index;
        let m = self.members[index];
        let end = m.original_offset + m.original_len;
        let want = buf
            .len()
            .min(usize::try_from(end - *at).unwrap_or(usize::MAX));
        let n = decoder.read(&mut buf[..want])?;
        if n == 0 {
            return Err(short_member(index));
        }
        *at += n as u64;
        self.pos = *at;
        if *at == end {
            // The member's end: its trailer is checked, and nothing may follow in it.
            let mut probe = [0u8; 1];
            if decoder.read(&mut probe)? != 0 {
                return Err(Error::Corrupt(format!(
                    "member {} decodes to more bytes than its archive records",
                    index + 1
                )));
            }
        }
        Ok(n)
    }
}

fn short_member(index: usize) -> Error {
    Error::Corrupt(format!(
        "member {} decodes to fewer bytes than its archive records",
        index + 1
    ))
}

impl<R: Read + Seek> Read for SeekableDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_checked(buf).map_err(|e| {
            self.state = State::Failed;
            match e {
                Error::Io(e) => e,
                e => io::Error::other(e),
            }
        })
    }
}

impl<R: Read + Seek> Seek for SeekableDecoder<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}
