#![deny(missing_docs)]
//! llmzip: lossless compression driven by neural language models.
//!
//! The pipeline is deliberately split into small parts with one job each:
//!
//! * [`tokenization`] turns bytes into the symbols a model predicts, and back, losslessly.
//! * [`models`] holds the [`models::LanguageModel`] trait and the models behind it. The codec only
//!   ever sees that trait.
//! * [`coder`] turns a model's probabilities into integer distributions and drives the range coder.
//! * [`codec`] owns the *schedule*: how the input is cut into blocks and segments and in which order
//!   the model is stepped. Compressor and decompressor share one implementation of it, which is what
//!   makes decoding reproduce the encoder's probabilities bit for bit.
//! * [`format`](mod@format) reads and writes the `.llmz` container, validating every field before use.
//! * [`tensors`] is the other codec: weight files (safetensors, GGUF) split into number fields
//!   and coded with fast bit models instead of a language model.
//!
//! Most programs need only [`encode_all`] / [`decode_all`] or the streaming [`Encoder`] /
//! [`Decoder`], configured by [`Options`].
//!
//! The command-line tool in `src/main.rs` is a thin layer over this crate.

pub mod catalogue;
pub mod codec;
pub mod coder;
pub mod error;
pub mod format;
mod mixing;
pub mod models;
pub mod observer;
pub mod registry;
mod session;
pub mod stats;
mod stream;
pub mod tensors;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod tokenization;
#[cfg(feature = "train")]
pub mod train;

pub use catalogue::Level;
pub use error::{Error, Result};
pub use observer::{Observer, Silent};
pub use registry::Registry;
pub use session::{
    info, original_len_hint, ArchiveDescription, ArchiveKind, Device, ModelSpec, Options, Report,
    Session,
};
pub use stream::{decode_all, encode_all, Decoder, Encoder};

/// The README's Rust examples, compiled and run as doc tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
