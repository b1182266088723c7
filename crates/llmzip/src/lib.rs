#![deny(missing_docs)]
//! llmzip: lossless compression driven by neural language models.
//!
//! Most programs need only the root: [`encode_all`] / [`decode_all`] or the streaming
//! [`Encoder`] / [`Decoder`], configured by [`Options`] (a [`Level`] or a model), with typed
//! [`Error`]s; [`Session`] compresses many files with one set of options (what the
//! command-line tool does), [`info`] describes an archive without decoding it, [`tensors`] is
//! the codec for weight files, and [`catalogue`] lists the levels and models.
//!
//! Inside, the pipeline is split into parts with one job each (all under [`unstable`], which
//! makes no stability promise):
//!
//! * [`tokenization`](unstable::tokenization) turns bytes into the symbols a model predicts,
//!   and back, losslessly.
//! * [`models`](unstable::models) holds the [`LanguageModel`](unstable::models::LanguageModel)
//!   trait and the models behind it. The codec only ever sees that trait.
//! * [`coder`](unstable::coder) turns a model's probabilities into integer distributions and
//!   drives the range coder (or, for models that predict bits, the binary coder).
//! * [`codec`](unstable::codec) owns the *schedule*: how the input is cut into blocks and
//!   segments and in which order the model is stepped. Compressor and decompressor share one
//!   implementation of it, which is what makes decoding reproduce the encoder's probabilities
//!   bit for bit.
//! * [`format`](unstable::format) reads and writes the `.llmz` container, validating every
//!   field before use.
//! * The orchestrator ([`Session`]) picks the codec, the model and the schedule; the CLI,
//!   [`Encoder`], [`Decoder`] and the one-call helpers all go through it.
//!
//! The command-line tool in `src/main.rs` is a thin layer over this crate.

pub mod catalogue;
mod error;
mod identity;
mod members;
mod mixing;
mod observer;
mod registry;
mod session;
mod stream;
pub mod tensors;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
#[cfg(feature = "train")]
pub mod train;
pub mod unstable;

pub(crate) use unstable::{codec, coder, format, models, stats, tokenization};

pub use catalogue::Level;
pub use error::{Error, Result};
pub use members::{members, Member, SeekableDecoder};
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
