//! One way to watch long operations: progress, cancellation and side measurements.
//!
//! Compression, decompression and training all run for minutes on large inputs, and every caller
//! wants the same three things from them: how far they are, a way to stop them cleanly (the CLI
//! maps Ctrl-C to [`Observer::cancelled`]), and sometimes a look at the data as it passes (the
//! CLI's `--stats` runs a deflate baseline over the blocks the codec reads). One trait serves all
//! of them, so a progress display written once works for every operation. Every method has a
//! no-op default; [`Silent`] is the observer that uses none. Training adds its own hooks in a
//! trait of its own (`train::TrainObserver`), so that this module depends on nothing.

/// Hooks for progress display, cancellation and side measurements. All methods have no-op
/// defaults; operations call them between units of work, never in the middle of one.
pub trait Observer {
    /// `bytes` of input have been processed so far: original data for the codec (approximate
    /// within a block), training text for training (feature `train`).
    fn progress(&mut self, _bytes: u64) {}

    /// Returning `true` stops the operation with `Error::Interrupted` at the next
    /// unit of work. Nothing partial is handed back.
    fn cancelled(&self) -> bool {
        false
    }

    /// Sees every block of original data the codec reads or writes, in order.
    fn original_block(&mut self, _data: &[u8]) {}
}

/// An observer that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

/// A cancellation check: `Error::Interrupted` once the observer
/// asks to stop.
pub(crate) fn check_cancel(observer: &dyn Observer) -> crate::Result<()> {
    if observer.cancelled() {
        Err(crate::Error::Interrupted)
    } else {
        Ok(())
    }
}
