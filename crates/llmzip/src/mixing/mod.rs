//! Online context mixing, PAQ-style, in small parts with one job each.
//!
//! These are the pieces a model that learns *while coding* is built from; they know nothing of
//! neural networks, tokenizers or the codec. A model (today `models::bit_mix`, behind `gru-cm`)
//! composes them: it asks context tables for counts, turns counts into probabilities with state
//! maps, mixes those with a neural model's prediction in the logistic domain, and refines the
//! result with an APM.
//!
//! - [`logistic`]: `squash` / `stretch`, the fixed-point logistic function and its inverse.
//! - [`context`]: hashing contexts into keys and counting the bytes that follow each key.
//! - [`state_map`]: adaptive maps from a (quantized) count state to a probability.
//! - [`mixer`]: online gradient descent for linear mixers of stretched probabilities.
//! - [`apm`]: adaptive probability maps (secondary estimation).
//! - [`match_model`]: follows the last occurrence of the current context and predicts the byte
//!   that came next there.
//!
//! Determinism is the contract of every part: integer arithmetic only (12-bit probabilities,
//! 16-bit state-map probabilities, 16.16 fixed-point weights), no floating point, no dependence
//! on thread count or on a hash map's iteration order. Each part takes the constants that shape
//! its arithmetic as arguments, so that a model's parameter set (which its fingerprint hashes)
//! is the single place they are chosen.

pub(crate) mod apm;
pub(crate) mod context;
pub(crate) mod logistic;
pub(crate) mod match_model;
pub(crate) mod mixer;
pub(crate) mod state_map;
