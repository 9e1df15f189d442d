//! HTTP: the registry endpoint `wsreg serve` runs — the API ([`api`], [`events`]) and
//! the page or a user's site ([`page`]) — and what every wsreg server, HTTP or
//! WebSocket, puts in front of its routes: the guard ([`guard`]) and, with
//! `--auth token`, the token check ([`auth`]).

pub mod api;
pub mod auth;
pub mod error;
pub mod events;
pub mod guard;
pub mod page;

use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::{any, get};

pub use auth::Token;
pub use error::ApiError;
pub use guard::Guard;
pub use page::Site;

use crate::backend::{Backend, Live};
use crate::health::Monitor;
use crate::registry::Filter;

/// What the API handlers share: the process's one watch of the registry (the directory
/// or etcd alike) and its health layer, whose view (the live list with each server's
/// health, and its JSON, built once per change) every request reuses.
#[derive(Clone)]
pub struct Endpoint {
    health: Arc<Monitor>,
}

impl Endpoint {
    /// Starts watching `backend`, probing each live server every `health_interval` while
    /// anyone is subscribed (zero: never); both stop when the last clone is dropped.
    pub fn new(backend: &Backend, health_interval: std::time::Duration) -> crate::Result<Endpoint> {
        raise_fd_limit();
        let watch: Arc<Live> = Arc::new(backend.watch()?);
        Ok(Endpoint {
            health: Arc::new(Monitor::new(watch, health_interval)),
        })
    }
}

/// The watch holds a pidfd per live local server, and every client holds a socket: the
/// soft limit of descriptors (often 1,024) is raised to the hard one, as Go's runtime does.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!("cannot raise the descriptor limit: {e}");
        }
    }
}

/// The registry endpoint's routes: the API beside `site`. Unknown paths under `/api/`,
/// and wrong methods, answer JSON errors. Serve it through
/// [`Bound::serve`](crate::servers::Bound::serve), which adds the guard.
pub fn router(endpoint: Endpoint, site: &Site) -> Router {
    let api = Router::new()
        .route("/api/registry", get(api::registry))
        .route("/api/registry/events", get(events::events))
        .route("/api", any(error::not_found))
        .route("/api/{*rest}", any(error::not_found))
        .with_state(endpoint);
    // After the site's routes, so that it covers them too (axum applies it to the routes
    // registered before it; the fuzzer found a bare 405 from a page route).
    site.route(api)
        .method_not_allowed_fallback(error::method_not_allowed)
}

/// Shares an answer's text with a response body without copying it.
struct ArcStr(Arc<str>);

impl AsRef<[u8]> for ArcStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The `?project=&kind=` selection; an empty value selects everything, as no value does.
fn filter(query: Result<Query<Filter>, QueryRejection>) -> Result<Filter, ApiError> {
    let Query(filter) = query?;
    let set = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(Filter {
        project: set(filter.project),
        kind: set(filter.kind),
    })
}
