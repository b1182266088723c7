//! Process-wide compute settings (thread count).
//!
//! candle's CPU kernels size their thread pools from `RAYON_NUM_THREADS`, and rayon's global pool
//! is built once. Both must be set before the first tensor operation, so the CLI calls
//! [`configure_threads`] first thing. Results never depend on the thread count (tested in
//! `tests/`), only speed does.

use crate::{Error, Result};

/// Sets the number of compute threads for this process. `None` means all available cores.
///
/// Call this before any model is loaded; later calls cannot resize pools that already exist.
pub fn configure_threads(threads: Option<usize>) -> Result<usize> {
    let n = match threads {
        Some(0) => return Err(Error::InvalidSetting("--threads must be at least 1".into())),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // SAFETY-free in edition 2021, but still only sound while single-threaded: the CLI calls this
    // before spawning anything.
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    // Ignore the error if the pool already exists (e.g. in tests that call this twice).
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    Ok(n)
}
