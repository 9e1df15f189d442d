//! `wsreg echo`: a registered WebSocket echo server.

use std::process::ExitCode;

use wsreg::Store;
use wsreg::servers::echo;
use wsreg::servers::socket::DEFAULT_MAX_MESSAGE;

use super::server::{self, ListenArgs, ListingArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The port to listen on; 0 lets the OS choose a free one
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    listing: ListingArgs,
    /// The largest message accepted; a larger one closes the connection with 1009
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_MESSAGE)]
    max_message: usize,
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let launch = args
        .listen
        .launch(args.port, Some(args.listing.listing(echo::KIND)));
    server::run(
        store,
        echo::KIND,
        launch,
        echo::router(args.max_message),
        |_| {},
    )
}
