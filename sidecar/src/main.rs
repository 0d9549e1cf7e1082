//! The `warren` binary: parses flags, then hands over to the library.
use clap::Parser;
use warren::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Init(args) => warren::init::run(args),
        Command::Server(_) | Command::Client(_) => Err(anyhow::anyhow!("not built yet")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
