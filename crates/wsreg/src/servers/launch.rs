//! The scaffold every wsreg server runs in: bind, register, serve behind the guard, shut
//! down gracefully.
//!
//! [`Launch::bind`] listens first and registers second, so an entry never points at a
//! port nobody listens on (connections that arrive before `serve` wait in the backlog).
//! [`Bound::serve`] puts the [`Guard`] in front of every route, the fallback and the
//! WebSocket upgrades, and runs until `stop` resolves; then it stops accepting, tells
//! every long-lived connection to end ([`Shutdown`]), waits for them at most [`GRACE`],
//! and unregisters last — so a client that sees 1001 can rely on the entry being gone
//! moments later, and the process exits well within a second of SIGTERM.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::{Extension, Router};
use tokio::net::TcpListener;

use crate::backend::Backend;
use crate::http::auth::{self, AuthError, Token};
use crate::http::guard::{self, Guard};
use crate::registration::{Registration, Server};
use crate::shutdown::Shutdown;

/// How long a stopping server waits for its connections to close.
pub const GRACE: Duration = Duration::from_millis(500);

/// Where a server listens and what it registers as.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The address to bind: an IP address or a name that resolves to one.
    pub host: String,
    /// The port; 0 lets the OS choose a free one.
    pub port: u16,
    /// How many ports after `port` to try when it is taken (0: `port` or an error), as
    /// Vite does for its default port.
    pub next_ports: u16,
    /// The Host/Origin checks in front of every request.
    pub guard: Guard,
    /// Whether every request must carry the per-user token (`--auth token`).
    pub token_auth: bool,
    /// What to register as once listening; `None` for servers that are not listed
    /// (the registry endpoint itself).
    pub listing: Option<Listing>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            host: Ipv4Addr::LOCALHOST.to_string(),
            port: 0,
            next_ports: 0,
            guard: Guard::default(),
            token_auth: false,
            listing: None,
        }
    }
}

/// What a server's registry entry says about it.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// A short lowercase word: `echo`, `yjs`, …
    pub kind: String,
    pub name: Option<String>,
    pub project: Option<String>,
    /// The URL other machines use (`--advertise`); by default the bound address's.
    pub url: Option<String>,
}

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "{addr} is already in use by another program (choose another --port, or --port 0 for a free one)"
    )]
    PortInUse { addr: String },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "refusing to listen on {addr}: beyond loopback any machine could connect, so --auth token is required there (docs/security.md)"
    )]
    Exposed { addr: SocketAddr },
    #[error("cannot register the server")]
    Register(#[source] crate::Error),
    #[error("token auth")]
    Auth(#[source] AuthError),
    #[error("the server failed")]
    Serve(#[source] io::Error),
}

/// A server that listens (and is registered, if it has a listing) but does not serve yet.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
    guard: Guard,
    token: Option<Token>,
    registration: Option<Registration>,
}

impl Launch {
    /// Binds `port`, or with `next_ports` the first free one after it.
    async fn listen(&self) -> Result<TcpListener, LaunchError> {
        let last = self.port.saturating_add(self.next_ports);
        let mut port = self.port;
        loop {
            let addr = format!("{}:{port}", self.host);
            match TcpListener::bind((self.host.as_str(), port)).await {
                Ok(listener) => return Ok(listener),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && port < last => {
                    tracing::info!("{addr} is in use; trying port {}", port + 1);
                    port += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    return Err(LaunchError::PortInUse { addr });
                }
                Err(source) => return Err(LaunchError::Bind { addr, source }),
            }
        }
    }

    /// Reads (or makes) the token if needed, binds the listening socket, then registers
    /// the server in `backend`. A non-loopback address is refused without token auth.
    pub async fn bind(self, backend: &Backend) -> Result<Bound, LaunchError> {
        let token = match self.token_auth {
            true => Some(Token::load_or_create(backend.store()).map_err(LaunchError::Auth)?),
            false => None,
        };
        let listener = self.listen().await?;
        let addr = listener.local_addr().map_err(|source| LaunchError::Bind {
            addr: format!("{}:{}", self.host, self.port),
            source,
        })?;
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(LaunchError::Exposed { addr });
        }
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "listening on {addr}, beyond loopback: other machines can connect (Host and Origin checks still apply)"
            );
        }
        let registration = match self.listing {
            None => None,
            Some(listing) => Some(register(backend, listing, addr).await?),
        };
        Ok(Bound {
            listener,
            addr,
            guard: self.guard,
            token,
            registration,
        })
    }
}

async fn register(
    backend: &Backend,
    listing: Listing,
    addr: SocketAddr,
) -> Result<Registration, LaunchError> {
    let url = listing.url.unwrap_or_else(|| ws_url(addr));
    let mut server = Server::new(&listing.kind, addr.port()).url(url);
    if let Some(name) = listing.name {
        server = server.name(name);
    }
    if let Some(project) = listing.project {
        server = server.project(project);
    }
    let backend = backend.clone();
    tokio::task::spawn_blocking(move || backend.register(server))
        .await
        .map_err(|e| LaunchError::Serve(io::Error::other(e)))?
        .map_err(LaunchError::Register)
}

/// The address a local client connects to: an unspecified bind address (`0.0.0.0`, `::`)
/// is reached through loopback.
fn connect_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{}/", connect_addr(addr))
}

/// Wraps `app` in what every wsreg server puts around its routes: the [`Guard`]
/// outermost (nothing else runs for a refused request), then the token check when there
/// is a `token`, then the answer to health probes ([`super::probe`]), then the server's
/// [`Shutdown`] for its long-lived connections.
/// [`Bound::serve`] serves this; the HTTP fuzz target drives it without a socket.
pub fn stack(app: Router, guard: Guard, token: Option<Token>, shutdown: Shutdown) -> Router {
    let app = app.layer(Extension(shutdown));
    let app = app.layer(axum::middleware::from_fn(super::probe::middleware));
    let app = match token {
        Some(token) => app.layer(axum::middleware::from_fn_with_state(
            token,
            auth::middleware,
        )),
        None => app,
    };
    app.layer(axum::middleware::from_fn_with_state(
        Arc::new(guard),
        guard::middleware,
    ))
}

impl Bound {
    /// The bound address (with the port the OS chose).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The WebSocket URL clients connect to, as registered.
    pub fn ws_url(&self) -> String {
        ws_url(self.addr)
    }

    /// The HTTP URL of the server's root, for pages and APIs.
    pub fn http_url(&self) -> String {
        format!("http://{}/", connect_addr(self.addr))
    }

    /// The token every request must carry, with `--auth token`.
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// The registry id, when the server is registered.
    pub fn id(&self) -> Option<&str> {
        self.registration.as_ref().map(Registration::id)
    }

    /// Serves `app` until `stop` resolves, then shuts down gracefully and unregisters.
    pub async fn serve(
        self,
        app: Router,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), LaunchError> {
        let shutdown = Shutdown::new();
        let app = stack(app, self.guard, self.token, shutdown.clone());
        let stopping = shutdown.clone();
        let mut server = tokio::spawn(
            // Small frames go out at once (no Nagle delay), as Node's `ws` does.
            axum::serve(self.listener.tap_io(|tcp| drop(tcp.set_nodelay(true))), app)
                .with_graceful_shutdown(async move { stopping.requested().await })
                .into_future(),
        );
        let failed = tokio::select! {
            () = stop => None,
            result = &mut server => Some(result),
        };
        shutdown.begin();
        let result = match failed {
            Some(result) => result,
            None => {
                let drained = async {
                    shutdown.drained().await;
                    (&mut server).await
                };
                match tokio::time::timeout(GRACE, drained).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::debug!("connections still open after {GRACE:?}; closing them");
                        server.abort();
                        Ok(Ok(()))
                    }
                }
            }
        };
        if let Some(registration) = self.registration {
            let unregistered = tokio::task::spawn_blocking(move || registration.unregister()).await;
            if let Ok(Err(e)) = unregistered {
                tracing::warn!("cannot unregister: {}", crate::error::Chain(&e));
            }
        }
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LaunchError::Serve(e)),
            Err(e) => Err(LaunchError::Serve(io::Error::other(e))),
        }
    }
}
