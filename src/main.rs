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

fn main() -> ExitCode {
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
