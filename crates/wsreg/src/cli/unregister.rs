//! `wsreg unregister ID`: removes an entry.

use std::process::ExitCode;

use anyhow::bail;
use wsreg::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The id printed by `wsreg register` (or shown by `wsreg list`)
    id: String,
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    if !store.unregister(&args.id)? {
        bail!("{}: no entry with id {:?}", store.dir().display(), args.id);
    }
    Ok(ExitCode::SUCCESS)
}
