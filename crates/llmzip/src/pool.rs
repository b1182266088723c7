//! Where the coding runs: on a thread of rayon's pool.
//!
//! The models step every row of a block in parallel at every symbol (`par_iter` in the mixing,
//! `par_chunks` in the matrix products). Called from a thread outside rayon's pool, each of
//! those calls hands its work to the pool and puts the caller to sleep until it is done: two
//! context switches per call, thousands of times per second, even with one thread. Called from
//! a worker of the pool, rayon splits the work in place and idle workers steal from it. Running
//! the whole job on a worker made the default model 1.3–1.5× faster both ways on alice29
//! (docs/profile.md). Results never depend on where the work runs: only the schedule decides
//! them.

/// Runs `work` on a thread of rayon's global pool and waits for it (the caller sleeps once, for
/// the whole job); on a thread of a rayon pool already, runs it there, inline. Used by the
/// one-call helpers, the command-line tool and the Python package.
pub fn on_a_worker<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    let mut out = None;
    rayon::scope(|s| s.spawn(|_| out = Some(work())));
    out.expect("rayon::scope returns after its jobs ran")
}
