//! The Yjs sync server (`wsreg yjs`): a y-websocket compatible endpoint at every path,
//! one document per path ([`crate::yjs`] holds the protocol, the rooms and the storage).
//!
//! Each connection is one task: it forwards what its room queues for it to the socket,
//! and hands each binary frame it receives to the room on a blocking thread (the room
//! may fsync). A frame is handled completely — stored, applied, forwarded — before the
//! next frame of the same connection is read. A frame the room refuses closes this
//! connection with the error's close code; text frames close it with 1003 (1007 when
//! they are not even UTF-8). Other connections and rooms carry on, unless the room's
//! storage failed, which closes every connection of that room (1011).

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::socket;
use crate::shutdown::Shutdown;
use crate::yjs::message::close_code;
use crate::yjs::room::{self, ConnId, Outgoing, Room};
use crate::yjs::{ProtocolError, Rooms, room_name};

/// The kind Yjs servers register as.
pub const KIND: &str = "yjs";

/// The default per-message limit: 8 MiB (a first sync of a large document is one message).
pub const DEFAULT_MAX_MESSAGE: usize = 8 << 20;

/// The default per-document limit: 64 MiB of encoded state.
pub const DEFAULT_MAX_DOC: usize = 64 << 20;

/// The Yjs server's routes: a WebSocket upgrade at every path, the path naming the room.
pub fn router(rooms: Arc<Rooms>, max_message: usize) -> Router {
    Router::new()
        .fallback(accept)
        .with_state((rooms, max_message))
}

async fn accept(
    State((rooms, max_message)): State<(Arc<Rooms>, usize)>,
    OriginalUri(uri): OriginalUri,
    shutdown: Shutdown,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let name = match room_name::from_path(uri.path()) {
        Ok(name) => name,
        Err(e) => {
            let body = axum::Json(serde_json::json!({ "error": e.to_string() }));
            return (StatusCode::URI_TOO_LONG, body).into_response();
        }
    };
    socket::upgrade(ws, max_message, shutdown, move |socket, shutdown| {
        connection(socket, shutdown, rooms, name, max_message)
    })
}

/// How a connection ends.
enum End {
    /// The client closed or vanished.
    Gone,
    /// The server is shutting down.
    Shutdown,
    /// A message over the limit.
    TooLarge,
    /// Close with this code and reason.
    Refused(u16, String),
}

async fn connection(
    mut socket: WebSocket,
    shutdown: Shutdown,
    rooms: Arc<Rooms>,
    name: String,
    max_message: usize,
) {
    let conn = ConnId::next();
    let (outbox, mut queued) = room::outbox();
    let joined = {
        let (rooms, name) = (rooms.clone(), name.clone());
        tokio::task::spawn_blocking(move || rooms.join(&name, conn, outbox)).await
    };
    let room = match joined {
        Ok(Ok(room)) => room,
        Ok(Err(e)) => {
            tracing::error!("room {name:?}: cannot load it: {}", crate::error::Chain(&e));
            let error = ProtocolError::Storage(format!("cannot load the document: {e}"));
            return socket::close_refused(socket, error.close_code(), error.close_reason()).await;
        }
        Err(e) => {
            tracing::error!("room {name:?}: loading failed: {}", crate::error::Chain(&e));
            return;
        }
    };
    tracing::debug!("connection joined room {name:?}");
    let end = serve(&mut socket, &shutdown, &rooms, &room, conn, &mut queued).await;
    let leaving = {
        let (rooms, room) = (rooms.clone(), room.clone());
        tokio::task::spawn_blocking(move || rooms.leave(&room, conn))
    };
    match end {
        End::Gone => {}
        End::Shutdown => socket::close_going_away(socket).await,
        End::TooLarge => socket::close_too_large(socket, max_message).await,
        End::Refused(code, reason) => {
            tracing::debug!("room {name:?}: closing a connection with {code}: {reason}");
            socket::close_refused(socket, code, reason).await
        }
    }
    let _ = leaving.await;
}

/// Pumps frames both ways until the connection ends.
async fn serve(
    socket: &mut WebSocket,
    shutdown: &Shutdown,
    rooms: &Arc<Rooms>,
    room: &Arc<Room>,
    conn: ConnId,
    queued: &mut tokio::sync::mpsc::Receiver<Outgoing>,
) -> End {
    loop {
        tokio::select! {
            () = shutdown.requested() => return End::Shutdown,
            outgoing = queued.recv() => match outgoing {
                Some(Outgoing::Frame(frame)) => {
                    if socket.send(Message::Binary(frame.into())).await.is_err() {
                        return End::Gone;
                    }
                }
                Some(Outgoing::Close(error)) => return refused(&error),
                // The room dropped this connection: it did not keep up with the updates.
                None => {
                    return End::Refused(
                        close_code::TRY_AGAIN_LATER,
                        "dropped: too many messages waiting for this connection".into(),
                    );
                }
            },
            received = socket.recv() => match received {
                None | Some(Ok(Message::Close(_))) => return End::Gone,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Text(_))) => return refused(&ProtocolError::TextFrame),
                Some(Ok(Message::Binary(frame))) => {
                    let handled = {
                        let room = room.clone();
                        tokio::task::spawn_blocking(move || room.handle(conn, &frame)).await
                    };
                    match handled {
                        Ok(Ok(())) => {}
                        Ok(Err(error @ ProtocolError::Storage(_))) => {
                            let (rooms, room, e) = (rooms.clone(), room.clone(), error.clone());
                            let _ = tokio::task::spawn_blocking(move || rooms.discard(&room, &e)).await;
                            return refused(&error);
                        }
                        Ok(Err(error)) => return refused(&error),
                        Err(e) => {
                            tracing::error!("room {:?}: handling a message failed: {}", room.name(), crate::error::Chain(&e));
                            return End::Refused(close_code::INTERNAL, "internal error".into());
                        }
                    }
                }
                Some(Err(e)) if socket::is_too_large(&e) => return End::TooLarge,
                Some(Err(e)) if socket::is_invalid_utf8(&e) => {
                    return End::Refused(close_code::INVALID, "a text frame that is not UTF-8".into());
                }
                Some(Err(e)) => {
                    tracing::debug!("connection ended: {e}");
                    return End::Gone;
                }
            },
        }
    }
}

fn refused(error: &ProtocolError) -> End {
    End::Refused(error.close_code(), error.close_reason())
}
