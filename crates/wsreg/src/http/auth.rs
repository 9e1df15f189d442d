//! Token auth (`--auth token`), the way Jupyter does it: for shared machines, where the
//! Host/Origin guard is not enough because other local users (or their processes) can
//! connect to loopback ports too.
//!
//! - **The secret** is per user: `auth-token` in the registry directory (0700), a file of
//!   64 hex digits (256 random bits), mode 0600, created by the first server that needs
//!   it (written to a temp file and linked into place, so two servers starting together
//!   agree on one token) and read by every later one. A token file that other users can
//!   read, that is a symlink or that belongs to someone else is refused.
//! - **Presenting it**: `Authorization: Bearer <token>` (scripts, other programs),
//!   `?token=<token>` in the URL (the link printed at start, WebSocket clients that
//!   cannot set headers), or the `wsreg_token` cookie (the browser).
//! - **The page**: `wsreg serve` prints `http://127.0.0.1:<port>/?token=…`. A navigation
//!   with the right token gets the cookie (HttpOnly, SameSite=Strict, Path=/) and a 303
//!   to the same URL without the token, so the token leaves the address bar and history.
//! - **WebSocket servers** get the token from the browser through that same cookie:
//!   cookies are scoped to a host name, not to a port (RFC 6265, section 8.5), so the
//!   cookie set by `wsreg serve` on 127.0.0.1 goes with every upgrade to
//!   `ws://127.0.0.1:<any port>/` that the page opens. That keeps the token out of
//!   JavaScript entirely (HttpOnly: an injected script cannot read it) and out of URLs
//!   and logs. (The price: the page must be opened on the host name the servers
//!   register, 127.0.0.1, which is the URL printed.)
//! - **Comparison** is constant-time ([`constant_time_eq`]): the time an answer takes
//!   says nothing about how much of a guess was right.
//!
//! A request without the right token gets 401 with a JSON body. The guard runs first,
//! so a cross-site request is refused (403) before its token is even looked at.

use std::fmt;
use std::fs::{OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::atomic_file::{FileError, fail};
use crate::registry::Store;

/// The token file's name, in the registry directory.
pub const TOKEN_FILE: &str = "auth-token";
/// The cookie the browser keeps the token in.
pub const COOKIE: &str = "wsreg_token";
/// The URL query parameter that carries the token.
pub const QUERY: &str = "token";

const TOKEN_BYTES: usize = 32;

/// Why the token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The registry directory is unsafe or cannot be created.
    #[error(transparent)]
    Registry(#[from] crate::Error),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(
        "refusing {path}: other users can read it (mode {mode:o}); delete it and a new token is made at the next start"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{path} does not hold a token (64 hex digits); delete it and a new one is made")]
    Malformed { path: PathBuf },
}

/// The per-user secret. Its `Debug` form does not show it.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// The token of the registry `store` lives in: read from its `auth-token`, or made.
    pub fn load_or_create(store: &Store) -> Result<Token, AuthError> {
        store.prepare_dir()?;
        let path = store.base_dir().join(TOKEN_FILE);
        match read(&path)? {
            Some(token) => Ok(token),
            None => create(&path),
        }
    }

    /// The token, for the link printed at start.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

/// Compares two byte strings in time that depends on their lengths only, not on where
/// they differ (`subtle`). The length is no secret: every token is 64 hex digits.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

fn read(path: &Path) -> Result<Option<Token>, AuthError> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(crate::Error::Symlink {
                path: path.to_owned(),
            }
            .into());
        }
        Err(e) => return Err(fail("open", path)(e).into()),
    };
    let meta = file.metadata().map_err(fail("inspect", path))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(crate::Error::ForeignOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        }
        .into());
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuthError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = String::new();
    (&mut file)
        .take(4 * TOKEN_BYTES as u64)
        .read_to_string(&mut text)
        .map_err(|_| AuthError::Malformed {
            path: path.to_owned(),
        })?;
    let text = text.trim();
    match text.len() == 2 * TOKEN_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => Ok(Some(Token(text.into()))),
        false => Err(AuthError::Malformed {
            path: path.to_owned(),
        }),
    }
}

/// Makes a token and links it into place; if another server won the race, reads theirs.
fn create(path: &Path) -> Result<Token, AuthError> {
    let mut random = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut random)
        .map_err(io::Error::from)
        .map_err(fail("draw random bytes for", path))?;
    let token: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth-token.")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(fail("create a temp file in", dir))?;
    let tmp_path = tmp.path().to_owned();
    tmp.as_file_mut()
        .write_all(format!("{token}\n").as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(fail("write", &tmp_path))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            tracing::info!("created {} (token auth)", path.display());
            Ok(Token(token.into()))
        }
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
            read(path)?.ok_or_else(|| AuthError::Malformed {
                path: path.to_owned(),
            })
        }
        Err(e) => Err(fail("create", path)(e.error).into()),
    }
}

/// What a request presents, from the three places a token may be.
fn presented<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> impl Iterator<Item = &'a [u8]> {
    let query = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.strip_prefix("token="))
        .map(str::as_bytes);
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .into_iter()
        .filter_map(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("wsreg_token="))
        .map(str::as_bytes);
    query.chain(bearer).chain(cookie)
}

/// The URL without its `token` parameter: where a tokenised link redirects to.
pub(crate) fn without_token(uri: &Uri) -> String {
    let rest: Vec<&str> = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    match rest.is_empty() {
        true => uri.path().to_owned(),
        false => format!("{}?{}", uri.path(), rest.join("&")),
    }
}

/// A page load with the token in its URL (not an API call, not a WebSocket upgrade).
fn is_tokenised_navigation(request: &Request<Body>) -> bool {
    let has_query_token = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("token=")));
    has_query_token
        && request.method() == Method::GET
        && !request.uri().path().starts_with("/api/")
        && !request.headers().contains_key(header::UPGRADE)
}

/// axum middleware: lets a request through only with the right token; turns a
/// tokenised page link into the cookie and a redirect.
pub async fn middleware(
    State(token): State<Token>,
    request: Request<Body>,
    next: Next,
) -> Response {
    if !presented(request.headers(), request.uri()).any(|t| token.matches(t)) {
        tracing::debug!("401 {} {}", request.method(), request.uri().path());
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this server needs its token (--auth token): open the link it printed at start, \
             or send Authorization: Bearer <token> (the token is in auth-token beside the registry)",
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"wsreg\""),
        );
        return response;
    }
    if is_tokenised_navigation(&request) {
        let cookie = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
            token.as_str()
        );
        let location = without_token(request.uri());
        return (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, cookie),
                (header::LOCATION, location),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abcd", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abce"));
        assert!(!constant_time_eq(b"abcd", b"xbcd"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn matching_uses_the_constant_time_comparison() {
        let token = Token("0123".into());
        assert!(token.matches(b"0123"));
        assert!(!token.matches(b"0124"));
        assert!(!token.matches(b"01234"));
        assert_eq!(format!("{token:?}"), "Token(…)");
    }

    #[test]
    fn the_token_is_found_in_query_header_and_cookie_and_dropped_from_the_url() {
        let uri: Uri = "/x?a=1&token=q&b=2".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer h"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; wsreg_token=c"),
        );
        let found: Vec<&[u8]> = presented(&headers, &uri).collect();
        assert_eq!(found, [&b"q"[..], b"h", b"c"]);
        assert_eq!(without_token(&uri), "/x?a=1&b=2");
        assert_eq!(without_token(&"/?token=q".parse().unwrap()), "/");
    }

    #[test]
    fn one_token_per_user_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("reg")).unwrap();
        let store = Store::new(dir.path().join("reg").join("servers.json"));
        let first = Token::load_or_create(&store).unwrap();
        let path = store.base_dir().join(TOKEN_FILE);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(first.as_str().len(), 64);
        let again = Token::load_or_create(&store).unwrap();
        assert_eq!(first.as_str(), again.as_str());
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        let err = Token::load_or_create(&store).unwrap_err();
        assert!(
            matches!(err, AuthError::Exposed { mode: 0o644, .. }),
            "{err}"
        );
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        let err = Token::load_or_create(&store).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
