//! The echo load client: `conns` WebSocket connections, each sending `size`-byte binary
//! messages to an echo server and timing the round trip.
//!
//! Closed loop (the default): each connection sends its next message as soon as the
//! previous one came back, so the figure is the most the pair can do. Open loop
//! (`--rate`): messages leave on a fixed schedule whether or not replies are late, and
//! latency counts from the scheduled send time, so a stalled server shows up in the tail
//! instead of silently lowering the load (no coordinated omission).
//!
//! One process runs on one thread (a current-thread runtime); the runner starts several
//! when one core of client is not enough. The result is one JSON line on stdout.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::hist::{self, Buckets};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The echo server, `ws://127.0.0.1:PORT/`
    #[arg(long)]
    pub url: String,
    /// Connections held by this process
    #[arg(long, default_value_t = 1)]
    pub conns: usize,
    /// Message size in bytes
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Seconds measured (after the warm-up)
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
    /// Seconds of load before measuring
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Open loop: messages per second sent by this process, spread over its connections
    #[arg(long)]
    pub rate: Option<f64>,
}

/// What one client process measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// Round trips in the measured window.
    pub round_trips: u64,
    /// Round trips including the warm-up (what the server's CPU time is divided by).
    pub all_round_trips: u64,
    pub secs: f64,
    pub latency_us: Buckets,
}

pub type Ws = WebSocketStream<TcpStream>;

/// Opens a WebSocket to `url` (a `ws://IP:PORT/` URL), from `source` if given.
pub async fn connect(url: &str, source: Option<Ipv4Addr>) -> Result<Ws> {
    let addr = socket_addr(url)?;
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::from((ip, 0)))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .with_context(|| format!("WebSocket handshake with {url} failed"))?;
    Ok(ws)
}

/// The `IP:PORT` of a `ws://IP:PORT/…` or `http://IP:PORT/…` URL.
pub fn socket_addr(url: &str) -> Result<SocketAddr> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .with_context(|| format!("not a URL: {url}"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .parse()
        .with_context(|| format!("{url}: the benchmarks need an IP:PORT address"))
}

pub fn run(args: Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(load(args))?;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

/// The measurement window shared by every connection of a process.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

async fn load(args: Args) -> Result<Outcome> {
    let mut sockets = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        sockets.push(connect(&args.url, None).await?);
    }
    let start = Instant::now();
    let window = Window {
        start,
        measure_from: start + Duration::from_secs_f64(args.warmup),
        end: start + Duration::from_secs_f64(args.warmup + args.secs),
    };
    let payload = Bytes::from(vec![b'x'; args.size]);
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(args.conns as f64 / rate));
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| {
            let payload = payload.clone();
            tokio::spawn(async move {
                match interval {
                    None => closed_loop(ws, payload, window).await,
                    Some(every) => open_loop(ws, payload, window, every).await,
                }
            })
        })
        .collect();
    let mut merged = hist::new();
    let mut all_round_trips = 0;
    for task in tasks {
        let (h, all) = task.await??;
        merged.add(h)?;
        all_round_trips += all;
    }
    Ok(Outcome {
        round_trips: merged.len(),
        all_round_trips,
        secs: args.secs,
        latency_us: Buckets::of(&merged),
    })
}

/// A connection's measured latencies, and its round trips including the warm-up.
type Measured = (Histogram<u64>, u64);

async fn closed_loop(mut ws: Ws, payload: Bytes, window: Window) -> Result<Measured> {
    let mut h = hist::new();
    let mut all = 0;
    loop {
        let sent = Instant::now();
        if sent >= window.end {
            return Ok((h, all));
        }
        ws.send(Message::Binary(payload.clone())).await?;
        next_data(&mut ws).await?;
        all += 1;
        if sent >= window.measure_from {
            h.saturating_record(sent.elapsed().as_micros() as u64);
        }
    }
}

async fn open_loop(ws: Ws, payload: Bytes, window: Window, every: Duration) -> Result<Measured> {
    let (mut sink, mut stream) = ws.split();
    let (scheduled_tx, mut scheduled_rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(async move {
        let mut at = window.start;
        while at < window.end {
            tokio::time::sleep_until(at).await;
            sink.send(Message::Binary(payload.clone())).await?;
            if scheduled_tx.send(at).is_err() {
                break;
            }
            at += every;
        }
        anyhow::Ok(())
    });
    let mut h = hist::new();
    let mut all = 0;
    while let Some(scheduled) = scheduled_rx.recv().await {
        next_data(&mut stream).await?;
        all += 1;
        if scheduled >= window.measure_from {
            h.saturating_record(scheduled.elapsed().as_micros() as u64);
        }
    }
    writer.await??;
    Ok((h, all))
}

/// The next data message of a stream (control frames are skipped), or an error if the
/// server closes or takes more than ten seconds.
async fn next_data<S>(stream: &mut S) -> Result<()>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .context("no echo within 10 s")?;
        match next {
            Some(Ok(Message::Binary(_) | Message::Text(_))) => return Ok(()),
            Some(Ok(Message::Close(_))) | None => bail!("the server closed the connection"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}
