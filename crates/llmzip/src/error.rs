//! Typed errors of the library. Each message says what went wrong *and* what the user can do.

use crate::identity::Fingerprint;

impl Error {
    /// An [`Error::File`] for `path`.
    pub fn file(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::File {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while compressing, decompressing or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    /// Reading or writing failed.
    Io(#[from] std::io::Error),

    #[error("cannot read {}: {source}", path.display())]
    /// A named file (training text, a benchmark input) could not be read.
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },

    #[error("not an llmzip archive (the file does not start with the llmzip magic bytes)")]
    /// The input does not start with the archive magic.
    NotAnArchive,

    #[error("{}", version_message(*found, *supported))]
    /// The archive has another format version than this build reads.
    UnsupportedVersion {
        /// Version in the archive.
        found: u8,
        /// Version this build reads.
        supported: u8,
    },

    #[error("archive is truncated: {0}")]
    /// The archive ends early; says where.
    Truncated(String),

    #[error("archive is corrupt: {0}")]
    /// A check failed; says which.
    Corrupt(String),

    #[error("{0}")]
    /// A machine-bound archive (candle's CPU kernels, see `Portability` in `unstable::models`) failed
    /// its check on another machine: most likely this CPU rounds differently, not damage. Says
    /// where it decodes.
    MachineBound(String),

    #[error(
        "this archive was made with model '{needed_name}' (fingerprint {needed_fingerprint}), \
         but the loaded model is '{given_name}' (fingerprint {given_fingerprint}); \
         pass the archive's model with -m"
    )]
    /// The archive needs another model than the one given.
    ModelMismatch {
        /// Model the archive needs.
        needed_name: String,
        /// Its fingerprint.
        needed_fingerprint: Fingerprint,
        /// Model given.
        given_name: String,
        /// Its fingerprint.
        given_fingerprint: Fingerprint,
    },

    #[error(
        "this archive was made on {needed}, but this run uses {given}; decoding must replay the \
         exact same computation, so {hint}"
    )]
    /// The archive was computed on another device, dtype or GPU.
    BackendMismatch {
        /// Backend the archive was made with.
        needed: String,
        /// Backend of this run.
        given: String,
        /// What the user can do.
        hint: String,
    },

    #[error(
        "{during} needs about {} MiB of working memory for the model and schedule, more than the \
         {} MiB allowed; {hint}", needed.div_ceil(1 << 20), limit >> 20
    )]
    /// A block would need more working memory than allowed.
    MemoryLimit {
        /// `compressing` or `decoding this archive`.
        during: &'static str,
        /// Bytes needed (an upper estimate).
        needed: u64,
        /// Bytes allowed.
        limit: u64,
        /// What the user can do.
        hint: String,
    },

    #[error(
        "this archive was tokenized with '{needed}', but the model uses '{given}'; pass the \
         archive's model with -m"
    )]
    /// The given model tokenizes differently from the archive's.
    TokenizerMismatch {
        /// Tokenizer the archive was made with.
        needed: String,
        /// Tokenizer of the given model.
        given: String,
    },

    #[error("cannot load model: {0}")]
    /// A model could not be found or loaded.
    Model(String),

    #[error("model computation failed: {}", candle_message(.0))]
    /// A tensor computation failed.
    Candle(#[from] candle_core::Error),

    #[error("invalid setting: {0}")]
    /// An option or argument is out of range or inconsistent.
    InvalidSetting(String),

    #[error("interrupted")]
    /// Stopped by the caller (Ctrl-C or an observer).
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
    let this = crate::identity::WRITER;
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

/// A candle error's message without the backtrace candle attaches when `RUST_BACKTRACE` is set:
/// users get the cause, not forty lines of frames.
pub(crate) fn candle_message(mut e: &candle_core::Error) -> String {
    while let candle_core::Error::WithBacktrace { inner, .. } = e {
        e = inner;
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: with RUST_BACKTRACE=1, candle errors carried forty lines of stack frames into
    /// the one-line message (seen on `--device cuda` without a GPU).
    #[test]
    fn candle_errors_lose_their_backtrace() {
        let inner = candle_core::Error::Msg("no CUDA-capable device is detected".into());
        let e = candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(e.to_string().lines().count() > 1, "candle shows the frames");
        let shown = Error::Candle(e).to_string();
        assert_eq!(
            shown,
            "model computation failed: no CUDA-capable device is detected"
        );
    }
}
