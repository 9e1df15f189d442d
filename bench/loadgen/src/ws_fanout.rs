//! `wsreg-bench ws-fanout`: the floor under `wsreg yjs`'s fan-out, a WebSocket server
//! that forwards every binary message to every other connection and does nothing else:
//! no Yjs, no rooms (one for all), no outboxes, no pings, no limits.
//!
//! Per message it does the least any server of this protocol over TCP can: one `read`
//! of the sender's socket, one unmasking, one encoded frame, and one `write` per reader
//! made right on the sender's task (no task woken per reader). So its CPU per update in
//! the yjs benchmark is what the kernel's loopback writes cost plus as little user space
//! as possible: a bound below which no server's figure can go. It greets each client
//! with an empty sync step 1 (the benchmark's clients wait for one message to know they
//! joined). Prints `floor listening on ws://127.0.0.1:PORT/ ...` and runs until killed;
//! loopback only. It trusts its clients (the benchmark's): frames over 64 KiB end the
//! connection.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tcp_echo::serve_loopback;

/// The read buffer, and the largest frame taken.
const BUFFER: usize = 64 * 1024;

/// The greeting: a binary frame holding y-protocols' sync step 1 of an empty document.
const GREETING: [u8; 6] = [0x82, 4, 0, 0, 1, 0];

/// Every connection's socket, written by whichever connection has a message for them.
type Peers = Arc<Mutex<Vec<(u64, Arc<TcpStream>)>>>;

pub fn run() -> Result<()> {
    let banner =
        |addr| format!("floor listening on ws://{addr}/ (one room, forwards every binary message)");
    let peers = Peers::default();
    serve_loopback(banner, |id, stream| {
        tokio::spawn(connection(id, stream, peers.clone()));
    })
}

async fn connection(id: u64, mut stream: TcpStream, peers: Peers) {
    if stream.set_nodelay(true).is_err() || handshake(&mut stream).await.is_err() {
        return;
    }
    let stream = Arc::new(stream);
    peers.lock().unwrap().push((id, stream.clone()));
    let _ = forward(id, &stream, &peers).await;
    peers.lock().unwrap().retain(|(peer, _)| *peer != id);
}

/// Answers the HTTP upgrade and greets the client.
async fn handshake(stream: &mut TcpStream) -> Result<()> {
    let mut request = Vec::new();
    let mut buf = [0; 1024];
    while !request.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0 && request.len() + n <= 8192, "no upgrade request");
        request.extend_from_slice(&buf[..n]);
    }
    let request = String::from_utf8_lossy(&request);
    let key = request
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim())
        })
        .context("no Sec-WebSocket-Key")?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    stream.write_all(&GREETING).await?;
    Ok(())
}

/// Reads the client's frames and writes each binary one to every other connection.
async fn forward(id: u64, stream: &TcpStream, peers: &Peers) -> Result<()> {
    let mut buf = vec![0; BUFFER];
    let mut filled = 0;
    loop {
        stream.readable().await?;
        match stream.try_read(&mut buf[filled..]) {
            Ok(0) => return Ok(()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
        let mut start = 0;
        while let Some((frame, used)) = next_frame(&mut buf[start..filled])? {
            start += used;
            let frame = match frame {
                Frame::Binary(frame) => frame,
                Frame::Close => return Ok(()),
                Frame::Other => continue,
            };
            let others: Vec<_> = {
                let peers = peers.lock().unwrap();
                peers
                    .iter()
                    .filter(|(peer, _)| *peer != id)
                    .map(|(_, s)| s.clone())
                    .collect()
            };
            for peer in others {
                // A reader gone meanwhile is its own connection's business.
                let _ = write_all(&peer, &frame).await;
            }
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
}

/// A client's frame, as far as forwarding goes.
enum Frame {
    /// A binary message, encoded as the server sends it.
    Binary(Vec<u8>),
    Close,
    Other,
}

/// The first whole frame in `buf` (unmasked in place) and the bytes it took.
fn next_frame(buf: &mut [u8]) -> Result<Option<(Frame, usize)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let opcode = buf[0] & 0x0f;
    let (len, header) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 => anyhow::bail!("a frame over 64 KiB"),
        126 => return Ok(None),
        len => (len as usize, 2),
    };
    anyhow::ensure!(buf[1] & 0x80 != 0, "an unmasked client frame");
    let used = header + 4 + len;
    anyhow::ensure!(used <= BUFFER, "a frame over 64 KiB");
    if buf.len() < used {
        return Ok(None);
    }
    let (head, payload) = buf[..used].split_at_mut(header + 4);
    let mask = [
        head[header],
        head[header + 1],
        head[header + 2],
        head[header + 3],
    ];
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    let frame = match opcode {
        0x8 => Frame::Close,
        0x2 => {
            let mut frame = Vec::with_capacity(4 + len);
            frame.push(0x82);
            match len < 126 {
                true => frame.push(len as u8),
                false => {
                    frame.push(126);
                    frame.extend_from_slice(&(len as u16).to_be_bytes());
                }
            }
            frame.extend_from_slice(payload);
            Frame::Binary(frame)
        }
        _ => Frame::Other,
    };
    Ok(Some((frame, used)))
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
