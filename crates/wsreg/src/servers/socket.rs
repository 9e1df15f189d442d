//! Accepting and closing WebSockets the same way in every wsreg server.
//!
//! - [`Upgrade`] checks an upgrade request (RFC 6455, 4.2.1); a request that is not one
//!   gets a JSON 426 (405 for a method other than GET), like every other error.
//! - [`upgrade`] applies the per-message size limit (to whole messages and to single
//!   frames, so an oversized frame is refused from its header, before its payload is
//!   buffered) and runs the connection with a [`Hold`] of the server's [`Shutdown`].
//! - [`close_going_away`] is the shutdown close: 1001, then a short wait for the client's
//!   Close so it sees a clean handshake rather than a reset.
//! - [`close_too_large`] is the answer to an oversized message: 1009. The reader has
//!   stopped mid-message by then, so the connection lingers briefly before it is dropped:
//!   dropping a socket with unread input resets it at once, and a reset can destroy the
//!   Close frame before the client has read it.
//!
//! Why the upgrade is done here and not by axum's `WebSocketUpgrade`: axum builds a
//! tungstenite WebSocket on the bare upgraded connection, which owns read and write
//! buffers per connection that grow to its largest frame and zero-fills the read one
//! before every `read`. Here the connection reads through [`SharedRead`], a buffer lent
//! by the worker thread, and frames are read and written by [`WebSocket`], which holds
//! no buffer while idle (its module says why tungstenite is not used). Measured
//! (bench/notes.md, issue 16; docs/benchmarks.md, §1b): an idle connection cost 10.2 KiB
//! with tungstenite reading an 8 KiB buffer of its own, and 3.5 KiB with a 1 KiB one.
//! Each connection runs in a task of its own, which ends with it.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::OptionFuture;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::shared_read::SharedRead;
pub use super::websocket::{Error, Message, Sender, WebSocket};
use crate::shutdown::{Hold, Shutdown};

/// How long a closing server waits for the client's Close (or lets a refused one read it).
pub const CLOSE_WAIT: Duration = Duration::from_millis(250);

/// Close codes: going away (1001), message too big (1009).
const GOING_AWAY: u16 = 1001;
const TOO_BIG: u16 = 1009;

/// The default per-message limit: 1 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;

/// A checked request to upgrade to a WebSocket.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket upgrade; answered with a JSON error.
#[derive(Debug, thiserror::Error)]
pub enum NotAnUpgrade {
    /// Upgrades are GET requests.
    #[error("the method must be GET")]
    Method,
    /// A header the upgrade needs is missing or has another value.
    #[error("the {0} header must be {1:?}")]
    Header(HeaderName, &'static str),
    /// The header with the client's key is missing.
    #[error("the sec-websocket-key header is missing")]
    Key,
    /// The connection cannot be taken over (not HTTP/1.1).
    #[error("this connection cannot be upgraded")]
    NotUpgradable,
}

impl IntoResponse for NotAnUpgrade {
    fn into_response(self) -> Response {
        let status = match self {
            NotAnUpgrade::Method => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::UPGRADE_REQUIRED,
        };
        let error = format!("this is a WebSocket endpoint: {self}");
        (status, axum::Json(serde_json::json!({ "error": error }))).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotAnUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, NotAnUpgrade> {
        if parts.method != Method::GET {
            return Err(NotAnUpgrade::Method);
        }
        let headers = &parts.headers;
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(NotAnUpgrade::Header(header::CONNECTION, "upgrade"));
        }
        if !has_token(headers, header::UPGRADE, "websocket") {
            return Err(NotAnUpgrade::Header(header::UPGRADE, "websocket"));
        }
        if !has_token(headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(NotAnUpgrade::Header(header::SEC_WEBSOCKET_VERSION, "13"));
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(NotAnUpgrade::Key)?
            .clone();
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotAnUpgrade::NotUpgradable)?;
        Ok(Upgrade { key, on_upgrade })
    }
}

/// Whether a comma-separated header holds `token` (any case).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

impl Upgrade {
    /// Answers 101 and runs `handle` with the socket in a task of its own; messages above
    /// `max_message` bytes are refused ([`Error::TooLarge`]).
    pub fn accept<F, Fut>(self, max_message: usize, handle: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade { key, on_upgrade } = self;
        // Not an async block: one keeps `handle`'s captures for as long as the connection
        // lives (104 bytes each), where `then` drops them once `handle` is called. An
        // `OptionFuture` and not an `Either` with a ready future: it takes no room of its
        // own, where `Either` made every connection's task 128 bytes larger (task cells
        // are 128-byte aligned).
        tokio::spawn(on_upgrade.then(move |upgraded| {
            OptionFuture::from(match upgraded {
                Ok(upgraded) => {
                    let io = SharedRead::new(TokioIo::new(upgraded));
                    Some(handle(WebSocket::new(io, max_message)))
                }
                Err(e) => {
                    tracing::debug!("a WebSocket upgrade failed: {e}");
                    None
                }
            })
        }));
        let accept = derive_accept_key(key.as_bytes());
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(Body::empty())
            .expect("a 101 response from valid parts")
    }
}

/// Completes a WebSocket upgrade: messages above `max_message` bytes are refused with
/// 1009, and `handle` runs with the socket and a [`Hold`] of the server's shutdown,
/// which waits for it.
pub fn upgrade<F, Fut>(ws: Upgrade, max_message: usize, shutdown: Shutdown, handle: F) -> Response
where
    F: FnOnce(WebSocket, Hold) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let hold = shutdown.hold();
    ws.accept(max_message, move |socket| handle(socket, hold))
}

/// Closes with 1001 "going away" and waits up to [`CLOSE_WAIT`] for the client's Close.
pub async fn close_going_away(mut socket: WebSocket) {
    if send_close(&mut socket, GOING_AWAY, "server shutting down".into())
        .await
        .is_ok()
    {
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }
}

/// Closes with 1009 "message too big" after [`Error::TooLarge`].
pub async fn close_too_large(socket: WebSocket, max_message: usize) {
    let reason = format!("message too big: the limit is {max_message} bytes");
    close_refused(socket, TOO_BIG, reason).await
}

/// Closes with `code` after a message the server refuses (too big, malformed, of the
/// wrong type). The reader may have stopped mid-message, so the connection lingers
/// [`CLOSE_WAIT`] before it is dropped, for the client to read the Close.
pub async fn close_refused(mut socket: WebSocket, code: u16, reason: String) {
    if send_close(&mut socket, code, reason).await.is_ok() {
        tokio::time::sleep(CLOSE_WAIT).await;
    }
}

async fn send_close(socket: &mut WebSocket, code: u16, reason: String) -> Result<(), Error> {
    socket.send(Message::Close(Some((code, reason)))).await
}
