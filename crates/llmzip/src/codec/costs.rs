//! Where the bits go: the model's ideal code length (Σ −log2 p) split by where each token
//! stands, so that a change to the schedule or the model is judged by a number.
//!
//! Two questions decide most of a transformer's ratio, and these tallies answer them:
//! * How much do cold starts cost? A segment's first tokens are predicted from little or no
//!   context, so [`Costs::by_position`] splits the bits by the token's position in its
//!   segment (0–15, 16–63, 64–255, 256–1023, 1024–4095, 4096 on).
//! * How much does a context-window slide cost? After a slide the model sees only the most
//!   recent half window again; [`Costs::after_slide`] holds the tokens coded within
//!   [`AFTER_SLIDE`] steps after one.
//!
//! Only the encoder knows the tokens' probabilities before coding them, so these are
//! compression figures; they describe the model and schedule, not the archive format.

/// Lower edges of the position buckets of [`Costs::by_position`].
pub const POSITION_EDGES: [usize; 6] = [0, 16, 64, 256, 1024, 4096];

/// Steps after a context-window slide whose tokens [`Costs::after_slide`] counts.
pub const AFTER_SLIDE: usize = 64;

/// Tokens and their ideal code length.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    /// Tokens counted.
    pub tokens: u64,
    /// Their Σ −log2 p, in bits.
    pub bits: f64,
}

impl Tally {
    fn add(&mut self, bits: f64) {
        self.tokens += 1;
        self.bits += bits;
    }

    /// Bits per token (0 without tokens).
    pub fn bits_per_token(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.bits / self.tokens as f64
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.tokens += other.tokens;
        self.bits += other.bits;
    }
}

/// The ideal code length of a compression, by where its tokens stood.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Costs {
    /// By position in the segment: bucket `k` holds positions from `POSITION_EDGES[k]` to the
    /// next edge.
    pub by_position: [Tally; 6],
    /// Tokens coded within [`AFTER_SLIDE`] steps after a context-window slide (also counted
    /// by position).
    pub after_slide: Tally,
}

impl Costs {
    /// Counts a token at position `t` of its segment, `since_slide` steps after the last
    /// window slide (`None`: none yet), that cost `bits`.
    pub fn add(&mut self, t: usize, since_slide: Option<usize>, bits: f64) {
        let bucket = POSITION_EDGES.iter().rposition(|&e| t >= e).unwrap_or(0);
        self.by_position[bucket].add(bits);
        if since_slide.is_some_and(|s| s < AFTER_SLIDE) {
            self.after_slide.add(bits);
        }
    }

    /// Adds another compression's tallies (e.g. the next block's).
    pub fn merge(&mut self, other: &Costs) {
        for (a, b) in self.by_position.iter_mut().zip(&other.by_position) {
            a.merge(b);
        }
        self.after_slide.merge(&other.after_slide);
    }

    /// All tokens counted.
    pub fn total(&self) -> Tally {
        let mut t = Tally::default();
        for b in &self.by_position {
            t.merge(b);
        }
        t
    }

    /// `(label, tally)` for each position bucket, e.g. `("tokens 0-15", …)`.
    pub fn position_rows(&self) -> Vec<(String, Tally)> {
        POSITION_EDGES
            .iter()
            .enumerate()
            .map(|(k, &lo)| {
                let label = match POSITION_EDGES.get(k + 1) {
                    Some(hi) => format!("tokens {lo}-{}", hi - 1),
                    None => format!("tokens {lo}+"),
                };
                (label, self.by_position[k])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_land_in_their_position_bucket_and_after_slides() {
        let mut c = Costs::default();
        c.add(0, None, 8.0);
        c.add(15, None, 4.0);
        c.add(16, Some(3), 2.0);
        c.add(5000, Some(64), 1.0);
        assert_eq!(
            c.by_position[0],
            Tally {
                tokens: 2,
                bits: 12.0
            }
        );
        assert_eq!(c.by_position[1].tokens, 1);
        assert_eq!(c.by_position[5].tokens, 1);
        assert_eq!(
            c.after_slide,
            Tally {
                tokens: 1,
                bits: 2.0
            }
        );
        assert_eq!(
            c.total(),
            Tally {
                tokens: 4,
                bits: 15.0
            }
        );
        let mut d = c.clone();
        d.merge(&c);
        assert_eq!(d.total().tokens, 8);
        assert_eq!(c.position_rows()[1].0, "tokens 16-63");
        assert_eq!(c.position_rows()[5].0, "tokens 4096+");
        assert_eq!(c.by_position[0].bits_per_token(), 6.0);
    }
}
