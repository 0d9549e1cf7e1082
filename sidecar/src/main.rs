//! The `warren` binary: parses flags, then hands over to the library.
use std::process::ExitCode;

use clap::Parser;
use warren::cli::Cli;
use warren::run::ExitStatus;

fn main() -> ExitCode {
    match warren::run(Cli::parse()) {
        ExitStatus::Ok => ExitCode::SUCCESS,
        ExitStatus::Config(e) => {
            eprintln!("warren: {e:#}");
            ExitCode::from(2)
        }
        ExitStatus::Runtime(e) => {
            eprintln!("warren: {e:#}");
            ExitCode::from(1)
        }
    }
}
