//! `llmzip info`: what an archive holds, without decoding it.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::HumanBytes;
use llmzip::unstable::codec;
use llmzip::unstable::format::seek::SeekTable;
use llmzip::ArchiveDescription;

use super::report::{bits_per_byte, tensor_lines};

/// Options of `llmzip info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Archives to describe.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: InfoArgs) -> Result<()> {
    for path in &args.files {
        let mut out = String::new();
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let members = llmzip::info(BufReader::new(f))
            .with_context(|| format!("cannot read {}", path.display()))?;
        writeln!(out, "{}", path.display()).expect("writing to a String");
        let count = members.len();
        // The seek table, when readers use it: the members they find are the ones it lists.
        let mut file = File::open(path)?;
        let table = SeekTable::read_from_end(&mut file).ok().flatten();
        let listed = llmzip::members(&mut file).ok();
        if let (Some((table, _)), Some(listed)) = (table, listed) {
            let agree = table.entries.len() == listed.len()
                && table.entries.iter().zip(&listed).all(|(e, m)| {
                    (e.archive_len, e.original_len) == (m.archive_len, m.original_len)
                });
            if agree {
                let total = listed
                    .last()
                    .map_or(0, |m| m.original_offset + m.original_len);
                writeln!(
                    out,
                    " seek table     {} members, {total} original bytes (decompress --range \
                     decodes a part)",
                    listed.len(),
                )
                .expect("writing to a String");
            }
        }
        for (i, description) in members.into_iter().enumerate() {
            if count > 1 {
                writeln!(out, " member {} of {count}", i + 1).expect("writing to a String");
            }
            match description {
                ArchiveDescription::Tensors(s) => tensors(&mut out, &s),
                ArchiveDescription::Model(info) => model(&mut out, &info),
            }
        }
        super::print_stdout(&out)?;
    }
    Ok(())
}

fn tensors(out: &mut String, s: &llmzip::tensors::Summary) {
    writeln!(
        out,
        "  weight file    {}, {} regions",
        s.layout.container.name(),
        s.layout.regions.len()
    )
    .expect("writing to a String");
    writeln!(
        out,
        "  decodes on     any machine (no model: integer coding only)"
    )
    .expect("writing to a String");
    if let Some((base, against)) = &s.base {
        writeln!(
            out,
            "  base           SHA-256 {}, {} bytes: {} bytes coded against it \
             (decompress with --base)",
            base.hex(),
            base.len,
            against
        )
        .expect("writing to a String");
    }
    writeln!(out, "  original size  {} bytes", s.original_len).expect("writing to a String");
    writeln!(
        out,
        "  archive size   {} bytes ({:.3}x)",
        s.archive_len,
        s.original_len as f64 / s.archive_len.max(1) as f64
    )
    .expect("writing to a String");
    for line in tensor_lines(s) {
        writeln!(out, "{line}").expect("writing to a String");
    }
}

fn model(out: &mut String, info: &codec::ArchiveInfo) {
    let h = &info.header;
    let s = &h.schedule;
    let window = if s.window == 0 {
        "unbounded".to_string()
    } else {
        format!("{} tokens", s.window)
    };
    writeln!(out, "  written by     {}", h.writer).expect("writing to a String");
    writeln!(
        out,
        "  model          {} (fingerprint {})",
        h.model_name, h.fingerprint
    )
    .expect("writing to a String");
    writeln!(out, "  tokenizer      {}", h.tokenizer).expect("writing to a String");
    writeln!(out, "  backend        {}", h.backend).expect("writing to a String");
    writeln!(
        out,
        "  decodes on     {}",
        llmzip::unstable::models::archive_portability(h).describe()
    )
    .expect("writing to a String");
    writeln!(
        out,
        "  schedule       blocks of {}, up to {} segments of at least {} tokens, context {window}",
        HumanBytes(s.block_size),
        s.max_segments,
        s.min_segment_tokens
    )
    .expect("writing to a String");
    writeln!(out, "  original size  {} bytes", info.original_len).expect("writing to a String");
    writeln!(
        out,
        "  archive size   {} bytes ({:.3} bits per byte)",
        info.archive_len,
        bits_per_byte(info.archive_len, info.original_len)
    )
    .expect("writing to a String");
    writeln!(
        out,
        "  blocks         {} coded ({} tokens), {} stored{}",
        info.coded_blocks,
        info.tokens,
        info.stored_blocks,
        fast_note(info.fast_blocks)
    )
    .expect("writing to a String");
    writeln!(out, "  crc32          {:08x}", info.crc).expect("writing to a String");
}

/// ", N coded by fast1 (they looked binary)" when any block was, else nothing.
pub fn fast_note(blocks: u64) -> String {
    if blocks == 0 {
        String::new()
    } else {
        format!(
            ", {blocks} coded by {} (they looked binary)",
            llmzip::unstable::models::fast::NAME
        )
    }
}
