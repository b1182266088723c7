//! Process-wide compute settings (thread count). They live in the CLI, not the library: setting
//! them mutates the process environment, which only the program's `main` may decide to do.
//!
//! candle's CPU kernels size their thread pools from `RAYON_NUM_THREADS`, and rayon's global pool
//! is built once. Both must be set before the first tensor operation, so the CLI calls
//! [`configure_threads`] first thing. Results never depend on the thread count (tested in
//! `tests/`), only speed does.

use anyhow::{bail, Result};

/// The thread count to use: `requested`, or all available cores for `None`.
pub fn resolve_threads(requested: Option<usize>) -> Result<usize> {
    match requested {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Makes candle's kernels use `threads` threads.
///
/// Call this before any model is loaded and while the process is single-threaded; later calls
/// cannot resize pools that already exist.
pub fn configure_threads(threads: usize) {
    configure(threads, threads);
}

/// For data-parallel work (training): `workers` threads each run their own kernels. Matrix
/// products then run single-threaded inside each worker, while rayon's pool, which candle also
/// uses for some element-wise ops, keeps one thread per worker so they do not queue on it.
pub fn configure_workers(workers: usize) {
    configure(1, workers);
}

fn configure(matmul_threads: usize, pool_threads: usize) {
    std::env::set_var("RAYON_NUM_THREADS", matmul_threads.max(1).to_string());
    // Ignore the error if the pool already exists (e.g. in tests that call this twice).
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(pool_threads.max(1))
        .build_global();
}
