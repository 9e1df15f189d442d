//! A connection's queue of outgoing frames, bounded in bytes.
//!
//! The room queues frames (under its lock, so every connection sees the room's messages
//! in the same order) and the connection's writer sends them. Frames are [`Bytes`]: a
//! broadcast queues the same allocation to every peer, never a copy per peer.
//!
//! The bound is in bytes, not frames: a count of frames says nothing about memory when a
//! frame may be 8 MiB. A send that would take the queue past its limit fails, and the
//! room then drops the peer with [`Outbox::overflow`], which wakes the writer at once —
//! even in the middle of a socket write blocked by a client that stopped reading — so
//! that it closes the connection (1013) instead of draining what was queued first.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::message::ProtocolError;

/// The default bound of one connection's queue: 16 MiB.
pub const DEFAULT_MAX_OUTBOX: usize = 16 << 20;

/// What a room asks a connection's writer to do.
#[derive(Debug)]
pub enum Outgoing {
    /// Send this binary frame.
    Frame(Bytes),
    /// Close with this error's code and reason.
    Close(ProtocolError),
}

/// The queue would grow past its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} bytes are waiting for this connection")]
pub struct Overflow {
    pub limit: usize,
}

struct Shared {
    queued: AtomicUsize,
    limit: usize,
    overflowed: CancellationToken,
}

/// The room's side of a connection's queue.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
}

/// The writer's side of a connection's queue.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
}

/// A queue that holds at most `limit` bytes of frames (a single larger frame is let
/// through when the queue is empty, so no message is undeliverable).
pub fn outbox(limit: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        limit,
        overflowed: CancellationToken::new(),
    });
    let inbox = Inbox {
        rx,
        shared: shared.clone(),
    };
    (Outbox { tx, shared }, inbox)
}

impl Outbox {
    /// Queues a frame. Fails when the queue is over its limit or the writer is gone.
    pub fn send(&self, frame: Bytes) -> Result<(), Overflow> {
        let len = frame.len();
        let overflow = Overflow {
            limit: self.shared.limit,
        };
        let before = self.shared.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.shared.limit {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(overflow);
        }
        self.tx.send(Outgoing::Frame(frame)).map_err(|_| overflow)
    }

    /// Asks the writer to close with `error` after what is queued.
    pub fn close(&self, error: ProtocolError) {
        let _ = self.tx.send(Outgoing::Close(error));
    }

    /// Tells the writer that the room dropped this connection for falling behind.
    pub fn overflow(&self) {
        self.shared.overflowed.cancel();
    }
}

impl Inbox {
    /// The next queued message; `None` once the room has let go of this connection.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let outgoing = self.rx.recv().await?;
        if let Outgoing::Frame(frame) = &outgoing {
            self.shared.queued.fetch_sub(frame.len(), Ordering::AcqRel);
        }
        Some(outgoing)
    }

    /// Resolves once the room has dropped this connection for falling behind (a future
    /// of its own, so that the writer can wait for it while it receives or sends).
    pub fn overflowed(&self) -> impl Future<Output = Overflow> + Send + 'static {
        let token = self.shared.overflowed.clone();
        let limit = self.shared.limit;
        async move {
            token.cancelled().await;
            Overflow { limit }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bound_is_in_bytes_and_frames_are_shared() {
        let (outbox, mut inbox) = outbox(10);
        let frame = Bytes::from_static(b"123456");
        outbox.send(frame.clone()).unwrap();
        assert_eq!(outbox.send(frame.clone()), Err(Overflow { limit: 10 }));
        match inbox.recv().await {
            Some(Outgoing::Frame(f)) => assert_eq!(f.as_ptr(), frame.as_ptr(), "no copy"),
            other => panic!("{other:?}"),
        }
        outbox.send(frame.clone()).unwrap();
        outbox.overflow();
        assert_eq!(inbox.overflowed().await, Overflow { limit: 10 });
    }

    #[tokio::test]
    async fn a_single_frame_over_the_limit_passes_an_empty_queue() {
        let (outbox, mut inbox) = outbox(4);
        outbox.send(Bytes::from_static(b"too long")).unwrap();
        assert!(matches!(inbox.recv().await, Some(Outgoing::Frame(_))));
    }
}
