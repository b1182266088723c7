//! Typed errors of the library. Each message says what went wrong *and* what the user can do.

use crate::models::Fingerprint;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while compressing, decompressing or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),

    #[error("not an llmzip archive (the file does not start with the llmzip magic bytes)")]
    NotAnArchive,

    #[error("{}", version_message(*found, *supported))]
    UnsupportedVersion { found: u8, supported: u8 },

    #[error("archive is truncated: {0}")]
    Truncated(String),

    #[error("archive is corrupt: {0}")]
    Corrupt(String),

    #[error(
        "this archive was made with model '{needed_name}' (fingerprint {needed_fingerprint}), \
         but the loaded model is '{given_name}' (fingerprint {given_fingerprint}); \
         pass the archive's model with -m"
    )]
    ModelMismatch {
        needed_name: String,
        needed_fingerprint: Fingerprint,
        given_name: String,
        given_fingerprint: Fingerprint,
    },

    #[error(
        "this archive was made on {needed}, but this run uses {given}; decoding must replay the \
         exact same computation, so run with --device/--dtype matching the archive"
    )]
    BackendMismatch { needed: String, given: String },

    #[error(
        "{during} needs about {} MiB of working memory for the model and schedule, more than the \
         {} MiB allowed; {hint}", needed.div_ceil(1 << 20), limit >> 20
    )]
    MemoryLimit {
        /// `compressing` or `decoding this archive`.
        during: &'static str,
        needed: u64,
        limit: u64,
        /// What the user can do.
        hint: String,
    },

    #[error(
        "this archive was tokenized with '{needed}', but the model uses '{given}'; pass the \
         archive's model with -m"
    )]
    TokenizerMismatch { needed: String, given: String },

    #[error("cannot load model: {0}")]
    Model(String),

    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("invalid setting: {0}")]
    InvalidSetting(String),

    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// Maps `UnexpectedEof` from `read_exact` to a truncation error that says what was missing.
    pub(crate) fn from_read(err: std::io::Error, what: &str) -> Error {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Truncated(format!("the file ends inside the {what}"))
        } else {
            Error::Io(err)
        }
    }
}

/// Which releases write which format versions, for the refusal of another version.
fn version_message(found: u8, supported: u8) -> String {
    let this = crate::format::WRITER;
    if found > supported {
        format!(
            "archive format version {found} is newer than this llmzip understands ({this} reads \
             version {supported}); upgrade llmzip to decompress it"
        )
    } else {
        let made_by = match found {
            1 => "llmzip 0.1.0 before 2026-11-25 (git commit 2914652 or earlier)",
            _ => "an unknown llmzip release",
        };
        format!(
            "archive format version {found} was made by {made_by}; {this} reads only version \
             {supported}: decompress it with the release that made it"
        )
    }
}
