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

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

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
    io: Io,
    reader: Reader,
    writer: Writer,
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
    /// A fragmented message's frames so far.
    message: Option<Fragmented>,
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
        WebSocket {
            io,
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
            writer: Writer {
                head: [0; frame::MAX_SERVER_HEADER],
                head_len: 0,
                payload: Bytes::new(),
                written: 0,
                reply: None,
                closed: false,
            },
        }
    }

    /// The next message; `None` once the connection has ended (after a Close, too).
    /// Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Sends one message, after whatever an earlier, interrupted `send` left unwritten.
    /// Cancel-safe: a frame begun is finished by the next call.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.writer.poll_write(&mut self.io, cx)).await?;
        if self.writer.closed {
            return Err(Error::Closed);
        }
        let (opcode, payload) = match message {
            Message::Text(text) => (Opcode::Text, text),
            Message::Binary(data) => (Opcode::Binary, data),
            Message::Ping(data) => (Opcode::Ping, data),
            Message::Pong(data) => (Opcode::Pong, data),
            Message::Close(close) => (Opcode::Close, close_payload(close)),
        };
        self.writer.start(opcode, payload);
        poll_fn(|cx| self.writer.poll_write(&mut self.io, cx)).await?;
        Ok(())
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.writer.reply.is_some() {
            // Best effort: an error here shows again on the next send.
            let _ = self.writer.poll_write(&mut self.io, cx);
        }
        loop {
            if self.reader.ended {
                return Poll::Ready(None);
            }
            let header = match self.reader.frame {
                Some(header) => header,
                None => match ready!(self.poll_header(cx)) {
                    Ok(Some(header)) => header,
                    Ok(None) => return Poll::Ready(None),
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
            };
            match ready!(self.poll_payload(cx, header.len as usize)) {
                Ok(true) => {}
                Ok(false) => return Poll::Ready(None),
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
            self.reader.frame = None;
            let mut payload = std::mem::take(&mut self.reader.payload);
            frame::unmask(&mut payload, header.mask, 0);
            if let Some(message) = self.reader.take(header, payload, &mut self.writer) {
                return Poll::Ready(Some(message));
            }
        }
    }

    /// Reads the next frame's header; `None` at the end of the input.
    fn poll_header(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Header>, Error>> {
        let reader = &mut self.reader;
        loop {
            let needs = match frame::parse(&reader.head[..reader.head_len])? {
                Parsed::Header(header, _) => {
                    reader.head_len = 0;
                    let so_far = reader.message.as_ref().map_or(0, |m| m.data.len());
                    if header.len > (reader.max_message - so_far) as u64 {
                        return Poll::Ready(Err(Error::TooLarge(reader.max_message)));
                    }
                    reader.frame = Some(header);
                    reader.payload = BytesMut::zeroed(header.len as usize);
                    reader.filled = 0;
                    return Poll::Ready(Ok(Some(header)));
                }
                Parsed::Needs(needs) => needs,
            };
            let unread = &mut reader.head[reader.head_len..needs];
            match ready!(poll_read(&mut self.io, cx, unread, &mut reader.ended))? {
                0 => return Poll::Ready(Ok(None)),
                n => reader.head_len += n,
            }
        }
    }

    /// Reads the current frame's payload; `false` if the input ends first.
    fn poll_payload(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<bool>> {
        let reader = &mut self.reader;
        while reader.filled < len {
            let unread = &mut reader.payload[reader.filled..];
            match ready!(poll_read(&mut self.io, cx, unread, &mut reader.ended))? {
                0 => return Poll::Ready(Ok(false)),
                n => reader.filled += n,
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
                    message
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
            self.message = Some(message);
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
    /// Starts writing a frame (the last one was written in full).
    fn start(&mut self, opcode: Opcode, payload: Bytes) {
        self.head_len = frame::encode(opcode, payload.len(), &mut self.head);
        self.payload = payload;
        self.written = 0;
        self.closed |= opcode == Opcode::Close;
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
            self.payload = Bytes::new();
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
