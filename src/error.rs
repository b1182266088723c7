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

    #[error(
        "archive format version {found} is newer than this llmzip understands (up to {supported}); \
         upgrade llmzip to decompress it"
    )]
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
