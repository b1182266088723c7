//! One way to watch long operations: progress, cancellation and side measurements.
//!
//! Compression, decompression and training all run for minutes on large inputs, and every caller
//! wants the same three things from them: how far they are, a way to stop them cleanly (the CLI
//! maps Ctrl-C to [`Observer::cancelled`]), and sometimes a look at the data as it passes (the
//! CLI's `--stats` runs a deflate baseline over the blocks the codec reads). One trait serves all
//! of them, so a progress display written once works for every operation. Every method has a
//! no-op default; [`Silent`] is the observer that uses none.

/// Hooks for progress display, cancellation and side measurements. All methods have no-op
/// defaults; operations call them between units of work, never in the middle of one.
pub trait Observer {
    /// `bytes` of input have been processed so far: original data for the codec (approximate
    /// within a block), training text for `llmzip::train::train` (feature `train`).
    fn progress(&mut self, _bytes: u64) {}

    /// Returning `true` stops the operation with [`Error::Interrupted`](crate::Error) at the next
    /// unit of work. Nothing partial is handed back.
    fn cancelled(&self) -> bool {
        false
    }

    /// Sees every block of original data the codec reads or writes, in order.
    fn original_block(&mut self, _data: &[u8]) {}

    /// After every training step: the state so far and the step's loss in bits per byte.
    #[cfg(feature = "train")]
    fn trained(&mut self, _state: &crate::train::TrainState, _loss_bpc: f64) {}

    /// After every evaluation on the validation text during training.
    #[cfg(feature = "train")]
    fn evaluated(&mut self, _point: &crate::train::CurvePoint) {}
}

/// An observer that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

/// A cancellation check: [`Error::Interrupted`](crate::Error::Interrupted) once the observer
/// asks to stop.
pub(crate) fn check_cancel(observer: &dyn Observer) -> crate::Result<()> {
    if observer.cancelled() {
        Err(crate::Error::Interrupted)
    } else {
        Ok(())
    }
}
