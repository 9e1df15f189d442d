//! A socket that reads through a buffer lent from a shared pool, so an idle WebSocket
//! holds no read buffer of its own.
//!
//! The WebSocket reader ([`super::websocket`]) asks for little at a time: a header's 2
//! bytes, then the rest of it, then a payload of exactly the frame's size. Each of those
//! as a `read` of the socket would be a syscall; a read buffer per connection would cost
//! every idle connection its size (with tungstenite, which issue 16 measured, 8 KiB each
//! and a zero-fill of it per message). [`SharedRead`] splits the two: each `read` of the
//! socket fills a [`CHUNK`]-byte buffer taken from the spares, and the small reads are
//! copies out of it. What the caller cannot take yet stays with the connection, in that
//! same buffer (moved, not copied), until it has been taken; the buffer then goes back.
//! Waiting for input, a connection holds nothing; a worker thread borrows one buffer at
//! a time (a read asking for a whole chunk or more, a large payload, skips the buffer
//! and its copy). The spares are one pool for all the threads, so that a server whose
//! clients all left can free them ([`release_spares`]): kept per thread, each worker's
//! buffer stayed resident in its own malloc arena after every load.
//!
//! The buffers are zero-filled once, when they are allocated, and reused: a `read`
//! never clears one first.

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The size of each lent buffer, and of each `read` of the socket for less than that.
/// Many small frames fit in one; a payload of this size or more is read straight into
/// the caller's buffer. The buffers are a server's fixed cost under load (a few at
/// once, one per worker reading): 64 KiB each was 0.6 KiB per room of bench/yjs's 200.
pub const CHUNK: usize = 16 * 1024;

/// The most spare buffers kept: one per worker thread reading at once, on up to this
/// many cores. Buffers returned beyond it are freed.
const MAX_SPARES: usize = 8;

/// The spare buffers, when no connection holds them: shared by the worker threads
/// rather than one per thread, so that [`release_spares`] can free them all.
static SPARES: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

fn spares() -> MutexGuard<'static, Vec<Box<[u8]>>> {
    SPARES.lock().unwrap_or_else(|e| e.into_inner())
}

/// A spare buffer, or a new one.
fn borrow_chunk() -> Box<[u8]> {
    let spare = spares().pop();
    spare.unwrap_or_else(|| vec![0; CHUNK].into_boxed_slice())
}

/// Gives a buffer back.
fn return_chunk(chunk: Box<[u8]>) {
    let mut spares = spares();
    if spares.len() < MAX_SPARES {
        spares.push(chunk);
    }
}

/// Frees the spare buffers (a server whose clients all left holds none then: `wsreg
/// yjs` calls this before it gives freed memory back to the system).
pub fn release_spares() {
    let freed = std::mem::take(&mut *spares());
    drop(freed);
}

/// Input read from the socket that the caller has not taken yet.
struct Unread {
    chunk: Box<[u8]>,
    start: usize,
    end: usize,
}

/// A stream whose reads go through a lent buffer (see the module's
/// comment); writes pass straight through.
pub struct SharedRead<S> {
    inner: S,
    unread: Option<Unread>,
}

impl<S> SharedRead<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            unread: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SharedRead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let Unread {
            chunk,
            mut start,
            end,
        } = match this.unread.take() {
            Some(unread) => unread,
            // Nothing to copy through: a buffer would only cost a copy.
            None if buf.remaining() >= CHUNK => {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            None => {
                let mut chunk = borrow_chunk();
                let mut read = ReadBuf::new(&mut chunk);
                let polled = Pin::new(&mut this.inner).poll_read(cx, &mut read);
                let end = read.filled().len();
                if let Poll::Ready(Err(_)) | Poll::Pending = polled {
                    return_chunk(chunk);
                    return polled;
                }
                Unread {
                    chunk,
                    start: 0,
                    end,
                }
            }
        };
        let n = buf.remaining().min(end - start);
        buf.put_slice(&chunk[start..start + n]);
        start += n;
        match start < end {
            true => this.unread = Some(Unread { chunk, start, end }),
            false => return_chunk(chunk),
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SharedRead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    use super::{CHUNK, SharedRead};

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    /// A reader of a stream that holds `sent` and then ends.
    async fn holding(sent: &[u8]) -> SharedRead<DuplexStream> {
        let (mut tx, rx) = duplex(sent.len());
        tx.write_all(sent).await.unwrap();
        SharedRead::new(rx)
    }

    /// Reads `len` bytes in pieces of at most `piece` bytes.
    async fn read_pieces<S: tokio::io::AsyncRead + Unpin>(
        reader: &mut SharedRead<S>,
        len: usize,
        piece: usize,
    ) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0; piece];
        while got.len() < len {
            let n = reader.read(&mut buf).await.unwrap();
            assert!(n > 0, "early end of input after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[tokio::test]
    async fn small_reads_get_every_byte_in_order_and_then_the_end() {
        let sent = pattern(3 * CHUNK + 123, 0);
        let mut reader = holding(&sent).await;
        let got = read_pieces(&mut reader, sent.len(), 1000).await;
        assert_eq!(got, sent);
        assert!(
            reader.unread.is_none(),
            "a drained connection holds no buffer"
        );
        assert_eq!(reader.read(&mut [0; 10]).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn large_reads_between_small_ones_keep_the_order() {
        let sent = pattern(6 * CHUNK + 77, 3);
        let mut reader = holding(&sent).await;
        // A small read leaves input in a lent buffer; the large read takes that first,
        // and the next one, with nothing left over, goes straight to the socket.
        let mut got = read_pieces(&mut reader, 100, 100).await;
        assert!(reader.unread.is_some());
        got.extend(read_pieces(&mut reader, 2 * CHUNK, 2 * CHUNK).await);
        got.extend(read_pieces(&mut reader, 10, 10).await);
        got.extend(read_pieces(&mut reader, sent.len() - got.len(), 3 * CHUNK).await);
        assert_eq!(got, sent);
        assert!(reader.unread.is_none());
    }

    #[tokio::test]
    async fn connections_on_one_thread_keep_their_own_input() {
        let (a_sent, b_sent) = (pattern(5000, 1), pattern(7000, 2));
        let (mut a_tx, a_rx) = duplex(CHUNK);
        let (mut b_tx, b_rx) = duplex(CHUNK);
        a_tx.write_all(&a_sent).await.unwrap();
        b_tx.write_all(&b_sent).await.unwrap();
        let (mut a, mut b) = (SharedRead::new(a_rx), SharedRead::new(b_rx));
        // Each holds unread input after its first small read, in turn.
        let mut a_got = read_pieces(&mut a, 100, 100).await;
        let mut b_got = read_pieces(&mut b, 100, 100).await;
        assert!(a.unread.is_some() && b.unread.is_some());
        a_got.extend(read_pieces(&mut a, a_sent.len() - 100, 700).await);
        b_got.extend(read_pieces(&mut b, b_sent.len() - 100, 900).await);
        assert_eq!((a_got, b_got), (a_sent, b_sent));
        assert!(a.unread.is_none() && b.unread.is_none());
    }
}
