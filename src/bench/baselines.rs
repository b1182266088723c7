//! Classic compressors measured next to the models, all as crates so `llmzip bench` needs no
//! external tools: deflate/zip -9, gzip -9, bzip2 -9, xz -9e, zstd -19, brotli -q11.
//!
//! `--stats` streams the same deflate -9 ([`DeflateBaseline`]) over the blocks the codec reads, so
//! every llmzip figure has a classic reference from the same bytes in the same run.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use flate2::write::DeflateEncoder;
use llmzip::{tensors, Error, Result};

/// A classic compressor: compress and decompress whole buffers.
pub struct Baseline {
    /// Name as shown in tables (`xz -9e`, …).
    pub name: &'static str,
    /// Compresses a whole buffer.
    pub compress: fn(&[u8]) -> Result<Vec<u8>>,
    /// Decompresses what `compress` made.
    pub decompress: fn(&[u8]) -> Result<Vec<u8>>,
    /// Measured only on weight files (safetensors, GGUF).
    pub weights_only: bool,
}

fn io(e: std::io::Error) -> Error {
    Error::Io(e)
}

/// Reads a decoder to its end.
fn drain(mut decoder: impl Read) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decoder.read_to_end(&mut out).map_err(io)?;
    Ok(out)
}

/// Deflate at level 9, the algorithm inside `zip -9` and `gzip -9`.
fn deflate_encoder<W: Write>(out: W) -> DeflateEncoder<W> {
    DeflateEncoder::new(out, flate2::Compression::best())
}

fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = deflate_encoder(Vec::new());
    e.write_all(data).map_err(io)?;
    e.finish().map_err(io)
}

/// Streaming deflate -9 that only counts its output (`--stats`).
pub struct DeflateBaseline {
    encoder: DeflateEncoder<Counter>,
    elapsed: Duration,
    input: u64,
}

/// Result of the streaming baseline.
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

impl DeflateBaseline {
    /// A baseline that has seen nothing yet.
    pub fn new() -> Self {
        DeflateBaseline {
            encoder: deflate_encoder(Counter::default()),
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

fn inflate(data: &[u8]) -> Result<Vec<u8>> {
    drain(flate2::read::DeflateDecoder::new(data))
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).map_err(io)?;
    e.finish().map_err(io)
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>> {
    drain(flate2::read::GzDecoder::new(data))
}

fn bzip2(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    e.write_all(data).map_err(io)?;
    e.finish().map_err(io)
}

fn bunzip2(data: &[u8]) -> Result<Vec<u8>> {
    drain(bzip2::read::BzDecoder::new(data))
}

/// `xz -9e`: preset 9 with liblzma's "extreme" flag, the strongest xz setting.
fn xz(data: &[u8]) -> Result<Vec<u8>> {
    const EXTREME: u32 = 1 << 31;
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 9 | EXTREME);
    e.write_all(data).map_err(io)?;
    e.finish().map_err(io)
}

fn unxz(data: &[u8]) -> Result<Vec<u8>> {
    drain(liblzma::read::XzDecoder::new(data))
}

fn zstd19(data: &[u8]) -> Result<Vec<u8>> {
    zstd::encode_all(data, 19).map_err(io)
}

fn unzstd(data: &[u8]) -> Result<Vec<u8>> {
    zstd::decode_all(data).map_err(io)
}

fn brotli11(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 1 << 16, 11, 22);
        w.write_all(data).map_err(io)?;
    }
    Ok(out)
}

fn unbrotli(data: &[u8]) -> Result<Vec<u8>> {
    drain(brotli::Decompressor::new(data, 1 << 16))
}

/// The layout of a weight file, or the whole buffer as bytes.
fn layout_of(data: &[u8]) -> tensors::Layout {
    let total = data.len() as u64;
    match tensors::recognise(&mut &data[..], total) {
        Ok((_, Some(layout))) => layout,
        _ => tensors::Layout::bytes(total),
    }
}

/// Whether `data` is a weight file the tensor codec recognises.
pub fn is_weights(data: &[u8]) -> bool {
    layout_of(data).container != tensors::Container::None
}

/// Byte grouping, the method of the seed studies: in every float tensor, the first bytes of all
/// values, then all second bytes, and so on (`forward`), or back. Everything else stays.
fn regroup(data: &[u8], layout: &tensors::Layout, forward: bool) -> Vec<u8> {
    let mut out = vec![0u8; data.len()];
    let mut at = 0usize;
    for r in &layout.regions {
        let len = r.len as usize;
        let (src, dst) = (&data[at..at + len], &mut out[at..at + len]);
        match r.kind {
            tensors::Kind::F32 | tensors::Kind::F16 | tensors::Kind::Bf16 => {
                let w = r.kind.unit() as usize;
                let n = len / w;
                for i in 0..n {
                    for k in 0..w {
                        if forward {
                            dst[k * n + i] = src[i * w + k];
                        } else {
                            dst[i * w + k] = src[k * n + i];
                        }
                    }
                }
            }
            _ => dst.copy_from_slice(src),
        }
        at += len;
    }
    out
}

fn grouped_zstd19(data: &[u8]) -> Result<Vec<u8>> {
    zstd19(&regroup(data, &layout_of(data), true))
}

/// The container's header is not regrouped, so the layout is read back from the grouped bytes.
fn grouped_unzstd(data: &[u8]) -> Result<Vec<u8>> {
    let grouped = unzstd(data)?;
    Ok(regroup(&grouped, &layout_of(&grouped), false))
}

/// All baselines, in the order they are reported.
pub fn all() -> Vec<Baseline> {
    vec![
        Baseline {
            name: "zip -9 (deflate)",
            compress: deflate,
            decompress: inflate,
            weights_only: false,
        },
        Baseline {
            name: "gzip -9",
            compress: gzip,
            decompress: gunzip,
            weights_only: false,
        },
        Baseline {
            name: "bzip2 -9",
            compress: bzip2,
            decompress: bunzip2,
            weights_only: false,
        },
        Baseline {
            name: "xz -9e",
            compress: xz,
            decompress: unxz,
            weights_only: false,
        },
        Baseline {
            name: "zstd -19",
            compress: zstd19,
            decompress: unzstd,
            weights_only: false,
        },
        Baseline {
            name: "brotli -q11",
            compress: brotli11,
            decompress: unbrotli,
            weights_only: false,
        },
        Baseline {
            name: "grouped + zstd -19",
            compress: grouped_zstd19,
            decompress: grouped_unzstd,
            weights_only: true,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_baseline_round_trips_and_compresses_text() {
        let data = b"to be or not to be, that is the question; ".repeat(200);
        for b in all() {
            let c = (b.compress)(&data).unwrap();
            assert!(c.len() < data.len() / 4, "{} did not compress", b.name);
            assert_eq!((b.decompress)(&c).unwrap(), data, "{}", b.name);
        }
    }

    #[test]
    fn streaming_deflate_counts_what_the_whole_buffer_version_writes() {
        let text = b"the quick brown fox ".repeat(500);
        let mut b = DeflateBaseline::new();
        b.update(&text[..5000]);
        b.update(&text[5000..]);
        let r = b.finish();
        assert_eq!(r.input_bytes, text.len() as u64);
        assert_eq!(r.compressed_bytes, deflate(&text).unwrap().len() as u64);
        assert!(r.compressed_bytes < 200);
    }
}
