//! The `llmzip` command-line tool: a thin layer over the `llmzip` library.

mod bench;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// candle allocates a fresh buffer for every tensor op. glibc maps and unmaps the large ones each
/// time, and with several threads every unmap costs TLB shootdowns: training with two workers
/// spent a third of its time in the kernel. mimalloc keeps freed memory for reuse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's own C API (the `mimalloc` crate links it; `libmimalloc-sys` declares the same).
unsafe extern "C" {
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3).
const MI_OPTION_PURGE_DELAY: i32 = 15;
/// `mi_option_arena_eager_commit` in mimalloc's `mi_option_e` (v2 and v3).
const MI_OPTION_ARENA_EAGER_COMMIT: i32 = 4;

/// mimalloc hands memory that has been free for 10 ms back to the OS. A SmolLM2 step takes
/// ~100 ms, so memory freed in one step could be returned before the next and faulted in again,
/// as zeroed 2 MiB huge pages: 40 KB of text took 6,700-10,800 page faults instead of 1,250, and
/// 27.1-37.6 s instead of 25.4-29.3 s (three alternating runs each; docs/models.md). Freed
/// memory stays with the process for reuse instead; the peak is the same (1.23 vs 1.24 GB).
///
/// mimalloc also commits its arenas eagerly on Linux, which made the default model's process
/// grow from block to block: 258 MiB while coding the first 1 MiB block of random base64,
/// 302-311 MiB after a few (docs/profile.md). Committed on demand, the peak stays at the first
/// block's: 258 MiB for two blocks, at the same speed.
fn keep_freed_memory() {
    // SAFETY: plain option setters, called before any thread is started.
    unsafe {
        mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let interrupted = err
                .chain()
                .any(|e| matches!(e.downcast_ref(), Some(llmzip::Error::Interrupted)));
            eprintln!("llmzip: error: {}", commands::describe(&err));
            if interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
