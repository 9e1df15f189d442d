//! `wsreg yjs`: a registered y-websocket compatible sync server, one document per path.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use wsreg::Backend;
use wsreg::servers::yjs::{self, DEFAULT_MAX_DOC, DEFAULT_MAX_MESSAGE};
use wsreg::yjs::{DEFAULT_MAX_OUTBOX, Rooms, Settings};

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
    /// The most bytes queued for one connection; a client that falls further behind is
    /// closed with 1013 (the others are not slowed down)
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_OUTBOX)]
    max_outbox: usize,
    /// How often the server pings each client; one that has not answered by the next
    /// ping is dropped and its awareness removed (e.g. 15s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = ping_interval)]
    ping_interval: Duration,
    /// Under load, a room holds back what it broadcasts for up to this long after its
    /// last write and then writes it to each client at once (one write, not one per
    /// message): less CPU, a few ms more latency; a room with fewer than 4 other clients,
    /// or quiet for this long, sends at once. 0 turns it off
    #[arg(long, value_name = "DURATION", default_value = "4ms", value_parser = batch_window)]
    batch_window: Duration,
}

fn ping_interval(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the interval must be more than zero".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn batch_window(text: &str) -> Result<Duration, String> {
    let window = match text {
        "0" => Duration::ZERO,
        _ => humantime::parse_duration(text).map_err(|e| e.to_string())?,
    };
    match window <= Duration::from_secs(1) {
        true => Ok(window),
        false => Err("the window must be at most 1s".into()),
    }
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        max_message: args.max_message,
        max_doc: args.max_doc,
        batch_window: args.batch_window,
    };
    let rooms = match &args.data_dir {
        Some(dir) => Rooms::new(Some(dir.clone()), settings)
            .with_context(|| format!("--data-dir {}", dir.display()))?,
        None => Rooms::new(None, settings)?,
    };
    server::run(
        backend,
        yjs::KIND,
        args.server.launch(yjs::KIND),
        yjs::router(
            rooms,
            yjs::Config {
                max_message: args.max_message,
                max_outbox: args.max_outbox,
                ping_interval: args.ping_interval,
            },
        ),
        |_| {},
    )
}
