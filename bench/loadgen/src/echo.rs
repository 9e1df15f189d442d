//! The echo load client: `conns` WebSocket connections, each sending `size`-byte binary
//! messages to an echo server and timing the round trip. With a `tcp://` URL the same
//! load goes over raw TCP (`size` bytes out, `size` bytes back), for the floor server
//! (`wsreg-bench tcp-echo`).
//!
//! Closed loop (the default): each connection sends its next message as soon as the
//! previous one came back, so the figure is the most the pair can do. Open loop
//! (`--rate`): messages leave on a fixed schedule whether or not replies are late, and
//! latency counts from the scheduled send time, so a stalled server shows up in the tail
//! instead of silently lowering the load (no coordinated omission).
//!
//! One process runs on one thread (a current-thread runtime); the runner starts several
//! when one core of client is not enough. The result is one JSON line on stdout.
//!
//! WebSockets read the way `wsreg echo` reads ([`SharedRead`], a small tungstenite
//! buffer): with tungstenite's default 128 KiB read buffer, zero-filled before every
//! `read`, the client cost more CPU per message than the server, and a closed loop ran
//! at the client's pace, which charged the server extra sleeps and wake-ups per message.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use wsreg::servers::shared_read::SharedRead;

use crate::hist::{self, Buckets};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The echo server, `ws://127.0.0.1:PORT/`, or `tcp://127.0.0.1:PORT/` for raw TCP
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

pub type Ws = WebSocketStream<SharedRead<TcpStream>>;

/// tungstenite's own read buffer (see the module's comment).
const READ_BUFFER: usize = 1024;

/// Opens a WebSocket to `url` (a `ws://IP:PORT/` URL), from `source` if given.
pub async fn connect(url: &str, source: Option<Ipv4Addr>) -> Result<Ws> {
    let stream = connect_tcp(url, source).await?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url, SharedRead::new(stream), Some(config))
            .await
            .with_context(|| format!("WebSocket handshake with {url} failed"))?;
    Ok(ws)
}

/// Opens a TCP connection (no delay) to the `IP:PORT` of `url`, from `source` if given.
async fn connect_tcp(url: &str, source: Option<Ipv4Addr>) -> Result<TcpStream> {
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
    Ok(stream)
}

/// One connection's sending half: WebSocket binary messages, or raw bytes.
enum Tx {
    Ws(SplitSink<Ws, Message>),
    Tcp(OwnedWriteHalf),
}

/// One connection's receiving half; raw TCP reads exactly one message's bytes.
enum Rx {
    Ws(SplitStream<Ws>),
    Tcp(OwnedReadHalf, Vec<u8>),
}

/// Connects to `url` for `size`-byte messages: raw TCP for `tcp://`, else a WebSocket.
async fn open(url: &str, size: usize) -> Result<(Tx, Rx)> {
    if url.starts_with("tcp://") {
        let (rx, tx) = connect_tcp(url, None).await?.into_split();
        Ok((Tx::Tcp(tx), Rx::Tcp(rx, vec![0; size])))
    } else {
        let (tx, rx) = connect(url, None).await?.split();
        Ok((Tx::Ws(tx), Rx::Ws(rx)))
    }
}

impl Tx {
    async fn send(&mut self, payload: &Bytes) -> Result<()> {
        match self {
            Tx::Ws(sink) => sink.send(Message::Binary(payload.clone())).await?,
            Tx::Tcp(stream) => stream.write_all(payload).await?,
        }
        Ok(())
    }
}

impl Rx {
    /// The next echo, or an error if the server closes or takes more than ten seconds.
    async fn echo(&mut self) -> Result<()> {
        tokio::time::timeout(Duration::from_secs(10), async {
            match self {
                Rx::Ws(stream) => next_data(stream).await,
                Rx::Tcp(stream, buf) => match stream.read_exact(buf).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        bail!("the server closed the connection")
                    }
                    Err(e) => Err(e.into()),
                },
            }
        })
        .await
        .context("no echo within 10 s")?
    }
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
        sockets.push(open(&args.url, args.size).await?);
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
        .map(|(tx, rx)| {
            let payload = payload.clone();
            tokio::spawn(async move {
                match interval {
                    None => closed_loop(tx, rx, payload, window).await,
                    Some(every) => open_loop(tx, rx, payload, window, every).await,
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

async fn closed_loop(mut tx: Tx, mut rx: Rx, payload: Bytes, window: Window) -> Result<Measured> {
    let mut h = hist::new();
    let mut all = 0;
    loop {
        let sent = Instant::now();
        if sent >= window.end {
            return Ok((h, all));
        }
        tx.send(&payload).await?;
        rx.echo().await?;
        all += 1;
        if sent >= window.measure_from {
            h.saturating_record(sent.elapsed().as_micros() as u64);
        }
    }
}

async fn open_loop(
    mut tx: Tx,
    mut rx: Rx,
    payload: Bytes,
    window: Window,
    every: Duration,
) -> Result<Measured> {
    let (scheduled_tx, mut scheduled_rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(async move {
        let mut at = window.start;
        while at < window.end {
            tokio::time::sleep_until(at).await;
            tx.send(&payload).await?;
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
        rx.echo().await?;
        all += 1;
        if scheduled >= window.measure_from {
            h.saturating_record(scheduled.elapsed().as_micros() as u64);
        }
    }
    writer.await??;
    Ok((h, all))
}

/// The next data message of a stream (control frames are skipped).
async fn next_data(stream: &mut SplitStream<Ws>) -> Result<()> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Binary(_) | Message::Text(_))) => return Ok(()),
            Some(Ok(Message::Close(_))) | None => bail!("the server closed the connection"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}
