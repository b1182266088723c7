//! The schedule: how input is cut into blocks and each block into lockstep segments.
//!
//! It is recorded in the archive header, and the decoder derives every segment boundary from it
//! and from the block header with the same functions the encoder used. Plain data: what depends
//! on a model (its defaults, its context limit, its memory) is added by `codec::schedule`.

use super::{MAX_BLOCK_SIZE, MAX_SEGMENTS, MAX_WINDOW};
use crate::{Error, Result};

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
