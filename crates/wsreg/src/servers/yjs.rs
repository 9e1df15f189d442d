//! The Yjs sync server (`wsreg yjs`): a y-websocket compatible endpoint at every path,
//! one document per path ([`crate::yjs`] holds the protocol, the rooms and the storage).
//!
//! Each connection is one task that sends what its room queues for it and hands each
//! binary frame it receives to the room. Decisions that are not obvious:
//!
//! - A frame for a connection whose queue is empty and whose socket is idle is written
//!   by the room's caller, straight into the socket ([`Sender`], [`Direct`]), and the
//!   connection's task is not woken: forwarding an update to 50 readers is then 50
//!   writes on one task instead of 50 tasks woken (and the runtime's other worker
//!   woken to steal them), which cost about as much CPU as the writes themselves
//!   (bench/yjs: 330–360 µs an update before, 190–240 µs after, the floor 140–170 µs).
//! - Frames are handled on the task itself, not on a blocking thread: handling never
//!   waits for the disk (an update is appended with one `write`; the `fdatasync` is the
//!   room's group commit). Handing every frame to another thread cost more CPU than the
//!   Yjs work itself. Frames over [`INLINE_FRAME`] bytes, whose decoding can take
//!   milliseconds, run under `block_in_place` so the worker's other tasks move away.
//! - Group commit: after a frame whose effects wait for the log's `fdatasync`, the task
//!   first handles every frame that has already arrived (up to [`COMMIT_BATCH`]), then
//!   commits on a blocking thread, so a burst from one client shares one `fdatasync`,
//!   and commits of several connections share one too (see [`crate::yjs::room`]).
//! - Liveness: the server pings every `ping_interval`; a connection that has sent
//!   nothing (not even the pong) by the next ping, or whose socket accepts nothing for
//!   two ticks of the ping interval, is frozen and is dropped; leaving the room removes
//!   its awareness. The ticks come from one timer for the whole server ([`Ticker`]),
//!   through each connection's queue, as does the shutdown: a timer and a shutdown
//!   waiter per connection cost each one 128 bytes of `Sleep` and 120 of its task. The
//!   timer sleeps while no room is open.
//! - A connection that falls more than `max_outbox` bytes behind is closed with 1013;
//!   the room tells its task at once, even in the middle of a blocked socket write.
//! - A connection's task is most of its memory, and a task is as large as its largest
//!   state: joining, leaving and closing are boxed (inline they made every task 2.9 KiB,
//!   for states that run once), `connection` is an `async` block, not an `async fn`
//!   (which kept its arguments twice), a blocked send counts the server's ticks instead
//!   of holding a timer, and a send, a commit and a refusal are boxed (they were the
//!   serving loop's largest states, and frames mostly go straight into the socket). The
//!   loop waits with one `poll_fn` over `poll_*` methods, not `select!` over futures
//!   (their `Notify` waiters were 250 bytes), and decides each step before it awaits
//!   one; what follows the serving (leaving, closing) is one boxed future, since a
//!   local alive across two awaits keeps its place in every state. The connection's
//!   state is 360 bytes, 120 of them the serving loop's, and its task 512 bytes (tokio
//!   aligns a task to 128 bytes; it was 1,280 in the first stop of 2026-12-03;
//!   measured with `-Zprint-type-sizes`).
//!
//! A frame the room refuses closes this connection with the error's close code; text
//! frames close it with 1003 (1007 when they are not even UTF-8). Other connections and
//! rooms carry on, unless the room's storage failed, which closes every connection of
//! that room (1011).

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::socket::{self, Message, Sender, Upgrade, WebSocket};
use crate::shutdown::{Hold, Shutdown};
use crate::yjs::message::close_code;
use crate::yjs::outbox::{
    self, Binary, Direct, Inbox, Outbox, Outgoing, Overflow, Signal, Written,
};
use crate::yjs::room::{ConnId, Handled, Room};
use crate::yjs::{ProtocolError, Rooms, Ticker, room_name};

/// The kind Yjs servers register as.
pub const KIND: &str = "yjs";

/// The default per-message limit: 8 MiB (a first sync of a large document is one message).
pub const DEFAULT_MAX_MESSAGE: usize = 8 << 20;

/// The default per-document limit: 64 MiB of encoded state.
pub const DEFAULT_MAX_DOC: usize = 64 << 20;

/// The default interval between the server's pings.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);

/// Frames up to this size are handled right on the connection's task.
pub const INLINE_FRAME: usize = 64 << 10;

/// The most frames handled before their effects are committed.
pub const COMMIT_BATCH: usize = 256;

/// How each connection is served.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// The largest message accepted, in bytes.
    pub max_message: usize,
    /// The most bytes queued for one connection before it is closed (1013).
    pub max_outbox: usize,
    /// How often the server pings each connection.
    pub ping_interval: Duration,
}

/// The Yjs server's routes: a WebSocket upgrade at every path, the path naming the room.
pub fn router(rooms: Rooms, config: Config) -> Router {
    Router::new().fallback(accept).with_state(Arc::new(Server {
        rooms: Arc::new(rooms),
        config,
        ticker: OnceLock::new(),
    }))
}

/// What every connection of a server shares: one pointer in each connection's task.
struct Server {
    rooms: Arc<Rooms>,
    config: Config,
    /// Started by the first connection (the router is built before the runtime).
    ticker: OnceLock<Ticker>,
}

async fn accept(
    State(server): State<Arc<Server>>,
    OriginalUri(uri): OriginalUri,
    shutdown: Shutdown,
    ws: Upgrade,
) -> Response {
    let name = match room_name::from_path(uri.path()) {
        Ok(name) => name,
        Err(e) => {
            let body = axum::Json(serde_json::json!({ "error": e.to_string() }));
            return (StatusCode::URI_TOO_LONG, body).into_response();
        }
    };
    let ticker = || {
        Ticker::start(
            server.rooms.clone(),
            server.config.ping_interval,
            shutdown.clone(),
        )
    };
    server.ticker.get_or_init(ticker);
    let max_message = server.config.max_message;
    socket::upgrade(ws, max_message, shutdown, move |socket, shutdown| {
        connection(socket, shutdown, server, name)
    })
}

/// How a connection ends.
enum End {
    /// The client closed or vanished.
    Gone,
    /// The client stopped answering: dropped without a closing handshake.
    Frozen,
    /// The server is shutting down.
    Shutdown,
    /// A message over the limit.
    TooLarge,
    /// Close with this code and reason.
    Refused(u16, String),
}

/// What woke a connection's serving loop.
enum Next {
    Signal(Signal),
    Outgoing(Option<Outgoing>),
    Received(Option<Result<Message, socket::Error>>),
    Commit,
}

/// A step of the serving loop, decided before anything is awaited.
enum Step<'a> {
    Done(Result<(), End>),
    Await(Pin<Box<dyn Future<Output = Result<(), End>> + Send + 'a>>),
}

/// Serves one connection of room `name`. Not an `async fn`: one moves its arguments into
/// locals and keeps both (400 bytes more per connection, the socket twice); an `async`
/// block uses what it captured in place. The join is set up before it, so that the
/// block does not keep the room's name.
#[allow(clippy::manual_async_fn)]
fn connection(
    mut socket: WebSocket,
    hold: Hold,
    server: Arc<Server>,
    name: String,
) -> impl Future<Output = ()> + Send {
    let id = ConnId::next();
    let direct: Box<dyn Direct> = Box::new(socket.sender());
    let (outbox, mut inbox) = outbox::outbox(server.config.max_outbox, Some(direct));
    let join = Box::pin(join(server.clone(), name, id, outbox));
    async move {
        // Each step in a block of its own, and what follows the serving in a boxed
        // future: a local alive across two awaits stays in the task's state for all of
        // its life, the serving too (the join's result, the end, the room's name).
        let room = match join.await {
            Ok(room) => room,
            Err(Some(error)) => {
                let (code, reason) = (error.close_code(), error.close_reason());
                return Box::pin(socket::close_refused(socket, code, reason)).await;
            }
            Err(None) => return,
        };
        tracing::debug!("connection joined room {:?}", room.name());
        let end = {
            let mut conn = Connection {
                socket: &mut socket,
                inbox: &mut inbox,
                server: &server,
                room: &room,
                id,
            };
            conn.serve().await
        };
        Box::pin(finish(socket, inbox, server, room, id, end)).await;
        // The server's shutdown waits for this connection until here (its signal
        // comes through the inbox).
        drop(hold);
    }
}

/// Ends connection `id`: leaves the room first, so that the others hear at once that
/// its client's awareness is gone, then closes the socket as `end` says.
async fn finish(
    socket: WebSocket,
    inbox: Inbox,
    server: Arc<Server>,
    room: Arc<Room>,
    id: ConnId,
    end: End,
) {
    let name = room.name().to_owned();
    let leaving = server.clone();
    let leave = off_the_workers(server.rooms.persistent(), move || {
        leaving.rooms.leave(room, id)
    });
    let unloaded = leave.await;
    drop(inbox);
    close(socket, end, &name, &server.config).await;
    // After the socket and its buffers are freed: they are most of a room's memory.
    if matches!(unloaded, Ok(true)) {
        super::shared_read::release_spares();
        crate::sys::release_free_memory();
    }
}

/// Joins connection `id` to room `name`, loading the room first if it is not open; when that
/// fails, says why in the log and gives the error to close the connection with, if any.
async fn join(
    server: Arc<Server>,
    name: String,
    id: ConnId,
    outbox: Outbox,
) -> Result<Arc<Room>, Option<ProtocolError>> {
    let io = server.rooms.persistent();
    let joining = {
        let name = name.clone();
        off_the_workers(io, move || server.rooms.join(&name, id, outbox))
    };
    match joining.await {
        Ok(Ok(room)) => Ok(room),
        Ok(Err(e)) => {
            tracing::error!("room {name:?}: cannot load it: {}", crate::error::Chain(&e));
            Err(Some(ProtocolError::Storage(format!(
                "cannot load the document: {e}"
            ))))
        }
        Err(e) => {
            tracing::error!("room {name:?}: loading failed: {}", crate::error::Chain(&e));
            Err(None)
        }
    }
}

/// Ends a connection as `end` says.
async fn close(socket: WebSocket, end: End, name: &str, config: &Config) {
    match end {
        End::Gone => drop(socket),
        End::Frozen => {
            tracing::debug!("room {name:?}: dropped a connection that stopped answering");
            drop(socket);
        }
        End::Shutdown => socket::close_going_away(socket).await,
        End::TooLarge => socket::close_too_large(socket, config.max_message).await,
        End::Refused(code, reason) => {
            tracing::debug!("room {name:?}: closing a connection with {code}: {reason}");
            // A client that stopped reading cannot take the Close either: it gets as long
            // as any blocked write does before the client counts as frozen.
            let close = socket::close_refused(socket, code, reason);
            let _ = tokio::time::timeout(2 * config.ping_interval, close).await;
        }
    }
}

/// Runs `f` on a blocking thread when it does disk I/O (`io`), else right here: a
/// blocking thread per join and leave of in-memory rooms cost CPU, and RSS for the
/// threads' stacks and allocator arenas that outlive a load.
async fn off_the_workers<T: Send + 'static>(
    io: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    match io {
        true => tokio::task::spawn_blocking(f).await,
        false => Ok(f()),
    }
}

/// The serving loop's own state.
struct Pump {
    /// Whether anything came from the client since the last tick of the server's ping
    /// interval (at a tick: a ping if so, else the client is frozen).
    heard: bool,
    /// Frames handled whose effects wait for the log's fdatasync.
    uncommitted: usize,
}

/// One connection of a room, while it is served.
struct Connection<'a> {
    socket: &'a mut WebSocket,
    inbox: &'a mut Inbox,
    server: &'a Arc<Server>,
    room: &'a Arc<Room>,
    id: ConnId,
}

impl Connection<'_> {
    /// Pumps frames both ways until the connection ends.
    async fn serve(&mut self) -> End {
        let mut pump = Pump {
            heard: true,
            uncommitted: 0,
        };
        loop {
            // Each step is decided before anything is awaited, in a block of its own, so
            // that only its boxed future, and not `next`, is kept across the await.
            let written;
            let step = {
                let decided = {
                    let next = poll_fn(|cx| self.poll_next(cx, &pump)).await;
                    written = matches!(
                        next,
                        Next::Outgoing(Some(Outgoing::Frame(_) | Outgoing::Flush))
                    );
                    self.decide(next, &mut pump)
                };
                match decided {
                    Step::Done(done) => done,
                    Step::Await(future) => future.await,
                }
            };
            if written {
                self.inbox.sent();
            }
            if let Err(end) = step {
                // What this connection's last frames stored must still reach the others
                // (they wait for a commit), even though this connection is ending.
                if pump.uncommitted > 0 {
                    let _ = self.commit(&mut pump.uncommitted).await;
                }
                return end;
            }
        }
    }

    /// One poll of everything, in this order, instead of `select!`, whose futures (a
    /// `Notified` each for the queue and the overflow) made the task 250 bytes larger.
    fn poll_next(&mut self, cx: &mut Context<'_>, pump: &Pump) -> Poll<Next> {
        if let Poll::Ready(signal) = self.inbox.poll_signal(cx) {
            return Poll::Ready(Next::Signal(signal));
        }
        if let Poll::Ready(outgoing) = self.inbox.poll_recv(cx) {
            return Poll::Ready(Next::Outgoing(outgoing));
        }
        if let Poll::Ready(received) = self.socket.poll_recv(cx) {
            return Poll::Ready(Next::Received(received));
        }
        // Nothing else to do right now: commit what the frames before stored.
        match pump.uncommitted > 0 {
            true => Poll::Ready(Next::Commit),
            false => Poll::Pending,
        }
    }

    /// What to do about `next`.
    fn decide<'a>(&'a mut self, next: Next, pump: &'a mut Pump) -> Step<'a> {
        match next {
            Next::Signal(Signal::Shutdown) => Step::Done(Err(End::Shutdown)),
            Next::Signal(Signal::Overflowed(overflow)) => Step::Done(Err(dropped(overflow))),
            Next::Signal(Signal::Tick) => match std::mem::replace(&mut pump.heard, false) {
                true => Step::Await(self.send(Out::Ping)),
                false => Step::Done(Err(End::Frozen)),
            },
            Next::Outgoing(Some(Outgoing::Frame(frame))) => {
                Step::Await(self.send(Out::Frame(frame)))
            }
            Next::Outgoing(Some(Outgoing::Flush)) => Step::Await(self.send(Out::Flush)),
            Next::Outgoing(Some(Outgoing::Close(error))) => Step::Done(Err(refused(&error))),
            Next::Outgoing(None) => Step::Done(Err(dropped(Overflow {
                limit: self.server.config.max_outbox,
            }))),
            Next::Received(received) => {
                pump.heard = true;
                match self.receive(received) {
                    Ok(Handled::Done) => Step::Done(Ok(())),
                    Ok(Handled::AwaitsCommit) => {
                        pump.uncommitted += 1;
                        match pump.uncommitted >= COMMIT_BATCH {
                            true => Step::Await(self.commit(&mut pump.uncommitted)),
                            false => Step::Done(Ok(())),
                        }
                    }
                    Err(error) => Step::Await(self.refuse(error)),
                }
            }
            Next::Commit => Step::Await(self.commit(&mut pump.uncommitted)),
        }
    }

    /// Handles what the socket delivered.
    fn receive(
        &self,
        received: Option<Result<Message, socket::Error>>,
    ) -> Result<Handled, Refusal> {
        let frame = match received {
            Some(Ok(Message::Binary(frame))) => frame,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                return Ok(Handled::Done);
            }
            None | Some(Ok(Message::Close(_))) => return Err(Refusal::End(End::Gone)),
            Some(Ok(Message::Text(_))) => return Err(Refusal::Protocol(ProtocolError::TextFrame)),
            Some(Err(socket::Error::TooLarge(_))) => return Err(Refusal::End(End::TooLarge)),
            Some(Err(socket::Error::InvalidUtf8)) => {
                let reason = "a text frame that is not UTF-8".into();
                return Err(Refusal::End(End::Refused(close_code::INVALID, reason)));
            }
            Some(Err(e)) => {
                tracing::debug!("connection ended: {e}");
                return Err(Refusal::End(End::Gone));
            }
        };
        let handled = match frame.len() <= INLINE_FRAME {
            true => self.room.handle(self.id, &frame),
            false => tokio::task::block_in_place(|| self.room.handle(self.id, &frame)),
        };
        handled.map_err(Refusal::Protocol)
    }

    /// Makes what the handled frames stored durable, which sends their effects.
    fn commit<'a>(
        &'a mut self,
        uncommitted: &'a mut usize,
    ) -> Pin<Box<impl Future<Output = Result<(), End>> + 'a>> {
        Box::pin(async move {
            *uncommitted = 0;
            let room = self.room.clone();
            match tokio::task::spawn_blocking(move || room.commit()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => self.refuse(Refusal::Protocol(error)).await,
                Err(e) => {
                    tracing::error!(
                        "room {:?}: committing failed: {}",
                        self.room.name(),
                        crate::error::Chain(&e)
                    );
                    Err(End::Refused(close_code::INTERNAL, "internal error".into()))
                }
            }
        })
    }

    /// Ends the connection; a storage failure discards the whole room first.
    fn refuse(&mut self, refusal: Refusal) -> Pin<Box<impl Future<Output = Result<(), End>> + '_>> {
        Box::pin(async move {
            let error = match refusal {
                Refusal::End(end) => return Err(end),
                Refusal::Protocol(error) => error,
            };
            if let ProtocolError::Storage(_) = error {
                let (server, room, e) = (self.server.clone(), self.room.clone(), error.clone());
                let _ = tokio::task::spawn_blocking(move || server.rooms.discard(&room, &e)).await;
            }
            Err(refused(&error))
        })
    }

    /// Sends one message (or the rest of a frame written directly); gives up when the
    /// room drops this connection meanwhile or the socket takes nothing for two ticks of
    /// `ping`, a whole interval at least (a client that stopped reading). Ticks rather
    /// than a timer of its own: a `Sleep` made the state of every connection's task 112
    /// bytes larger. A shutdown does not cut a send short (a slow client still gets the
    /// rest of its frame and then 1001); the server's grace period bounds it. Its future
    /// is boxed: it is the largest state of the serving loop and rarely alive (frames
    /// mostly go straight into the socket).
    fn send(&mut self, out: Out) -> Pin<Box<impl Future<Output = Result<(), End>> + '_>> {
        Box::pin(async move {
            let inbox = &*self.inbox;
            let socket = &mut *self.socket;
            let mut sending = pin!(async move {
                match out {
                    Out::Ping => socket.send(Message::Ping(Bytes::new())).await,
                    Out::Frame(binary) => socket.send_binary(binary).await,
                    Out::Flush => socket.flush().await,
                }
            });
            let mut ticks = 0;
            poll_fn(|cx| {
                if let Poll::Ready(sent) = sending.as_mut().poll(cx) {
                    return Poll::Ready(sent.map_err(|_| End::Gone));
                }
                match inbox.poll_signal(cx) {
                    Poll::Ready(Signal::Overflowed(overflow)) => {
                        Poll::Ready(Err(dropped(overflow)))
                    }
                    Poll::Ready(Signal::Tick) => {
                        ticks += 1;
                        match ticks {
                            2 => Poll::Ready(Err(End::Frozen)),
                            // The tick is taken and the waker registered: the next one wakes.
                            _ => Poll::Pending,
                        }
                    }
                    Poll::Ready(Signal::Shutdown) | Poll::Pending => Poll::Pending,
                }
            })
            .await
        })
    }
}

/// What [`Connection::send`] writes.
enum Out {
    Ping,
    Frame(Binary),
    /// The rest of a frame that the room began writing directly.
    Flush,
}

impl Direct for Sender {
    fn try_send(&self, frame: &Binary) -> Written {
        Sender::try_send(self, frame)
    }
}

/// Why handling a frame ends the connection.
enum Refusal {
    End(End),
    Protocol(ProtocolError),
}

fn dropped(overflow: Overflow) -> End {
    End::Refused(close_code::TRY_AGAIN_LATER, format!("dropped: {overflow}"))
}

fn refused(error: &ProtocolError) -> End {
    End::Refused(error.close_code(), error.close_reason())
}
