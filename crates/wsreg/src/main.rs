//! The `wsreg` command: parses the command line and hands over to `cli`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("wsreg: {err:#}");
            ExitCode::FAILURE
        }
    }
}
