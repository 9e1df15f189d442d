//! The answer every wsreg server gives a health probe (an upgrade marked
//! `X-Wsreg-Probe: 1`, sent by `wsreg serve` and the Vite plugin; see docs/api.md,
//! "Health"): the handshake, the pong, the close — and nothing of the server itself.
//!
//! It sits inside the guard, so a probe passes the same Host and Origin checks as the page,
//! but in front of the server's routes: a probe of a Yjs server opens no room (with
//! `--data-dir`, opening a room replays its log), and no server counts a probe among its
//! clients. The WebSocket layer answers the ping by itself; the probe then closes.

use std::time::Duration;

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::Response;

use super::socket::Upgrade;

/// The request header that marks a health probe.
pub const HEADER: &str = "x-wsreg-probe";
/// How long a probe's connection may stay open.
const PROBE_LIFETIME: Duration = Duration::from_secs(2);

/// The middleware: answers a probe's upgrade here, passes everything else on.
pub async fn middleware(request: Request, next: Next) -> Response {
    if !request.headers().contains_key(HEADER) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    match Upgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade.accept(125, |mut socket| async move {
            // Reading runs the pong (and the reply to the close); the probe ends it.
            let _ = tokio::time::timeout(PROBE_LIFETIME, async {
                while let Some(Ok(_)) = socket.recv().await {}
            })
            .await;
        }),
        // Not an upgrade (a probe of a healthUrl, say): the server's own routes answer.
        Err(_) => next.run(Request::from_parts(parts, body)).await,
    }
}
