//! llmzip's internals, for its own command-line tool, benchmarks, fuzzers and experiments: the
//! codec's engine, the archive format, the models behind [`models::LanguageModel`], the coders,
//! tokenizers and the time profile.
//!
//! **No stability promise**: anything here may change in any release, and candle's types appear
//! in it (so candle's versions become yours). Programs that compress and decompress need only
//! the crate's root ([`Encoder`](crate::Encoder), [`Decoder`](crate::Decoder),
//! [`encode_all`](crate::encode_all), [`Options`](crate::Options), …); ask for what you need
//! there before building on this.
//!
//! The modules live here (rather than at the root, re-exported) so that the stable surface is
//! exactly what the root declares; `tests/public_api.rs` lists it.

#[path = "codec/mod.rs"]
pub mod codec;
#[path = "coder/mod.rs"]
pub mod coder;
#[path = "format/mod.rs"]
pub mod format;
#[path = "models/mod.rs"]
pub mod models;
#[path = "pool.rs"]
pub mod pool;
#[path = "stats.rs"]
pub mod stats;
#[path = "tokenization/mod.rs"]
pub mod tokenization;
