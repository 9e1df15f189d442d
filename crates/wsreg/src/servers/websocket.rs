//! The server's side of an accepted WebSocket: whole messages in, frames out.
//!
//! Why not tungstenite, which this replaced (issue 15): it keeps a read and a write
//! buffer per connection that grow to the largest frame the connection ever carried and
//! never shrink, and it copies every outgoing payload into the write buffer. A Yjs room
//! sends its whole document to each client that joins, so every connection held a
//! document-sized buffer for good: of 52 KiB per 10 KiB room in bench/yjs, 21 KiB were
//! those two buffers. Here an idle connection holds no buffer at all:
//!
//! - A frame's payload is read into an allocation of exactly its size, which becomes
//!   the message ([`Bytes`]); only a header's few bytes wait between reads. Input is
//!   read through [`SharedRead`], a buffer lent while a read lasts.
//! - A frame is written from its header (on the stack of the writer's state) and the
//!   payload [`Bytes`] itself, in one vectored write: a frame a room sends to all its
//!   peers is one allocation, never copied per peer.
//!
//! Both directions keep their state in the [`WebSocket`], not in a future, so `recv`
//! and `send` may be dropped at any `.await` (as in a `select!`) without losing or
//! mangling a frame: the next call carries on where the last one stopped. Pings are
//! answered and a Close is replied to by the socket itself, before its next frame.
//!
//! Binary data goes out either as one message's payload ([`Binary::Message`], its header
//! made as it is written) or as whole frames encoded beforehand ([`Binary::Frames`]): a
//! Yjs room that holds back broadcasts under load writes several messages to each peer
//! in one write, from one allocation that every peer shares.
//!
//! The connection and the frame being written sit behind a lock that a [`Sender`] shares,
//! so that another task can write a frame straight into an idle socket
//! ([`Sender::try_send`]) instead of waking the socket's own task to do it: a Yjs room
//! that forwards an update to 50 peers then makes 50 writes on the sender's task rather
//! than waking 50 tasks (and the other worker threads to steal them), which cost as much
//! CPU as the writes (bench/yjs, the floor row). The lock is only ever held for one
//! non-blocking poll, and a `Sender` that finds it taken writes nothing.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Bytes, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frame::{self, Header, HeaderError, MAX_CONTROL, MAX_HEADER, Opcode, Parsed};
use super::shared_read::SharedRead;

/// The connection under a WebSocket.
type Io = SharedRead<TokioIo<Upgraded>>;

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// A Close, with its code and reason if it has one.
    Close(Option<(u16, String)>),
}

/// Binary data to send (see the module's comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary {
    /// One binary message: its payload.
    Message(Bytes),
    /// Whole binary frames, encoded ([`frame::encode_binary`]).
    Frames(Bytes),
}

impl Binary {
    /// The bytes it holds.
    pub fn bytes(&self) -> &Bytes {
        match self {
            Binary::Message(bytes) | Binary::Frames(bytes) => bytes,
        }
    }
}

/// Why a connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("a message over the limit of {0} bytes")]
    TooLarge(usize),
    #[error("a text message or close reason that is not UTF-8")]
    InvalidUtf8,
    #[error("{0}")]
    Header(#[from] HeaderError),
    #[error("a continuation frame with no message to continue")]
    NothingToContinue,
    #[error("a new message before the last one's final frame")]
    Unfinished,
    #[error("a Close frame with a malformed or reserved code")]
    CloseCode,
    #[error("the connection is closed")]
    Closed,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An accepted WebSocket (see the module's comment).
pub struct WebSocket {
    shared: Arc<Mutex<Shared>>,
    reader: Reader,
}

/// What the socket's owner and its [`Sender`]s share.
struct Shared {
    io: Io,
    writer: Writer,
}

/// Writes whole binary frames into a socket whose owner is not writing (see the
/// module's comment). Holding one keeps the connection open.
#[derive(Clone)]
pub struct Sender(Arc<Mutex<Shared>>);

/// What [`Sender::try_send`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The whole frame.
    All,
    /// Part of it: the rest waits in the socket, and the owner's next `send` or `flush`
    /// writes it (before anything else).
    Part,
    /// Nothing: the owner is writing, or holds the socket, or the socket takes nothing.
    Nothing,
}

/// What has been read of the frame and the message under way.
struct Reader {
    max_message: usize,
    /// The current frame's header bytes, until it is complete.
    head: [u8; MAX_HEADER],
    head_len: usize,
    /// The current frame, once its header is read, and its payload so far.
    frame: Option<Header>,
    payload: BytesMut,
    filled: usize,
    /// A fragmented message's frames so far (boxed: rare, and every connection would
    /// carry its size).
    message: Option<Box<Fragmented>>,
    /// A Close was received, or the input ended: nothing more comes.
    ended: bool,
}

/// A message whose final frame has not come yet.
struct Fragmented {
    opcode: Opcode,
    data: BytesMut,
    /// For text: how much of `data` is known to be whole UTF-8 characters, so each
    /// fragment is checked once, as it arrives (an invalid one fails the connection
    /// before the rest is sent).
    valid: usize,
}

/// The frame being written, and a reply the reader asked for.
struct Writer {
    head: [u8; frame::MAX_SERVER_HEADER],
    head_len: usize,
    /// The frame's payload, or (with no `head`) whole frames encoded.
    payload: Bytes,
    /// Bytes of `head` and then `payload` written so far.
    written: usize,
    /// A pong or a Close reply, written after the current frame.
    reply: Option<(Opcode, Bytes)>,
    /// A Close was sent: nothing more goes out.
    closed: bool,
}

impl WebSocket {
    /// A WebSocket over an upgraded connection; messages over `max_message` bytes are
    /// refused.
    pub fn new(io: Io, max_message: usize) -> Self {
        let writer = Writer {
            head: [0; frame::MAX_SERVER_HEADER],
            head_len: 0,
            payload: Bytes::new(),
            written: 0,
            reply: None,
            closed: false,
        };
        WebSocket {
            shared: Arc::new(Mutex::new(Shared { io, writer })),
            reader: Reader {
                max_message,
                head: [0; MAX_HEADER],
                head_len: 0,
                frame: None,
                payload: BytesMut::new(),
                filled: 0,
                message: None,
                ended: false,
            },
        }
    }

    /// A handle that writes frames into this socket while its owner is not writing.
    pub fn sender(&self) -> Sender {
        Sender(self.shared.clone())
    }

    /// The next message; `None` once the connection has ended (after a Close, too).
    /// Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`WebSocket::recv`] as a poll, for a task that waits on other things as well.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.reader.poll_recv(&mut lock(&self.shared), cx)
    }

    /// Sends one message, after whatever an earlier, interrupted `send` (or a
    /// [`Sender`]) left unwritten. Cancel-safe: a frame begun is finished by the next
    /// call.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        let (opcode, payload) = match message {
            Message::Text(text) => (Opcode::Text, text),
            Message::Binary(data) => (Opcode::Binary, data),
            Message::Ping(data) => (Opcode::Ping, data),
            Message::Pong(data) => (Opcode::Pong, data),
            Message::Close(close) => (Opcode::Close, close_payload(close)),
        };
        self.start(|writer| writer.start(opcode, payload)).await
    }

    /// Sends binary data as [`Sender::try_send`] would, but waits for the socket.
    /// Cancel-safe, as `send` is.
    pub async fn send_binary(&mut self, binary: Binary) -> Result<(), Error> {
        self.start(|writer| writer.start_binary(binary)).await
    }

    /// Finishes what is under way, then writes what `start` begins.
    async fn start(&mut self, start: impl FnOnce(&mut Writer)) -> Result<(), Error> {
        let mut start = Some(start);
        poll_fn(|cx| {
            let mut shared = lock(&self.shared);
            let Shared { io, writer } = &mut *shared;
            loop {
                // The frame under way is finished first, in the same hold of the lock
                // as the next one is started: a Sender cannot slip one in between.
                ready!(writer.poll_write(io, cx))?;
                let Some(start) = start.take() else {
                    return Poll::Ready(Ok(()));
                };
                if writer.closed {
                    return Poll::Ready(Err(Error::Closed));
                }
                start(writer);
            }
        })
        .await
    }

    /// Writes what an interrupted `send` or a [`Sender`] left unwritten. Cancel-safe.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| {
            let mut shared = lock(&self.shared);
            let Shared { io, writer } = &mut *shared;
            writer.poll_write(io, cx).map_err(Error::from)
        })
        .await
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sender {
    /// Writes `binary` now, if the socket's owner is not writing
    /// (no frame or reply under way, no `send` waiting on the socket), and without
    /// waiting for anything. The caller keeps frames in order: it calls this only when
    /// nothing it queued for the owner to send is still waiting.
    pub fn try_send(&self, binary: &Binary) -> Written {
        let mut shared = match self.0.try_lock() {
            Ok(shared) => shared,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Written::Nothing,
        };
        let Shared { io, writer } = &mut *shared;
        if !writer.idle() {
            return Written::Nothing;
        }
        writer.start_binary(binary.clone());
        // No waker: the owner, not this caller, waits for the socket. A waker registered
        // here replaces none that matters, since the owner is not writing.
        match writer.poll_write(io, &mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => Written::All,
            Poll::Pending if writer.written == 0 => {
                writer.clear();
                Written::Nothing
            }
            // A failed write shows again to the owner, which then ends the connection.
            Poll::Pending | Poll::Ready(Err(_)) => Written::Part,
        }
    }
}

impl Reader {
    fn poll_recv(
        &mut self,
        shared: &mut Shared,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        let Shared { io, writer } = shared;
        if writer.reply.is_some() {
            // Best effort: an error here shows again on the next send.
            let _ = writer.poll_write(io, cx);
        }
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let header = match self.frame {
                Some(header) => header,
                None => match ready!(self.poll_header(io, cx)) {
                    Ok(Some(header)) => header,
                    Ok(None) => return Poll::Ready(None),
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
            };
            match ready!(self.poll_payload(io, cx, header.len as usize)) {
                Ok(true) => {}
                Ok(false) => return Poll::Ready(None),
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
            self.frame = None;
            let mut payload = std::mem::take(&mut self.payload);
            frame::unmask(&mut payload, header.mask, 0);
            if let Some(message) = self.take(header, payload, writer) {
                return Poll::Ready(Some(message));
            }
        }
    }

    /// Reads the next frame's header; `None` at the end of the input.
    fn poll_header(
        &mut self,
        io: &mut Io,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Header>, Error>> {
        loop {
            let needs = match frame::parse(&self.head[..self.head_len])? {
                Parsed::Header(header, _) => {
                    self.head_len = 0;
                    let so_far = self.message.as_ref().map_or(0, |m| m.data.len());
                    if header.len > (self.max_message - so_far) as u64 {
                        return Poll::Ready(Err(Error::TooLarge(self.max_message)));
                    }
                    self.frame = Some(header);
                    self.payload = BytesMut::zeroed(header.len as usize);
                    self.filled = 0;
                    return Poll::Ready(Ok(Some(header)));
                }
                Parsed::Needs(needs) => needs,
            };
            let unread = &mut self.head[self.head_len..needs];
            match ready!(poll_read(io, cx, unread, &mut self.ended))? {
                0 => return Poll::Ready(Ok(None)),
                n => self.head_len += n,
            }
        }
    }

    /// Reads the current frame's payload; `false` if the input ends first.
    fn poll_payload(
        &mut self,
        io: &mut Io,
        cx: &mut Context<'_>,
        len: usize,
    ) -> Poll<io::Result<bool>> {
        while self.filled < len {
            let unread = &mut self.payload[self.filled..];
            match ready!(poll_read(io, cx, unread, &mut self.ended))? {
                0 => return Poll::Ready(Ok(false)),
                n => self.filled += n,
            }
        }
        Poll::Ready(Ok(true))
    }
}

/// Reads into `buf`; 0 bytes, the end of the input, sets `ended`.
fn poll_read(
    io: &mut Io,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    ended: &mut bool,
) -> Poll<io::Result<usize>> {
    let mut buf = ReadBuf::new(buf);
    ready!(Pin::new(io).poll_read(cx, &mut buf))?;
    let n = buf.filled().len();
    *ended |= n == 0;
    Poll::Ready(Ok(n))
}

impl Reader {
    /// Takes a whole frame: a message when it ends one (or is a control frame).
    fn take(
        &mut self,
        header: Header,
        payload: BytesMut,
        writer: &mut Writer,
    ) -> Option<Result<Message, Error>> {
        let mut message = match header.opcode {
            Opcode::Ping => {
                let payload = payload.freeze();
                writer.reply_with(Opcode::Pong, payload.clone());
                return Some(Ok(Message::Ping(payload)));
            }
            Opcode::Pong => return Some(Ok(Message::Pong(payload.freeze()))),
            Opcode::Close => {
                self.ended = true;
                let close = parse_close(&payload);
                let echo = match &close {
                    Ok(Some((code, _))) => close_payload(Some((*code, String::new()))),
                    _ => Bytes::new(),
                };
                writer.reply_with(Opcode::Close, echo);
                return Some(close.map(Message::Close));
            }
            Opcode::Continuation => match self.message.take() {
                None => return Some(Err(Error::NothingToContinue)),
                Some(mut message) => {
                    message.data.extend_from_slice(&payload);
                    *message
                }
            },
            opcode @ (Opcode::Text | Opcode::Binary) => match self.message {
                Some(_) => return Some(Err(Error::Unfinished)),
                None => Fragmented {
                    opcode,
                    data: payload,
                    valid: 0,
                },
            },
        };
        if message.opcode == Opcode::Text {
            match std::str::from_utf8(&message.data[message.valid..]) {
                Ok(_) => message.valid = message.data.len(),
                // Only the last character may be cut, and only before the final frame.
                Err(e) if e.error_len().is_none() && !header.fin => {
                    message.valid += e.valid_up_to()
                }
                Err(_) => return Some(Err(Error::InvalidUtf8)),
            }
        }
        if !header.fin {
            self.message = Some(Box::new(message));
            return None;
        }
        let whole = message.data.freeze();
        Some(Ok(match message.opcode {
            Opcode::Text => Message::Text(whole),
            _ => Message::Binary(whole),
        }))
    }
}

impl Writer {
    /// Whether nothing is being written or waits to be (and the socket may still send).
    fn idle(&self) -> bool {
        self.head_len == 0 && self.payload.is_empty() && self.reply.is_none() && !self.closed
    }

    /// Forgets a frame started and not written at all.
    fn clear(&mut self) {
        self.head_len = 0;
        self.payload = Bytes::new();
        self.written = 0;
    }

    /// Starts writing a frame (the last one was written in full).
    fn start(&mut self, opcode: Opcode, payload: Bytes) {
        self.head_len = frame::encode(opcode, payload.len(), &mut self.head);
        self.payload = payload;
        self.written = 0;
        self.closed |= opcode == Opcode::Close;
    }

    /// Starts writing binary data (the last frame was written in full).
    fn start_binary(&mut self, binary: Binary) {
        match binary {
            Binary::Message(payload) => self.start(Opcode::Binary, payload),
            Binary::Frames(frames) => {
                self.clear();
                self.payload = frames;
            }
        }
    }

    /// Queues a reply to a ping or a Close, written before the next frame. A newer pong
    /// replaces one not yet sent; nothing replaces a Close reply.
    fn reply_with(&mut self, opcode: Opcode, payload: Bytes) {
        if !matches!(self.reply, Some((Opcode::Close, _))) {
            self.reply = Some((opcode, payload));
        }
    }

    /// Writes the rest of the current frame, then the queued reply.
    fn poll_write(&mut self, io: &mut Io, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            while self.written < self.head_len + self.payload.len() {
                let (head, payload) = match self.written < self.head_len {
                    true => (&self.head[self.written..self.head_len], &self.payload[..]),
                    false => (&[][..], &self.payload[self.written - self.head_len..]),
                };
                let bufs = [io::IoSlice::new(head), io::IoSlice::new(payload)];
                let n = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &bufs))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.written += n;
            }
            self.clear();
            match self.reply.take() {
                Some(_) if self.closed => {}
                Some((opcode, payload)) => self.start(opcode, payload),
                None => return Pin::new(&mut *io).poll_flush(cx),
            }
        }
    }
}

/// A Close frame's payload: the code, then the reason cut to fit 125 bytes.
fn close_payload(close: Option<(u16, String)>) -> Bytes {
    let Some((code, reason)) = close else {
        return Bytes::new();
    };
    let mut end = reason.len().min(MAX_CONTROL - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload.into()
}

/// A received Close's code and reason (RFC 6455, 5.5.1 and 7.4).
fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, Error> {
    let (code, reason) = match payload {
        [] => return Ok(None),
        [a, b, reason @ ..] => (u16::from_be_bytes([*a, *b]), reason),
        [_] => return Err(Error::CloseCode),
    };
    let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !sendable {
        return Err(Error::CloseCode);
    }
    let reason = std::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
    Ok(Some((code, reason.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payloads_keep_whole_characters_within_125_bytes() {
        let reason = "é".repeat(100);
        let payload = close_payload(Some((1013, reason)));
        assert_eq!(payload.len(), 2 + 122);
        assert_eq!(&payload[..2], &1013u16.to_be_bytes());
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        assert!(close_payload(None).is_empty());
    }

    #[test]
    fn close_codes_are_checked() {
        assert_eq!(parse_close(b"").unwrap(), None);
        assert_eq!(
            parse_close(b"\x03\xe8bye").unwrap(),
            Some((1000, "bye".into()))
        );
        assert!(matches!(parse_close(b"\x03"), Err(Error::CloseCode)));
        assert!(matches!(parse_close(b"\x03\xed"), Err(Error::CloseCode)));
        assert!(matches!(
            parse_close(b"\x03\xe8\xff"),
            Err(Error::InvalidUtf8)
        ));
    }
}
