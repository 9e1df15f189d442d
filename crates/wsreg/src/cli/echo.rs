//! `wsreg echo`: a registered WebSocket echo server.

use std::process::ExitCode;

use wsreg::Backend;
use wsreg::servers::echo;
use wsreg::servers::socket::DEFAULT_MAX_MESSAGE;

use super::server::{self, RegisteredArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: RegisteredArgs,
    /// The largest message accepted; a larger one closes the connection with 1009
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_MESSAGE)]
    max_message: usize,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    server::run(
        backend,
        echo::KIND,
        args.server.launch(echo::KIND),
        echo::router(args.max_message),
        |_| {},
    )
}
