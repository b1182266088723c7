//! Classic compressors measured next to the models, all as crates so `llmzip bench` needs no
//! external tools: deflate/zip -9, gzip -9, bzip2 -9, xz -9e, zstd -19, brotli -q11.

use std::io::{Read, Write};

use crate::{Error, Result};

/// A classic compressor: compress and decompress whole buffers.
pub struct Baseline {
    /// Name as shown in tables (`xz -9e`, …).
    pub name: &'static str,
    /// Compresses a whole buffer.
    pub compress: fn(&[u8]) -> Result<Vec<u8>>,
    /// Decompresses what `compress` made.
    pub decompress: fn(&[u8]) -> Result<Vec<u8>>,
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

fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).map_err(io)?;
    e.finish().map_err(io)
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

/// All baselines, in the order they are reported.
pub fn all() -> Vec<Baseline> {
    vec![
        Baseline {
            name: "zip -9 (deflate)",
            compress: deflate,
            decompress: inflate,
        },
        Baseline {
            name: "gzip -9",
            compress: gzip,
            decompress: gunzip,
        },
        Baseline {
            name: "bzip2 -9",
            compress: bzip2,
            decompress: bunzip2,
        },
        Baseline {
            name: "xz -9e",
            compress: xz,
            decompress: unxz,
        },
        Baseline {
            name: "zstd -19",
            compress: zstd19,
            decompress: unzstd,
        },
        Baseline {
            name: "brotli -q11",
            compress: brotli11,
            decompress: unbrotli,
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
}
