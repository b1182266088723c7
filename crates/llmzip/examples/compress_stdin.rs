//! Compresses standard input to standard output through `llmzip::Encoder`, with the embedded
//! default model: `cargo run --release --example compress_stdin < notes.txt > notes.txt.llmz`
//! (then `llmzip decompress -c notes.txt.llmz` gives the text back).

use std::io::{self, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stdout = io::stdout().lock();
    let mut encoder = llmzip::Encoder::new(stdout, &llmzip::Options::default())?;
    io::copy(&mut io::stdin().lock(), &mut encoder)?;
    encoder.finish()?.flush()?;
    Ok(())
}
