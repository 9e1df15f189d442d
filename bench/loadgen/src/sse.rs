//! Server-Sent Events subscribers, for the discovery, removal and fan-out figures.
//!
//! A subscriber is a plain HTTP/1.1 GET on a TCP socket, not an HTTP client library: the
//! figure wanted is when the bytes of an event arrive. The chunked transfer encoding is
//! taken off as bytes arrive (so a needle split across two chunks is still found), and
//! an entry is found by a needle (`"pid":1234,` or an entry's id) in the event stream.
//! Every endpoint writes compact JSON, so the needle is exact.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::echo::socket_addr;

/// An open event stream and the event bytes received since the last `clear`.
pub struct Subscriber {
    stream: TcpStream,
    /// Received and not yet decoded (an incomplete chunk).
    raw: Vec<u8>,
    chunked: bool,
    /// Decoded event-stream bytes since the last `clear`.
    seen: Vec<u8>,
    /// How far `seen` has been searched for complete events.
    events_from: usize,
}

impl Subscriber {
    /// Opens `url` (`http://IP:PORT/api/registry/events`) and waits for its first
    /// `servers` event.
    pub async fn open(url: &str) -> Result<Subscriber> {
        let addr = socket_addr(url)?;
        let path = url
            .splitn(4, '/')
            .nth(3)
            .map_or("/".to_owned(), |p| format!("/{p}"));
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut head = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let end = loop {
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .with_context(|| format!("{url}: no answer within 30 s"))??;
            if n == 0 {
                bail!("{url}: closed before answering");
            }
            head.extend_from_slice(&buf[..n]);
        };
        let header = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
        if !header.starts_with("http/1.1 200") {
            bail!(
                "{url}: {}",
                String::from_utf8_lossy(&head[..head.len().min(200)])
            );
        }
        let mut sub = Subscriber {
            stream,
            raw: head[end..].to_vec(),
            chunked: header.contains("transfer-encoding: chunked"),
            seen: Vec::new(),
            events_from: 0,
        };
        sub.decode();
        sub.wait_for(b"event: servers", Duration::from_secs(30))
            .await
            .with_context(|| format!("{url}: no first event"))?;
        sub.clear();
        Ok(sub)
    }

    /// Forgets what was received so far.
    pub fn clear(&mut self) {
        self.seen.clear();
        self.events_from = 0;
    }

    /// Moves what has arrived from `raw` to `seen`, taking off the chunk framing.
    fn decode(&mut self) {
        if !self.chunked {
            self.seen.append(&mut self.raw);
            return;
        }
        loop {
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.raw[..eol]);
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let Ok(size) = usize::from_str_radix(size_text, 16) else {
                // Not a chunk header: keep the bytes as they are rather than lose them.
                self.chunked = false;
                self.seen.append(&mut self.raw);
                return;
            };
            if self.raw.len() < eol + 2 + size + 2 {
                return;
            }
            self.seen
                .extend_from_slice(&self.raw[eol + 2..eol + 2 + size]);
            self.raw.drain(..eol + 2 + size + 2);
        }
    }

    /// Reads once more, waiting at most until `deadline`; an error if the stream closed.
    async fn read_more(&mut self, deadline: Instant, what: impl Fn() -> String) -> Result<()> {
        let mut buf = [0u8; 64 * 1024];
        let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
            .await
            .with_context(what)??;
        if n == 0 {
            bail!("the event stream closed");
        }
        self.raw.extend_from_slice(&buf[..n]);
        self.decode();
        Ok(())
    }

    /// Reads until `needle` has arrived since the last `clear`; returns when it did.
    pub async fn wait_for(&mut self, needle: &[u8], timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut searched: usize = 0;
        loop {
            let from = searched.saturating_sub(needle.len());
            if self.seen[from..].windows(needle.len()).any(|w| w == needle) {
                return Ok(Instant::now());
            }
            searched = self.seen.len();
            self.read_more(deadline, || {
                format!(
                    "{:?} did not arrive within {timeout:?}",
                    String::from_utf8_lossy(needle)
                )
            })
            .await?;
        }
    }

    /// Reads until a whole `servers` event without `needle` has arrived since the last
    /// `clear` (the entry is gone); returns when it did.
    pub async fn wait_without(&mut self, needle: &[u8], timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(len) = self.seen[self.events_from..]
                .windows(2)
                .position(|w| w == b"\n\n")
            {
                let event = &self.seen[self.events_from..self.events_from + len];
                self.events_from += len + 2;
                let is_servers = event.windows(14).any(|w| w == b"event: servers");
                if is_servers && !event.windows(needle.len()).any(|w| w == needle) {
                    return Ok(Instant::now());
                }
            }
            self.read_more(deadline, || {
                format!(
                    "{:?} still listed after {timeout:?}",
                    String::from_utf8_lossy(needle)
                )
            })
            .await?;
        }
    }
}

impl Subscriber {
    /// Reads and discards until the stream closes; adds what arrived to `bytes`.
    pub async fn drain(&mut self, bytes: &std::sync::atomic::AtomicU64) -> Result<()> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// `n` subscribers on `url` held open on a thread of their own, reading (and counting)
/// all that arrives, until dropped.
pub struct Held {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Held {
    pub fn open(url: &str, n: usize) -> Result<Held> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (url, counted) = (url.to_owned(), bytes.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut subs = Vec::new();
                for _ in 0..n {
                    subs.push(Subscriber::open(&url).await?);
                }
                ready_tx.send(()).ok();
                let tasks: Vec<_> = subs
                    .into_iter()
                    .map(|mut s| {
                        let counted = counted.clone();
                        tokio::spawn(async move { s.drain(&counted).await })
                    })
                    .collect();
                let _ = stop_rx.await;
                for t in tasks {
                    t.abort();
                }
                Ok(())
            })
        });
        let mut held = Held {
            stop: Some(stop),
            thread: Some(thread),
            bytes,
        };
        if ready_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let why = held.close();
            bail!("{n} subscribers not open within 60 s: {why:?}");
        }
        Ok(held)
    }

    /// Bytes received by all the subscribers so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn close(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => bail!("the subscribers' thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The needle that finds a server's entry by its PID in a `servers` event.
pub fn pid_needle(pid: u32) -> Vec<u8> {
    format!("\"pid\":{pid},").into_bytes()
}
