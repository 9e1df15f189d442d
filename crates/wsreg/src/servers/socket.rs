//! Accepting and closing WebSockets the same way in every wsreg server.
//!
//! - [`upgrade`] applies the per-message size limit (to whole messages and to single
//!   frames, so an oversized frame is refused from its header, before its payload is
//!   buffered) and holds the server's [`Shutdown`] for the connection's lifetime.
//! - [`close_going_away`] is the shutdown close: 1001, then a short wait for the client's
//!   Close so it sees a clean handshake rather than a reset.
//! - [`close_too_large`] is the answer to an oversized message: 1009. The reader has
//!   stopped mid-message by then, so the connection lingers briefly before it is dropped:
//!   dropping a socket with unread input resets it at once, and a reset can destroy the
//!   Close frame before the client has read it.
//! - A plain GET without the upgrade headers gets a JSON 426, like every other error.
//! - Each connection reads through an 8 KiB buffer, not tungstenite's default 128 KiB:
//!   the default cost 135 KiB of RSS per idle connection against Node's 8 KiB. The buffer
//!   is most of what an idle connection costs now (heaptrack of `wsreg echo` holding
//!   2,000 idle connections, live heap per connection: 8 KiB this buffer, zero-filled at
//!   the first read; 1.5 KiB the connection's task; 0.5 KiB tokio's I/O registration,
//!   tokio-tungstenite's waker `Arc`s and hyper's `Upgraded`). It is not smaller because
//!   tungstenite reads at most this much per `read`: 4 KiB cost 9 % more CPU per 64 KiB
//!   message and 2 KiB 54 % (docs/benchmarks.md, "What the profiles say").
//! - The connection's future runs in a task spawned for it, not inside axum's upgrade
//!   task: that task held the socket and the handler's future one inside the other
//!   (2.9 KiB per connection against 1.5 KiB now).

use std::future::Future;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::shutdown::Shutdown;

/// How long a closing server waits for the client's Close (or lets a refused one read it).
pub const CLOSE_WAIT: Duration = Duration::from_millis(250);

/// The read buffer of each connection (see the module's comment).
const READ_BUFFER: usize = 8 * 1024;

/// The default per-message limit: 1 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;

/// Completes a WebSocket upgrade: messages above `max_message` bytes are refused with
/// 1009, and `handle` runs with the socket while the server's shutdown waits for it.
/// A request that is not an upgrade gets 426 with a JSON error.
pub fn upgrade<F, Fut>(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    max_message: usize,
    shutdown: Shutdown,
    handle: F,
) -> Response
where
    F: FnOnce(WebSocket, Shutdown) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return not_an_upgrade(rejection),
    };
    let hold = shutdown.hold();
    ws.max_message_size(max_message)
        .max_frame_size(max_message)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| {
            // The connection runs in a task of its own, and axum's upgrade task ends
            // here (see the module's comment).
            tokio::spawn(async move {
                let _hold = hold;
                handle(socket, shutdown).await
            });
            std::future::ready(())
        })
}

fn not_an_upgrade(rejection: WebSocketUpgradeRejection) -> Response {
    let status = match rejection.status() {
        StatusCode::BAD_REQUEST => StatusCode::UPGRADE_REQUIRED,
        other => other,
    };
    let error = format!("this is a WebSocket endpoint: {}", rejection.body_text());
    (status, axum::Json(serde_json::json!({ "error": error }))).into_response()
}

/// The variant of the WebSocket protocol error under a receive error (`Capacity`, `Utf8`,
/// `Io`, …), if there is one.
///
/// axum's error is opaque: its `source()` is the protocol crate's (tungstenite's) error,
/// which only a downcast to that exact type could match, and a downcast needs the same
/// version of the crate as axum's own, as a second dependency moving in lockstep with
/// axum (with another version the downcast compiles and silently never matches). The
/// variant's name, read from the error's derived `Debug`, is that crate's public API
/// under any version; tests/echo.rs (1009) and tests/yjs_server.rs (1007, 1009) pin both
/// classes through real sockets. Called only once a connection has failed.
fn protocol_error(err: &axum::Error) -> Option<String> {
    use std::error::Error as _;
    let debug = format!("{:?}", err.source()?);
    let end = debug
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(debug.len());
    Some(debug[..end].to_owned())
}

/// Whether a receive error is a message (or frame) over the limit.
pub fn is_too_large(err: &axum::Error) -> bool {
    protocol_error(err).as_deref() == Some("Capacity")
}

/// Whether a receive error is a text message that is not valid UTF-8 (close with 1007).
pub fn is_invalid_utf8(err: &axum::Error) -> bool {
    protocol_error(err).as_deref() == Some("Utf8")
}

/// Closes with 1001 "going away" and waits up to [`CLOSE_WAIT`] for the client's Close.
pub async fn close_going_away(mut socket: WebSocket) {
    if send_close(&mut socket, close_code::AWAY, "server shutting down".into())
        .await
        .is_ok()
    {
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }
}

/// Closes with 1009 "message too big" after a receive error [`is_too_large`] accepted.
pub async fn close_too_large(socket: WebSocket, max_message: usize) {
    let reason = format!("message too big: the limit is {max_message} bytes");
    close_refused(socket, close_code::SIZE, reason).await
}

/// Closes with `code` after a message the server refuses (too big, malformed, of the
/// wrong type). The reader may have stopped mid-message, so the connection lingers
/// [`CLOSE_WAIT`] before it is dropped, for the client to read the Close.
pub async fn close_refused(mut socket: WebSocket, code: u16, reason: String) {
    if send_close(&mut socket, code, reason).await.is_ok() {
        tokio::time::sleep(CLOSE_WAIT).await;
    }
}

async fn send_close(socket: &mut WebSocket, code: u16, reason: String) -> Result<(), axum::Error> {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    socket.send(Message::Close(Some(frame))).await
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::CapacityError;

    use super::{is_invalid_utf8, is_too_large};

    #[test]
    fn receive_errors_are_told_apart() {
        let too_large = axum::Error::new(Error::Capacity(CapacityError::MessageTooLong {
            size: 2,
            max_size: 1,
        }));
        let utf8 = axum::Error::new(Error::Utf8("invalid utf-8".into()));
        let io = axum::Error::new(Error::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert!(is_too_large(&too_large) && !is_invalid_utf8(&too_large));
        assert!(is_invalid_utf8(&utf8) && !is_too_large(&utf8));
        assert!(!is_too_large(&io) && !is_invalid_utf8(&io));
    }
}
