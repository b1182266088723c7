//! Per-stage time profile, as the prototype printed it.

use std::time::{Duration, Instant};

/// The stages a run's time is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading input.
    Read,
    /// Tokenizing (or detokenizing).
    Tokenize,
    /// Running the model.
    ModelInfer,
    /// Range coding (encode or decode) including probability quantization.
    ArithCode,
    /// Writing output.
    Write,
}

impl Stage {
    /// Every stage, in report order.
    pub const ALL: [Stage; 5] = [
        Stage::Read,
        Stage::Tokenize,
        Stage::ModelInfer,
        Stage::ArithCode,
        Stage::Write,
    ];

    /// Name as printed; `decoding` picks the decode name for the coder stage.
    pub fn name(self, decoding: bool) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Tokenize => "tokenize",
            Stage::ModelInfer => "model_infer",
            Stage::ArithCode if decoding => "arith_decode",
            Stage::ArithCode => "arith_encode",
            Stage::Write => "write",
        }
    }
}

/// Accumulated time per stage. Stages that overlap (the weight-file codec reads and writes
/// while it codes) each count their own time, so the total can exceed the wall-clock time.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    totals: [Duration; 5],
}

impl Profile {
    /// Runs `f`, charging its time to `stage`.
    pub fn time<T>(&mut self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.totals[stage as usize] += start.elapsed();
        out
    }

    /// Charges `elapsed` to `stage` (for stages timed elsewhere, e.g. on another thread).
    pub fn add(&mut self, stage: Stage, elapsed: Duration) {
        self.totals[stage as usize] += elapsed;
    }

    /// Time spent in `stage`.
    pub fn get(&self, stage: Stage) -> Duration {
        self.totals[stage as usize]
    }

    /// Sum over all stages.
    pub fn total(&self) -> Duration {
        self.totals.iter().sum()
    }
}
