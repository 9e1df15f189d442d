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

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

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

/// The queue both sides share. A plain deque under a lock rather than a channel: a
/// channel allocates a block of slots per connection up front (1.7 KiB each, measured
/// with heaptrack under bench/yjs), while a deque holds nothing until a frame waits.
struct Shared {
    queue: Mutex<VecDeque<Outgoing>>,
    /// Bytes of frames queued.
    queued: AtomicUsize,
    limit: usize,
    /// Live [`Outbox`] handles; none left means the room let go of the connection.
    senders: AtomicUsize,
    /// Wakes the writer when a message is queued or the last sender is gone.
    queued_one: Notify,
    overflowed: AtomicBool,
    /// Wakes every waiter of [`Inbox::overflowed`].
    overflow: Notify,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Outgoing>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, outgoing: Outgoing) {
        self.queue().push_back(outgoing);
        self.queued_one.notify_one();
    }
}

/// The room's side of a connection's queue.
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The writer's side of a connection's queue.
pub struct Inbox {
    shared: Arc<Shared>,
}

/// A queue that holds at most `limit` bytes of frames (a single larger frame is let
/// through when the queue is empty, so no message is undeliverable).
pub fn outbox(limit: usize) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        queued: AtomicUsize::new(0),
        limit,
        senders: AtomicUsize::new(1),
        queued_one: Notify::new(),
        overflowed: AtomicBool::new(false),
        overflow: Notify::new(),
    });
    let inbox = Inbox {
        shared: shared.clone(),
    };
    (Outbox { shared }, inbox)
}

impl Outbox {
    /// Queues a frame. Fails when the queue is over its limit.
    pub fn send(&self, frame: Bytes) -> Result<(), Overflow> {
        let len = frame.len();
        let before = self.shared.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.shared.limit {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(Overflow {
                limit: self.shared.limit,
            });
        }
        self.shared.push(Outgoing::Frame(frame));
        Ok(())
    }

    /// Asks the writer to close with `error` after what is queued.
    pub fn close(&self, error: ProtocolError) {
        self.shared.push(Outgoing::Close(error));
    }

    /// Tells the writer that the room dropped this connection for falling behind.
    pub fn overflow(&self) {
        self.shared.overflowed.store(true, Ordering::Release);
        self.shared.overflow.notify_waiters();
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::AcqRel);
        Outbox {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.queued_one.notify_one();
        }
    }
}

impl Inbox {
    /// The next queued message; `None` once the room has let go of this connection and
    /// everything queued was taken. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(outgoing) = self.shared.queue().pop_front() {
                if let Outgoing::Frame(frame) = &outgoing {
                    self.shared.queued.fetch_sub(frame.len(), Ordering::AcqRel);
                }
                return Some(outgoing);
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return None;
            }
            // A notification sent since the last wait is kept as a permit: none is lost.
            self.shared.queued_one.notified().await;
        }
    }

    /// Resolves once the room has dropped this connection for falling behind (a future
    /// of its own, so that the writer can wait for it while it receives or sends).
    pub fn overflowed(&self) -> impl Future<Output = Overflow> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                let mut notified = pin!(shared.overflow.notified());
                // Registered before the flag is read, so a later overflow wakes it.
                notified.as_mut().enable();
                if shared.overflowed.load(Ordering::Acquire) {
                    return Overflow {
                        limit: shared.limit,
                    };
                }
                notified.await;
            }
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
