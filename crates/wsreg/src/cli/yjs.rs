//! `wsreg yjs`: a registered y-websocket compatible sync server, one document per path.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use wsreg::Backend;
use wsreg::servers::yjs::{self, DEFAULT_MAX_DOC, DEFAULT_MAX_MESSAGE};
use wsreg::yjs::{Limits, Rooms};

use super::server::{self, RegisteredArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: RegisteredArgs,
    /// Keep every document in this directory (an update log per document, loaded when
    /// a client first opens it); without it documents live in memory only
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The largest message accepted; a larger one closes the connection with 1009
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_MESSAGE)]
    max_message: usize,
    /// The largest a document may grow (bytes of encoded state); an update past it closes
    /// the connection with 1009
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DOC)]
    max_doc: usize,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        max_message: args.max_message,
        max_doc: args.max_doc,
    };
    let rooms = match &args.data_dir {
        Some(dir) => Rooms::new(Some(dir.clone()), limits)
            .with_context(|| format!("--data-dir {}", dir.display()))?,
        None => Rooms::new(None, limits)?,
    };
    server::run(
        backend,
        yjs::KIND,
        args.server.launch(yjs::KIND),
        yjs::router(Arc::new(rooms), args.max_message),
        |_| {},
    )
}
