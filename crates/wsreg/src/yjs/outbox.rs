//! A connection's queue of outgoing frames, bounded in bytes.
//!
//! The room queues frames (under its lock, so every connection sees the room's messages
//! in the same order) and the connection's writer sends them. Frames are [`Binary`]
//! data held in [`Bytes`](bytes::Bytes): a broadcast queues the same allocation to every
//! peer, never a copy per peer.
//!
//! The bound is in bytes, not frames: a count of frames says nothing about memory when a
//! frame may be 8 MiB. A send that would take the queue past its limit fails, and the
//! room then drops the peer with [`Outbox::overflow`], which wakes the writer at once —
//! even in the middle of a socket write blocked by a client that stopped reading — so
//! that it closes the connection (1013) instead of draining what was queued first.
//!
//! A frame need not wait in the queue at all: when nothing is queued and the writer is
//! not sending, [`Outbox::send`] writes it straight into the socket ([`Direct`]), on
//! the room's caller's task, and the writer is not even woken. That is the usual case of
//! a room forwarding an update to its peers. What the socket does not take at once is
//! queued (or, for the rest of a frame begun, left to the writer to finish) in order.
//!
//! The server's signals reach the writer here too, as bits of one byte beside the
//! room's overflow ([`Signal`]): each tick of the server's ping interval
//! ([`Outbox::tick`]) and its shutdown ([`Outbox::shut_down`]). One timer for the
//! server rather than one per connection: a `Sleep` cost every connection 128 bytes, and
//! its wait 88 more in its task.
//!
//! The writer is one task, so one [`AtomicWaker`] wakes it for everything (a frame
//! queued, a signal, the last sender gone), and it waits through `poll_*` methods
//! rather than futures: two `Notify`s and the futures waiting on them made every
//! connection's queue and task about 250 bytes larger (`-Zprint-type-sizes`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use super::message::ProtocolError;

/// The default bound of one connection's queue: 16 MiB.
pub const DEFAULT_MAX_OUTBOX: usize = 16 << 20;

/// What a room asks a connection's writer to do.
#[derive(Debug)]
pub enum Outgoing {
    /// Send this binary message (or these frames).
    Frame(Binary),
    /// Finish the frame that [`Direct::try_send`] began.
    Flush,
    /// Close with this error's code and reason.
    Close(ProtocolError),
}

/// Writes a frame into the connection's socket at once, if its writer is not sending.
pub trait Direct: Send + Sync {
    fn try_send(&self, frame: &Binary) -> Written;
}

/// What a connection sends, and how much of it [`Direct::try_send`] wrote (a frame
/// written in part is finished by the writer before anything else).
pub use crate::servers::websocket::{Binary, Written};

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
    queue: Mutex<Queue>,
    /// The socket, for frames written without the writer.
    direct: Option<Box<dyn Direct>>,
    /// Bytes of frames queued.
    queued: AtomicUsize,
    limit: usize,
    /// Live [`Outbox`] handles; none left means the room let go of the connection.
    senders: AtomicUsize,
    /// The signals not taken yet: [`TICK`], [`SHUTDOWN`], [`OVERFLOW`].
    signals: AtomicU8,
    /// The writer's task, woken when a message is queued, on a signal and when the last
    /// sender is gone.
    writer: AtomicWaker,
}

/// A tick of the server's ping interval (taken once by the writer).
const TICK: u8 = 1;
/// The server is shutting down (stays set).
const SHUTDOWN: u8 = 2;
/// The room dropped the connection for falling behind (stays set).
const OVERFLOW: u8 = 4;

/// What the writer is told apart from the queue, most pressing first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The server is shutting down.
    Shutdown,
    /// The room dropped this connection for falling behind.
    Overflowed(Overflow),
    /// The server's ping interval went by.
    Tick,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Outgoing>,
    /// The writer took a frame (or a flush) and has not finished it: a frame written
    /// directly now would overtake it.
    taken: bool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, outgoing: Outgoing) {
        self.queue().items.push_back(outgoing);
        self.writer.wake();
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
/// through when the queue is empty, so no message is undeliverable), in front of the
/// socket `direct` (if any), which takes frames without queueing while it can.
pub fn outbox(limit: usize, direct: Option<Box<dyn Direct>>) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::default(),
        direct,
        queued: AtomicUsize::new(0),
        limit,
        senders: AtomicUsize::new(1),
        signals: AtomicU8::new(0),
        writer: AtomicWaker::new(),
    });
    let inbox = Inbox {
        shared: shared.clone(),
    };
    (Outbox { shared }, inbox)
}

impl Outbox {
    /// Sends a frame: written at once when nothing waits and the socket takes it, else
    /// queued. Fails when the queue is over its limit.
    pub fn send(&self, frame: Binary) -> Result<(), Overflow> {
        let mut queue = self.shared.queue();
        if let Some(direct) = &self.shared.direct
            && queue.items.is_empty()
            && !queue.taken
        {
            match direct.try_send(&frame) {
                Written::All => return Ok(()),
                Written::Part => {
                    queue.items.push_back(Outgoing::Flush);
                    drop(queue);
                    self.shared.writer.wake();
                    return Ok(());
                }
                Written::Nothing => {}
            }
        }
        let len = frame.bytes().len();
        let before = self.shared.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.shared.limit {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(Overflow {
                limit: self.shared.limit,
            });
        }
        queue.items.push_back(Outgoing::Frame(frame));
        drop(queue);
        self.shared.writer.wake();
        Ok(())
    }

    /// Asks the writer to close with `error` after what is queued.
    pub fn close(&self, error: ProtocolError) {
        self.shared.push(Outgoing::Close(error));
    }

    /// Tells the writer that the room dropped this connection for falling behind.
    pub fn overflow(&self) {
        self.signal(OVERFLOW);
    }

    /// Tells the writer that the server's ping interval went by (ticks it has not taken
    /// yet count as one).
    pub fn tick(&self) {
        self.signal(TICK);
    }

    /// Tells the writer that the server is shutting down.
    pub fn shut_down(&self) {
        self.signal(SHUTDOWN);
    }

    fn signal(&self, signal: u8) {
        self.shared.signals.fetch_or(signal, Ordering::AcqRel);
        self.shared.writer.wake();
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
            self.shared.writer.wake();
        }
    }
}

impl Inbox {
    /// The next queued message; `None` once the room has let go of this connection and
    /// everything queued was taken. After a frame or a flush, call [`Inbox::sent`] once
    /// it is written: until then nothing is written directly. Only the task that polls
    /// this is woken (the queue has one writer).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        // Registered before the queue is read, so a frame queued later wakes it.
        self.shared.writer.register(cx.waker());
        if let Some(outgoing) = self.take() {
            return Poll::Ready(Some(outgoing));
        }
        match self.shared.senders.load(Ordering::Acquire) {
            0 => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }

    fn take(&self) -> Option<Outgoing> {
        let mut queue = self.shared.queue();
        let outgoing = queue.items.pop_front()?;
        match &outgoing {
            Outgoing::Frame(frame) => {
                self.shared
                    .queued
                    .fetch_sub(frame.bytes().len(), Ordering::AcqRel);
                queue.taken = true;
            }
            Outgoing::Flush => queue.taken = true,
            Outgoing::Close(_) => {}
        }
        Some(outgoing)
    }

    /// The frame (or flush) last taken is written: frames may go straight to the socket
    /// again.
    pub fn sent(&self) {
        self.shared.queue().taken = false;
    }

    /// The most pressing signal not taken yet ([`Signal`] lists them in order); a tick
    /// is taken once (several not taken in between count as one), the shutdown and the
    /// overflow stay. Polled apart from [`Inbox::poll_recv`], so that the writer also
    /// notices them while it receives or sends; wakes the same task.
    pub fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        self.shared.writer.register(cx.waker());
        let signals = self.shared.signals.load(Ordering::Acquire);
        if signals & SHUTDOWN != 0 {
            Poll::Ready(Signal::Shutdown)
        } else if signals & OVERFLOW != 0 {
            Poll::Ready(Signal::Overflowed(Overflow {
                limit: self.shared.limit,
            }))
        } else if signals & TICK != 0
            && self.shared.signals.fetch_and(!TICK, Ordering::AcqRel) & TICK != 0
        {
            Poll::Ready(Signal::Tick)
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::future::poll_fn;

    async fn recv(inbox: &mut Inbox) -> Option<Outgoing> {
        poll_fn(|cx| inbox.poll_recv(cx)).await
    }

    async fn signal(inbox: &Inbox) -> Signal {
        poll_fn(|cx| inbox.poll_signal(cx)).await
    }

    /// The writer waits for both at once, as a connection's task does.
    async fn next(inbox: &mut Inbox) -> Result<Option<Outgoing>, Signal> {
        poll_fn(|cx| match inbox.poll_signal(cx) {
            Poll::Ready(signal) => Poll::Ready(Err(signal)),
            Poll::Pending => inbox.poll_recv(cx).map(Ok),
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_writer_is_woken_by_a_frame_an_overflow_and_the_last_sender_leaving() {
        let (outbox, mut inbox) = outbox(1 << 20, None);
        let writer = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..2 {
                seen.push(format!("{:?}", next(&mut inbox).await));
            }
            seen
        });
        tokio::task::yield_now().await;
        outbox
            .send(Binary::Message(Bytes::from_static(b"1")))
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        outbox.overflow();
        let seen = writer.await.unwrap();
        assert!(seen[0].starts_with("Ok(Some(Frame("), "{seen:?}");
        assert_eq!(
            seen[1],
            format!(
                "{:?}",
                Err::<(), _>(Signal::Overflowed(Overflow { limit: 1 << 20 }))
            )
        );
        let (outbox, mut inbox) = super::outbox(1 << 20, None);
        let writer = tokio::spawn(async move { recv(&mut inbox).await.is_none() });
        tokio::task::yield_now().await;
        drop(outbox);
        assert!(writer.await.unwrap(), "the last sender gone ends the queue");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signals_wake_the_writer_ticks_are_taken_once_and_the_most_pressing_comes_first() {
        let (outbox, inbox) = outbox(1 << 20, None);
        let inbox = Arc::new(inbox);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let waiting = inbox.clone();
        let writer = tokio::spawn(async move { signal(&waiting).await });
        tokio::task::yield_now().await;
        // Two ticks before the writer takes one count as one.
        outbox.tick();
        outbox.tick();
        assert_eq!(writer.await.unwrap(), Signal::Tick);
        assert!(inbox.poll_signal(&mut cx).is_pending());

        let waiting = inbox.clone();
        let writer = tokio::spawn(async move { signal(&waiting).await });
        tokio::task::yield_now().await;
        outbox.overflow();
        let overflowed = Signal::Overflowed(Overflow { limit: 1 << 20 });
        assert_eq!(writer.await.unwrap(), overflowed);
        outbox.tick();
        assert_eq!(
            signal(&inbox).await,
            overflowed,
            "the overflow stays, over a tick"
        );

        let waiting = inbox.clone();
        let writer = tokio::spawn(async move {
            // Past the overflow, which stays ready: wait until the shutdown shows.
            poll_fn(|cx| match waiting.poll_signal(cx) {
                Poll::Ready(Signal::Shutdown) => Poll::Ready(()),
                _ => Poll::Pending,
            })
            .await
        });
        tokio::task::yield_now().await;
        outbox.shut_down();
        writer.await.unwrap();
        assert_eq!(
            signal(&inbox).await,
            Signal::Shutdown,
            "the shutdown stays, first"
        );
    }

    #[tokio::test]
    async fn the_bound_is_in_bytes_and_frames_are_shared() {
        let (outbox, mut inbox) = outbox(10, None);
        let frame = Binary::Message(Bytes::from_static(b"123456"));
        outbox.send(frame.clone()).unwrap();
        assert_eq!(outbox.send(frame.clone()), Err(Overflow { limit: 10 }));
        match recv(&mut inbox).await {
            Some(Outgoing::Frame(f)) => {
                assert_eq!(f.bytes().as_ptr(), frame.bytes().as_ptr(), "no copy")
            }
            other => panic!("{other:?}"),
        }
        outbox.send(frame.clone()).unwrap();
        outbox.overflow();
        assert_eq!(
            signal(&inbox).await,
            Signal::Overflowed(Overflow { limit: 10 })
        );
    }

    #[tokio::test]
    async fn a_single_frame_over_the_limit_passes_an_empty_queue() {
        let (outbox, mut inbox) = outbox(4, None);
        outbox
            .send(Binary::Frames(Bytes::from_static(b"too long")))
            .unwrap();
        assert!(matches!(recv(&mut inbox).await, Some(Outgoing::Frame(_))));
    }

    /// A socket that takes what it is told to, and records what it took.
    struct Socket {
        takes: Mutex<VecDeque<Written>>,
        took: Arc<Mutex<Vec<Binary>>>,
    }

    impl Direct for Socket {
        fn try_send(&self, frame: &Binary) -> Written {
            let written = self
                .takes
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Written::All);
            if written != Written::Nothing {
                self.took.lock().unwrap().push(frame.clone());
            }
            written
        }
    }

    #[tokio::test]
    async fn frames_go_straight_to_an_idle_socket_and_never_overtake_queued_ones() {
        let took = Arc::new(Mutex::new(Vec::new()));
        let takes = [Written::All, Written::Nothing, Written::All, Written::Part];
        let socket = Socket {
            takes: Mutex::new(takes.into()),
            took: took.clone(),
        };
        let (outbox, mut inbox) = outbox(1 << 20, Some(Box::new(socket)));
        let frame = |b: &'static [u8]| Binary::Message(Bytes::from_static(b));
        outbox.send(frame(b"1")).unwrap(); // written
        outbox.send(frame(b"2")).unwrap(); // the socket is busy: queued
        outbox.send(frame(b"3")).unwrap(); // behind 2: queued, not written
        assert_eq!(*took.lock().unwrap(), [frame(b"1")]);
        assert!(matches!(recv(&mut inbox).await, Some(Outgoing::Frame(f)) if f == frame(b"2")));
        assert!(matches!(recv(&mut inbox).await, Some(Outgoing::Frame(f)) if f == frame(b"3")));
        // The writer has taken 3 but not written it yet: 4 waits behind it.
        outbox.send(frame(b"4")).unwrap();
        assert_eq!(took.lock().unwrap().len(), 1);
        assert!(matches!(recv(&mut inbox).await, Some(Outgoing::Frame(f)) if f == frame(b"4")));
        inbox.sent();
        outbox.send(frame(b"5")).unwrap(); // written (the third take)
        outbox.send(frame(b"6")).unwrap(); // written in part: the writer must finish it
        assert_eq!(
            *took.lock().unwrap(),
            [frame(b"1"), frame(b"5"), frame(b"6")]
        );
        assert!(matches!(recv(&mut inbox).await, Some(Outgoing::Flush)));
        outbox.send(frame(b"7")).unwrap(); // behind the flush
        assert_eq!(took.lock().unwrap().len(), 3);
        inbox.sent();
        assert!(matches!(recv(&mut inbox).await, Some(Outgoing::Frame(f)) if f == frame(b"7")));
    }
}
