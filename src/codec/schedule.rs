//! The schedule: how input is cut into blocks and each block into lockstep segments.
//!
//! It is recorded in the archive header, and the decoder derives every segment boundary from it
//! and from the block header with the same functions the encoder used.

use crate::format::{MAX_BLOCK_SIZE, MAX_SEGMENTS, MAX_WINDOW};
use crate::models::{BatchShape, ModelInfo};
use crate::{Error, Result};

/// Schedule settings a user may give; `None` takes the model's or the global default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScheduleOptions {
    pub block_size: Option<u64>,
    pub max_segments: Option<u64>,
    pub min_segment_tokens: Option<u64>,
    pub window: Option<u64>,
}

/// Parameters of the computation schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Input bytes per block. Blocks are coded independently, which bounds memory.
    pub block_size: u64,
    /// Most lockstep rows (segments) per block: more rows, more throughput, less context each.
    pub max_segments: u64,
    /// A block is only split further while every segment keeps at least this many tokens.
    pub min_segment_tokens: u64,
    /// Context window in tokens for models that have one; 0 means unbounded (recurrent models).
    pub window: u64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            block_size: 1 << 20,
            max_segments: 64,
            min_segment_tokens: 8 << 10,
            window: 0,
        }
    }
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

    /// Checks the limits the format imposes.
    pub fn validate(&self) -> Result<()> {
        let problem = if !(1..=MAX_BLOCK_SIZE).contains(&self.block_size) {
            format!("block size must be between 1 and {MAX_BLOCK_SIZE} bytes")
        } else if !(1..=MAX_SEGMENTS).contains(&self.max_segments) {
            format!("segment count must be between 1 and {MAX_SEGMENTS}")
        } else if !(1..=MAX_BLOCK_SIZE).contains(&self.min_segment_tokens) {
            "minimum segment length must be at least 1".into()
        } else if self.window > MAX_WINDOW || (self.window != 0 && self.window < MIN_WINDOW) {
            format!("context window must be 0 (none) or between {MIN_WINDOW} and {MAX_WINDOW}")
        } else {
            return Ok(());
        };
        Err(Error::InvalidSetting(problem))
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
        }
    }

    /// How many segments a block of `tokens` tokens is split into.
    pub fn segments_for(&self, tokens: usize) -> usize {
        let tokens = tokens as u64;
        let wanted = tokens.div_ceil(self.min_segment_tokens);
        wanted.clamp(1, self.max_segments).min(tokens.max(1)) as usize
    }
}

/// Smallest non-zero context window: a slide keeps half of it, BOS plus at least one token.
pub const MIN_WINDOW: u64 = 4;

/// Lengths of `segments` balanced, contiguous segments covering `tokens` tokens (never empty when
/// `segments <= tokens`).
pub fn segment_lengths(tokens: usize, segments: usize) -> Vec<usize> {
    (0..segments)
        .map(|i| (i + 1) * tokens / segments - i * tokens / segments)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_the_block_and_are_balanced() {
        for (tokens, segs) in [(1, 1), (10, 3), (100, 7), (65_536, 64), (5, 5)] {
            let lens = segment_lengths(tokens, segs);
            assert_eq!(lens.iter().sum::<usize>(), tokens);
            let (min, max) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
            assert!(*min >= 1 && max - min <= 1, "{lens:?}");
        }
    }

    #[test]
    fn segment_count_respects_limits() {
        let s = Schedule::default();
        assert_eq!(s.segments_for(0), 1);
        assert_eq!(s.segments_for(1), 1);
        assert_eq!(s.segments_for(s.min_segment_tokens as usize * 3), 3);
        assert_eq!(s.segments_for(1 << 30), s.max_segments as usize);
        let tiny = Schedule {
            min_segment_tokens: 1,
            ..s
        };
        assert_eq!(tiny.segments_for(5), 5);
    }
}
