//! One health probe of one server: a WebSocket handshake to its `url`, a ping, its pong
//! and a close; or a GET of its `healthUrl` expecting a 2xx status; or, for `wss://` and
//! `https://`, a TCP connect (a TLS client is not worth its weight for a health check).
//!
//! The client is written by hand over a `TcpStream`: a probe needs one request, one
//! status line and a few frames, and a WebSocket library would add a task, buffers and
//! a second copy of the handshake per probe. The probe identifies itself with
//! `X-Wsreg-Probe: 1` and presents itself as a same-origin client (`Origin:
//! http://<authority>`), so it passes the server's Host and Origin checks as the page does.
//! Everything is bounded: the whole probe by its timeout, what is read by
//! [`MAX_READ`].

use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::registry::Entry;

/// The most bytes a probe reads from a server (its handshake answer and the frames it
/// sends before the pong, e.g. a Yjs server's first sync message).
pub const MAX_READ: usize = 256 * 1024;

/// Why a probe failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProbeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("the connection broke: {0}")]
    Io(String),
    #[error("not a URL a probe can use: {0}")]
    Url(String),
    #[error("answered {0}")]
    Status(String),
    #[error("closed before the pong")]
    Closed,
    #[error("sent more than {MAX_READ} bytes before the pong")]
    TooMuch,
    #[error("sent a malformed answer")]
    Malformed,
}

impl From<std::io::Error> for ProbeError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => ProbeError::Closed,
            _ => ProbeError::Io(e.to_string()),
        }
    }
}

/// What a probe does for an entry, and where it connects (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    kind: Kind,
    /// The URL's authority, sent as `Host`.
    authority: String,
    path: String,
    addr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A WebSocket handshake, ping and close.
    WebSocket,
    /// A GET expecting 2xx.
    Http,
    /// A TCP connect only (TLS URLs).
    Connect,
}

impl Target {
    fn of(entry: &Entry) -> Result<Target, ProbeError> {
        let url = entry.health_url.as_deref().unwrap_or(&entry.url);
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| ProbeError::Url(url.to_owned()))?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // The fragment is not sent; a path that is only a query gets its slash.
        let path = path.split('#').next().unwrap_or("/");
        let path = match path.starts_with('/') {
            true => path.to_owned(),
            false => format!("/{path}"),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || "-._~:[]@%!$&'()*+,;=".contains(c);
        if authority.is_empty()
            || !authority.chars().all(valid)
            || path.contains(char::is_whitespace)
        {
            return Err(ProbeError::Url(url.to_owned()));
        }
        let (kind, default_port) = match scheme {
            "ws" => (Kind::WebSocket, 80),
            "http" => (Kind::Http, 80),
            "wss" => (Kind::Connect, 443),
            "https" => (Kind::Connect, 443),
            _ => return Err(ProbeError::Url(url.to_owned())),
        };
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let has_port = host_port.rsplit_once(':').is_some_and(|(host, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':')
        });
        let addr = match has_port {
            true => host_port.to_owned(),
            false => format!("{host_port}:{default_port}"),
        };
        Ok(Target {
            kind,
            authority: authority.to_owned(),
            path,
            addr,
        })
    }
}

/// Probes `entry` once, within `timeout`.
pub async fn probe(entry: &Entry, timeout: Duration) -> Result<(), ProbeError> {
    let target = Target::of(entry)?;
    tokio::time::timeout(timeout, run(target))
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
}

async fn run(target: Target) -> Result<(), ProbeError> {
    let mut stream = TcpStream::connect(&target.addr)
        .await
        .map_err(|e| ProbeError::Connect(e.to_string()))?;
    let Target {
        authority, path, ..
    } = &target;
    match target.kind {
        Kind::Connect => Ok(()),
        Kind::Http => {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: wsreg-health\r\n\
                 X-Wsreg-Probe: 1\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await?;
            let (status, _) = read_head(&mut stream).await?;
            match (200..300).contains(&status.code) {
                true => Ok(()),
                false => Err(ProbeError::Status(status.line)),
            }
        }
        Kind::WebSocket => {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {authority}\r\nOrigin: http://{authority}\r\n\
                 Upgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: d3NyZWctaGVhbHRoLXByb2Jl\r\nSec-WebSocket-Version: 13\r\n\
                 User-Agent: wsreg-health\r\nX-Wsreg-Probe: 1\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await?;
            let (status, mut rest) = read_head(&mut stream).await?;
            match status.code {
                101 => {}
                // A server that wants a token (`--auth token`) answers: it is up. The
                // probe does not carry the user's token to whatever an entry names.
                401 => return Ok(()),
                _ => return Err(ProbeError::Status(status.line)),
            }
            // A ping of four bytes, masked as a client's frames must be.
            stream.write_all(&masked_frame(0x9, b"wsrg")).await?;
            wait_for_pong(&mut stream, &mut rest).await?;
            stream
                .write_all(&masked_frame(0x8, &1000u16.to_be_bytes()))
                .await?;
            let _ = stream.shutdown().await;
            Ok(())
        }
    }
}

/// An answer's status line.
struct Status {
    code: u16,
    line: String,
}

/// Reads an HTTP answer's head; returns its status and the bytes read after it.
async fn read_head(stream: &mut TcpStream) -> Result<(Status, Vec<u8>), ProbeError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| ProbeError::Malformed)?;
            let line = head.lines().next().unwrap_or_default().to_owned();
            let code = line
                .strip_prefix("HTTP/1.")
                .and_then(|l| l.get(2..5))
                .and_then(|c| c.parse().ok())
                .ok_or(ProbeError::Malformed)?;
            let rest = buf.split_off(end + 4);
            return Ok((Status { code, line }, rest));
        }
        if buf.len() > 16 * 1024 {
            return Err(ProbeError::Malformed);
        }
        read_more(stream, &mut buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ProbeError> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(ProbeError::Closed);
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Reads frames until a pong, skipping what the server sends first.
async fn wait_for_pong(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ProbeError> {
    let mut read = buf.len();
    loop {
        while let Some((opcode, len)) = frame_at(buf)? {
            match opcode {
                0xA => return Ok(()),
                0x8 => return Err(ProbeError::Closed),
                _ => {
                    buf.drain(..len);
                }
            }
        }
        if read > MAX_READ {
            return Err(ProbeError::TooMuch);
        }
        let before = buf.len();
        read_more(stream, buf).await?;
        read += buf.len() - before;
    }
}

/// The opcode and whole length of the complete frame at the start of `buf`, if there is one.
fn frame_at(buf: &[u8]) -> Result<Option<(u8, usize)>, ProbeError> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    let masked = second & 0x80 != 0;
    let (payload, mut header) = match second & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (
                u64::from_be_bytes(b.try_into().map_err(|_| ProbeError::Malformed)?),
                10,
            ),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if masked {
        header += 4;
    }
    let len = usize::try_from(payload)
        .ok()
        .and_then(|p| p.checked_add(header))
        .filter(|len| *len <= MAX_READ)
        .ok_or(ProbeError::TooMuch)?;
    Ok((buf.len() >= len).then_some((first & 0x0f, len)))
}

/// A final client frame of `opcode` with `payload` (at most 125 bytes), masked.
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    // The mask keeps proxies from reading client frames as requests (RFC 6455 §10.3);
    // a probe talks to loopback servers, so a fixed mask does no harm.
    const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x8e];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::parse;

    fn entry(url: &str, health_url: Option<&str>) -> Entry {
        let health_url = health_url.map_or(String::new(), |u| format!(r#","healthUrl":"{u}""#));
        let doc = format!(
            r#"{{"servers":[{{"id":"e","port":4000,"pid":1,"url":"{url}"{health_url}}}]}}"#
        );
        parse(doc.as_bytes()).unwrap().entries.remove(0)
    }

    #[test]
    fn targets_are_read_from_the_urls() {
        let target = |kind, authority: &str, path: &str, addr: &str| Target {
            kind,
            authority: authority.into(),
            path: path.into(),
            addr: addr.into(),
        };
        let of = |url, health_url| Target::of(&entry(url, health_url));
        assert_eq!(
            of("ws://127.0.0.1:4000", None),
            Ok(target(
                Kind::WebSocket,
                "127.0.0.1:4000",
                "/",
                "127.0.0.1:4000"
            ))
        );
        assert_eq!(
            of("ws://[::1]:4000/room?x=1#frag", None),
            Ok(target(
                Kind::WebSocket,
                "[::1]:4000",
                "/room?x=1",
                "[::1]:4000"
            ))
        );
        assert_eq!(
            of("ws://localhost?q", None),
            Ok(target(Kind::WebSocket, "localhost", "/?q", "localhost:80"))
        );
        assert_eq!(
            of(
                "ws://127.0.0.1:4000/",
                Some("http://127.0.0.1:4001/healthz")
            ),
            Ok(target(
                Kind::Http,
                "127.0.0.1:4001",
                "/healthz",
                "127.0.0.1:4001"
            ))
        );
        assert_eq!(
            of("wss://[::1]/", None),
            Ok(target(Kind::Connect, "[::1]", "/", "[::1]:443"))
        );
        // Nothing that would split the request line or the Host header.
        assert!(of("ws://a b:1/", None).is_err());
        assert!(of("ws://127.0.0.1:4000/a b", None).is_err());
    }

    #[test]
    fn frames_are_found_whole() {
        assert_eq!(frame_at(&[0x8a, 0x00]), Ok(Some((0xA, 2))));
        assert_eq!(frame_at(&[0x82, 0x03, 1, 2]), Ok(None));
        assert_eq!(frame_at(&[0x82, 126, 0x00, 0x80]), Ok(None));
        let mut long = vec![0x82, 126, 0x00, 0x80];
        long.resize(4 + 128, 0);
        assert_eq!(frame_at(&long), Ok(Some((0x2, 132))));
        assert_eq!(
            frame_at(&[0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProbeError::TooMuch)
        );
        let ping = masked_frame(0x9, b"wsrg");
        assert_eq!(ping.len(), 10);
        assert_eq!(frame_at(&ping), Ok(Some((0x9, 10))));
    }
}
