//! The schedule as the codec uses it with a model: defaults from the model, the model's context
//! limit, and the batch shape a block makes. The schedule itself is plain data owned by the
//! container ([`crate::format::Schedule`]), which records it in the header.

pub use crate::format::{segment_lengths, Schedule, MIN_WINDOW};
use crate::models::{BatchShape, ModelInfo};
use crate::{Error, Result};

/// Schedule settings a user may give; `None` takes the model's or the global default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScheduleOptions {
    /// Input bytes per block.
    pub block_size: Option<u64>,
    /// Most lockstep rows per block.
    pub max_segments: Option<u64>,
    /// Split a block further only while segments keep this many tokens.
    pub min_segment_tokens: Option<u64>,
    /// Context window in tokens (0: none).
    pub window: Option<u64>,
}

impl Schedule {
    /// The schedule for `model`: explicit options first, then the model's defaults, then the
    /// global ones.
    pub fn for_model(options: &ScheduleOptions, model: &ModelInfo) -> Result<Schedule> {
        let d = Schedule::default();
        let schedule = Schedule {
            block_size: options.block_size.unwrap_or(d.block_size),
            max_segments: options.max_segments.unwrap_or(d.max_segments),
            min_segment_tokens: options
                .min_segment_tokens
                .unwrap_or(model.default_segment_tokens),
            window: options.window.unwrap_or(model.default_window),
        };
        schedule.validate()?;
        schedule.check_model(model)?;
        Ok(schedule)
    }

    /// Refuses a window the model cannot attend over.
    pub fn check_model(&self, model: &ModelInfo) -> Result<()> {
        match model.max_context {
            Some(max) if self.window == 0 || self.window > max => {
                Err(Error::InvalidSetting(format!(
                    "model '{}' attends to at most {max} tokens, so it needs a context window \
                     between {MIN_WINDOW} and {max} (got {})",
                    model.name, self.window
                )))
            }
            _ => Ok(()),
        }
    }

    /// The batch a block of `block_len` bytes and `tokens` tokens in `rows` rows makes: the
    /// longest row holds `ceil(tokens / rows)` steps, bounded by the window, and rows that
    /// outgrow the window are prefilled with half of it at each slide.
    pub fn batch_shape(&self, rows: u64, tokens: u64, block_len: u64) -> BatchShape {
        let longest = tokens.div_ceil(rows.max(1));
        let slides = self.window > 0 && longest > self.window;
        BatchShape {
            rows,
            positions: if self.window > 0 {
                longest.min(self.window)
            } else {
                longest
            },
            prefill: if slides { self.window / 2 } else { 0 },
            block_len,
            tokens,
        }
    }
}
