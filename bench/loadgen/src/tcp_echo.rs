//! `wsreg-bench tcp-echo`: the floor under `wsreg echo`, a TCP echo server with no
//! WebSocket framing, no HTTP upgrade and no registry.
//!
//! Each connection's task reads whatever has arrived into one 64 KiB buffer and writes
//! it back: one `read` and one `write` per message of any size the benchmarks send, the
//! least a ping-pong echo can do. It runs on the same runtime as `wsreg echo` (tokio's
//! multi-thread default, one worker per core), so the difference between the two is
//! what WebSocket framing and wsreg add. Prints `listening tcp://127.0.0.1:PORT` and
//! runs until killed; loopback only.

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The read buffer: a 64 KiB message in one `read`.
const BUFFER: usize = 64 * 1024;

pub fn run() -> Result<()> {
    serve_loopback(
        |addr| format!("listening tcp://{addr}/"),
        |_, stream| {
            tokio::spawn(echo(stream));
        },
    )
}

/// Runs a server on tokio's default multi-thread runtime (as `wsreg` runs its own) on a
/// free loopback port: prints `banner`, then hands each accepted connection, numbered
/// from 0, to `accept`, until killed. The floors under the benchmarks run on it.
pub fn serve_loopback(
    banner: impl FnOnce(std::net::SocketAddr) -> String,
    mut accept: impl FnMut(u64, TcpStream),
) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind 127.0.0.1")?;
        println!("{}", banner(listener.local_addr()?));
        for id in 0.. {
            let (stream, _) = listener.accept().await?;
            accept(id, stream);
        }
        Ok(())
    })
}

async fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = vec![0; BUFFER];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
