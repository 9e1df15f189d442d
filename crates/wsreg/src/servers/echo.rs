//! The echo server: every message comes back unchanged, text as text and binary as
//! binary, on any path. Pings are answered by the WebSocket layer itself; a message over
//! the limit closes the connection with 1009. The closing paths are boxed: every idle
//! connection's task is as large as its largest state, and they run once at most.

use std::pin::pin;

use axum::Router;
use axum::extract::State;
use axum::response::Response;

use super::socket::{self, Message, Upgrade, WebSocket};
use crate::shutdown::{Hold, Shutdown};

/// The kind echo servers register as.
pub const KIND: &str = "echo";

/// The echo server's routes: a WebSocket upgrade at every path.
pub fn router(max_message: usize) -> Router {
    Router::new().fallback(accept).with_state(max_message)
}

async fn accept(State(max_message): State<usize>, shutdown: Shutdown, ws: Upgrade) -> Response {
    socket::upgrade(ws, max_message, shutdown, move |socket, shutdown| {
        echo(socket, shutdown, max_message)
    })
}

async fn echo(mut socket: WebSocket, shutdown: Hold, max_message: usize) {
    // Waited for across the loop: each new wait would take the shutdown signal's lock,
    // which every connection shares, once per message.
    let mut requested = pin!(shutdown.requested());
    loop {
        let received = tokio::select! {
            received = socket.recv() => received,
            () = &mut requested => return Box::pin(socket::close_going_away(socket)).await,
        };
        let reply = match received {
            None => return,
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => message,
            // Pongs to pings and the reply to a Close are sent by the socket itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_))) => continue,
            Some(Err(socket::Error::TooLarge(_))) => {
                return Box::pin(socket::close_too_large(socket, max_message)).await;
            }
            Some(Err(e)) => {
                tracing::debug!("echo connection ended: {e}");
                return;
            }
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}
