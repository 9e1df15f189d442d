//! Graceful shutdown, shared by every wsreg server.
//!
//! axum's own graceful shutdown stops accepting and waits for HTTP requests, but an
//! upgraded WebSocket (and a never-ending SSE response) would keep a server alive for as
//! long as its client stays. So every long-lived connection takes a [`Shutdown`] (an axum
//! extractor) and runs with a [`Hold`] of it ([`Shutdown::hold`]), ending itself when
//! [`Hold::requested`] fires — a WebSocket by closing with 1001 "going away". The
//! server waits for the holds, bounded by a grace period, and only then unregisters.
//! A `Hold` is both the signal and the count (16 bytes), because it lives in every
//! connection's task.

use std::convert::Infallible;
use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// The shutdown of one server: a signal for its connections and a count of them.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

/// A long-lived connection's share of the shutdown: says when it begins, and keeps the
/// server's shutdown waiting while it lives.
#[derive(Debug)]
pub struct Hold {
    token: CancellationToken,
    _tracked: TaskTrackerToken,
}

impl Hold {
    /// Resolves once the server begins to shut down.
    pub async fn requested(&self) {
        self.token.cancelled().await
    }
}

impl Shutdown {
    pub(crate) fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Resolves once the server begins to shut down.
    pub async fn requested(&self) {
        self.token.cancelled().await
    }

    /// Registers a connection the shutdown waits for (up to its grace period).
    pub fn hold(&self) -> Hold {
        Hold {
            token: self.token.clone(),
            _tracked: self.tracker.token(),
        }
    }

    /// Signals every connection to end.
    pub(crate) fn begin(&self) {
        self.token.cancel();
        self.tracker.close();
    }

    /// Resolves when every [`Hold`] is dropped (after [`Shutdown::begin`]).
    pub(crate) async fn drained(&self) {
        self.tracker.wait().await
    }
}

/// Handlers take the server's `Shutdown` as an argument; the scaffold
/// ([`crate::servers::Bound::serve`]) puts it in every request. Outside it, a request
/// gets a `Shutdown` that is never requested.
impl<S: Send + Sync> FromRequestParts<S> for Shutdown {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Shutdown>()
            .cloned()
            .unwrap_or_default())
    }
}

/// A future that resolves at the first SIGINT or SIGTERM (Ctrl-C, `kill`, a service
/// manager's stop). The handlers are installed by this call, not at the first poll, so a
/// signal sent right after start counts. Needs a tokio runtime.
pub fn terminate_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
