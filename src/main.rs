//! The `llmzip` command-line tool: a thin layer over the `llmzip` library.

mod commands;

use std::process::ExitCode;

use clap::Parser;

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
