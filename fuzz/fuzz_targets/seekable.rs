//! Random access to files of members: `llmzip::members` (seek table or walk) and
//! `SeekableDecoder` reads at a few positions, on mutated files of `fast1` members with a seek
//! table (seed: fuzz/seeds/members-fast1.llmz). Whatever the bytes, the readers must return an
//! error or data, never panic, hang or allocate by a claimed length.
#![no_main]

use std::io::{Cursor, Read, Seek, SeekFrom};

use libfuzzer_sys::fuzz_target;
use llmzip::{Options, Registry, SeekableDecoder};

fuzz_target!(|data: &[u8]| {
    let _ = llmzip::members(&mut Cursor::new(data));
    let options = Options::default()
        .registry(Registry::with_dirs([]))
        .memory_limit(160 << 20);
    let Ok(mut reader) = SeekableDecoder::with_options(Cursor::new(data), &options) else {
        return;
    };
    let len = reader.len();
    for at in [len / 2, 0, len.saturating_sub(7), len / 3] {
        if reader.seek(SeekFrom::Start(at)).is_err() {
            return;
        }
        let mut buf = [0u8; 64];
        if reader.read(&mut buf).is_err() {
            return;
        }
    }
});
