//! What `wsreg serve` shows at `/`: the embedded page, or a user's own built site.
//!
//! The page (`crates/wsreg/assets/`) and the browser library it imports
//! (`packages/wsreg-client/*.js`, served under `/wsreg-client/` in both modes so a user's
//! site can import it too) are compiled into the binary, so `wsreg` runs from anywhere
//! with nothing beside it. The page gets a Content-Security-Policy that allows only its
//! own scripts and styles and WebSocket connections: registry text is rendered as text,
//! and the policy is a second wall should that ever break. A user's site (`--static`)
//! is served as it is, with `index.html` for paths that name no file (client-side
//! routing).

use std::path::PathBuf;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::extract::rejection::PathRejection;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use tower_http::services::{ServeDir, ServeFile};

use super::error::{ApiError, not_found};

/// The embedded page.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Page;

/// The browser library, as its package ships it.
#[derive(RustEmbed)]
#[folder = "../../packages/wsreg-client/"]
#[include = "*.js"]
#[exclude = "test/*"]
#[exclude = "node_modules/*"]
struct Client;

/// The page's Content-Security-Policy.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// What is served at `/`.
#[derive(Debug, Clone)]
pub enum Site {
    /// The embedded page.
    Page,
    /// A user's built site, from this directory.
    Static(PathBuf),
}

impl Site {
    /// Adds the site's routes to `router`; what they do not serve answers a JSON 404.
    pub(super) fn route<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        let router = router.route("/wsreg-client/{*file}", get(client_file));
        match self {
            Site::Page => router
                .route(
                    "/",
                    get(|| async { embedded::<Page>("index.html", Some(PAGE_POLICY)) }),
                )
                .route("/{*file}", get(page_file))
                .fallback(not_found),
            Site::Static(dir) => router.fallback_service(
                ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html"))),
            ),
        }
    }
}

// A path that does not decode to UTF-8 (`/%ff`) is a JSON 400 like every other error.
async fn page_file(path: Result<UrlPath<String>, PathRejection>) -> Result<Response, ApiError> {
    let UrlPath(path) = path?;
    Ok(embedded::<Page>(&path, Some(PAGE_POLICY)))
}

async fn client_file(path: Result<UrlPath<String>, PathRejection>) -> Result<Response, ApiError> {
    let UrlPath(path) = path?;
    Ok(embedded::<Client>(&path, None))
}

fn embedded<E: RustEmbed>(path: &str, policy: Option<&'static str>) -> Response {
    let Some(file) = E::get(path) else {
        return ApiError::not_found(path).into_response();
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type(file.metadata.mimetype())),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        file.data,
    )
        .into_response();
    if let Some(policy) = policy {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(policy),
        );
    }
    response
}

/// The file's media type; text is UTF-8, said explicitly.
fn content_type(mime: &str) -> String {
    match mime.starts_with("text/") || mime.ends_with("javascript") {
        true => format!("{mime}; charset=utf-8"),
        false => mime.to_owned(),
    }
}
