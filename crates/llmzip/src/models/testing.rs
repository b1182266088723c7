//! Test doubles shared by the model wrappers' tests.

use super::{Backend, BatchShape, Fingerprint, LanguageModel, ModelInfo};
use crate::codec::{compress, BinaryBlocks, Decompressor, Limits, Schedule, Summary};
use crate::tokenization::{ByteTokenizer, Tokenizer};
use crate::Result;
use crate::Silent;

/// Predicts uniformly over bytes: everything a wrapper gains comes from its own statistics.
pub struct Uniform {
    info: ModelInfo,
    rows: usize,
}

impl Uniform {
    pub fn boxed() -> Box<dyn LanguageModel> {
        Box::new(Uniform {
            info: ModelInfo {
                name: "uniform".into(),
                fingerprint: Fingerprint([3; 16]),
                vocab_size: 256,
                bos: 256,
                backend: Backend::of(&candle_core::Device::Cpu, "f32"),
                max_context: None,
                default_window: 0,
                default_segment_tokens: 8192,
            },
            rows: 0,
        })
    }
}

impl LanguageModel for Uniform {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn tokenizer(&self) -> &dyn Tokenizer {
        &ByteTokenizer
    }
    fn working_memory(&self, shape: &BatchShape) -> u64 {
        shape.rows * 256 * 4
    }
    fn start_block(&mut self, rows: usize) -> Result<()> {
        self.rows = rows;
        Ok(())
    }
    fn slide(&mut self, rows: usize) -> Result<()> {
        self.start_block(rows)
    }
    fn step(&mut self, inputs: &[u32]) -> Result<Vec<f32>> {
        assert_eq!(inputs.len(), self.rows);
        Ok(vec![1.0 / 256.0; inputs.len() * 256])
    }
}

/// A model over more than 256 symbols, which byte-level wrappers must refuse.
pub struct Wide(pub Box<dyn LanguageModel>, pub ModelInfo);

impl Wide {
    pub fn boxed() -> Box<dyn LanguageModel> {
        let inner = Uniform::boxed();
        let mut info = inner.info().clone();
        info.vocab_size = 50_000;
        Box::new(Wide(inner, info))
    }
}

impl LanguageModel for Wide {
    fn info(&self) -> &ModelInfo {
        &self.1
    }
    fn tokenizer(&self) -> &dyn Tokenizer {
        self.0.tokenizer()
    }
    fn working_memory(&self, shape: &BatchShape) -> u64 {
        self.0.working_memory(shape)
    }
    fn start_block(&mut self, rows: usize) -> Result<()> {
        self.0.start_block(rows)
    }
    fn slide(&mut self, rows: usize) -> Result<()> {
        self.0.slide(rows)
    }
    fn step(&mut self, inputs: &[u32]) -> Result<Vec<f32>> {
        self.0.step(inputs)
    }
}

/// The library's one round trip for tests: compresses `data` with `encoder`, decompresses it
/// with `decoder`, requires the same bytes back and a summary that counts the archive, and
/// returns the archive with the compression summary.
pub fn round_trip(
    encoder: &mut dyn LanguageModel,
    decoder: &mut dyn LanguageModel,
    data: &[u8],
    schedule: &Schedule,
) -> (Vec<u8>, Summary) {
    let mut archive = Vec::new();
    let summary = compress(
        &mut &data[..],
        &mut archive,
        encoder,
        schedule,
        &Limits::default(),
        BinaryBlocks::Model,
        &mut Silent,
    )
    .unwrap();
    assert_eq!(summary.archive_len, archive.len() as u64);
    let mut back = Vec::new();
    Decompressor::new(archive.as_slice())
        .unwrap()
        .run(&mut back, decoder, &Limits::default(), &mut Silent)
        .unwrap();
    assert!(back == data, "round trip changed the data");
    (archive, summary)
}
