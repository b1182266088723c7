//! The ZIP baseline: deflate at level 9, the algorithm inside `zip -9` and `gzip -9`, measured on
//! the same input in the same run so that every llmzip figure has a classic reference next to it.

use std::io::Write;
use std::time::{Duration, Instant};

use flate2::write::DeflateEncoder;
use flate2::Compression;

/// Streaming deflate -9 that only counts its output.
pub struct DeflateBaseline {
    encoder: DeflateEncoder<Counter>,
    elapsed: Duration,
    input: u64,
}

/// Result of the baseline.
#[derive(Debug, Clone, Copy)]
pub struct BaselineResult {
    /// Bytes fed to the baseline.
    pub input_bytes: u64,
    /// Bytes deflate produced.
    pub compressed_bytes: u64,
    /// Time spent compressing.
    pub elapsed: Duration,
}

#[derive(Default)]
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Default for DeflateBaseline {
    fn default() -> Self {
        Self::new()
    }
}

impl DeflateBaseline {
    /// A baseline that has seen nothing yet.
    pub fn new() -> Self {
        DeflateBaseline {
            encoder: DeflateEncoder::new(Counter::default(), Compression::best()),
            elapsed: Duration::ZERO,
            input: 0,
        }
    }

    /// Compresses (and counts) more of the input.
    pub fn update(&mut self, data: &[u8]) {
        let start = Instant::now();
        self.encoder
            .write_all(data)
            .expect("writing to a counter cannot fail");
        self.elapsed += start.elapsed();
        self.input += data.len() as u64;
    }

    /// Ends the stream and returns the sizes and time.
    pub fn finish(self) -> BaselineResult {
        let start = Instant::now();
        let counter = self
            .encoder
            .finish()
            .expect("writing to a counter cannot fail");
        BaselineResult {
            input_bytes: self.input,
            compressed_bytes: counter.0,
            elapsed: self.elapsed + start.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_repetitive_text_and_counts_input() {
        let mut b = DeflateBaseline::new();
        let text = b"the quick brown fox ".repeat(500);
        b.update(&text[..5000]);
        b.update(&text[5000..]);
        let r = b.finish();
        assert_eq!(r.input_bytes, text.len() as u64);
        assert!(r.compressed_bytes > 0 && r.compressed_bytes < 200);
    }
}
