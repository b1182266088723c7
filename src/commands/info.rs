//! `llmzip info`: what an archive holds, without decoding it.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::HumanBytes;
use llmzip::unstable::codec;
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
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let members = llmzip::info(BufReader::new(f))
            .with_context(|| format!("cannot read {}", path.display()))?;
        println!("{}", path.display());
        let count = members.len();
        for (i, description) in members.into_iter().enumerate() {
            if count > 1 {
                println!(" member {} of {count}", i + 1);
            }
            match description {
                ArchiveDescription::Tensors(s) => tensors(&s),
                ArchiveDescription::Model(info) => model(&info),
            }
        }
    }
    Ok(())
}

fn tensors(s: &llmzip::tensors::Summary) {
    println!(
        "  weight file    {}, {} regions",
        s.layout.container.name(),
        s.layout.regions.len()
    );
    println!("  decodes on     any machine (no model: integer coding only)");
    println!("  original size  {} bytes", s.original_len);
    println!(
        "  archive size   {} bytes ({:.3}x)",
        s.archive_len,
        s.original_len as f64 / s.archive_len.max(1) as f64
    );
    for line in tensor_lines(s) {
        println!("{line}");
    }
}

fn model(info: &codec::ArchiveInfo) {
    let h = &info.header;
    let s = &h.schedule;
    let window = if s.window == 0 {
        "unbounded".to_string()
    } else {
        format!("{} tokens", s.window)
    };
    println!("  written by     {}", h.writer);
    println!(
        "  model          {} (fingerprint {})",
        h.model_name, h.fingerprint
    );
    println!("  tokenizer      {}", h.tokenizer);
    println!("  backend        {}", h.backend);
    println!(
        "  decodes on     {}",
        llmzip::unstable::models::archive_portability(h).describe()
    );
    println!(
        "  schedule       blocks of {}, up to {} segments of at least {} tokens, context {window}",
        HumanBytes(s.block_size),
        s.max_segments,
        s.min_segment_tokens
    );
    println!("  original size  {} bytes", info.original_len);
    println!(
        "  archive size   {} bytes ({:.3} bits per byte)",
        info.archive_len,
        bits_per_byte(info.archive_len, info.original_len)
    );
    println!(
        "  blocks         {} coded ({} tokens), {} stored",
        info.coded_blocks, info.tokens, info.stored_blocks
    );
    println!("  crc32          {:08x}", info.crc);
}
