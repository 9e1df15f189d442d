//! Server-Sent Events subscribers, for the discovery and fan-out figures.
//!
//! A subscriber is a plain HTTP/1.1 GET on a TCP socket, not an HTTP client library: the
//! figure wanted is when the bytes of an event arrive, and the event is found by a needle
//! (`"pid":1234,` or an entry's id) in the raw stream, so chunked encoding and event
//! framing need no parsing. Both endpoints write compact JSON, so the needle is exact.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::echo::socket_addr;

/// An open event stream and the bytes received since the last `clear`.
pub struct Subscriber {
    stream: TcpStream,
    seen: Vec<u8>,
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
        let mut sub = Subscriber {
            stream,
            seen: Vec::new(),
        };
        sub.wait_for(b"event: servers", Duration::from_secs(30))
            .await
            .with_context(|| format!("{url}: no first event"))?;
        if !sub.seen.starts_with(b"HTTP/1.1 200") {
            bail!(
                "{url}: {}",
                String::from_utf8_lossy(&sub.seen[..sub.seen.len().min(200)])
            );
        }
        sub.clear();
        Ok(sub)
    }

    /// Forgets what was received so far.
    pub fn clear(&mut self) {
        self.seen.clear();
    }

    /// Reads until `needle` has arrived since the last `clear`; returns when it did.
    pub async fn wait_for(&mut self, needle: &[u8], timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 16 * 1024];
        let mut searched: usize = 0;
        loop {
            let from = searched.saturating_sub(needle.len());
            if self.seen[from..].windows(needle.len()).any(|w| w == needle) {
                return Ok(Instant::now());
            }
            searched = self.seen.len();
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .with_context(|| {
                    format!(
                        "{:?} did not arrive within {timeout:?}",
                        String::from_utf8_lossy(needle)
                    )
                })??;
            if n == 0 {
                bail!("the event stream closed");
            }
            self.seen.extend_from_slice(&buf[..n]);
        }
    }
}

/// The needle that finds a server's entry by its PID in a `servers` event.
pub fn pid_needle(pid: u32) -> Vec<u8> {
    format!("\"pid\":{pid},").into_bytes()
}
