//! Idle connections: opens `conns` WebSockets, prints `ready N`, and holds them without
//! sending anything until stdin closes (or `--hold` seconds pass), so the runner can read
//! the server's memory per connection.
//!
//! One loopback source address gives about 28,000 ephemeral ports towards one server
//! port; `--source` spreads the load over more of 127.0.0.0/8 when a run needs more.

use std::io::Read;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Result;
use futures_util::{StreamExt, TryStreamExt};

use crate::echo::connect;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The server, `ws://127.0.0.1:PORT/`
    #[arg(long)]
    pub url: String,
    /// Connections to open
    #[arg(long)]
    pub conns: usize,
    /// The local address to connect from
    #[arg(long, default_value = "127.0.0.1")]
    pub source: Ipv4Addr,
    /// Seconds to hold them at most
    #[arg(long, default_value_t = 120)]
    pub hold: u64,
}

/// Handshakes in flight at once.
const CONCURRENT_CONNECTS: usize = 128;

pub fn run(args: Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sockets: Vec<_> = runtime.block_on(
        futures_util::stream::iter(0..args.conns)
            .map(|_| connect(&args.url, Some(args.source)))
            .buffer_unordered(CONCURRENT_CONNECTS)
            .try_collect(),
    )?;
    println!("ready {}", sockets.len());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = done_tx.send(());
    });
    let _ = done_rx.recv_timeout(Duration::from_secs(args.hold));
    drop(sockets);
    Ok(())
}
