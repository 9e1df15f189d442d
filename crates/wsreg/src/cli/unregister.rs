//! `wsreg unregister ID`: removes an entry.

use std::process::ExitCode;

use anyhow::bail;
use wsreg::Backend;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The id printed by `wsreg register` (or shown by `wsreg list`)
    id: String,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    if !backend.unregister(&args.id)? {
        bail!("{}: no entry with id {:?}", backend.describe(), args.id);
    }
    Ok(ExitCode::SUCCESS)
}
