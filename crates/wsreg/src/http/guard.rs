//! The localhost safety checks every wsreg HTTP and WebSocket server runs first.
//!
//! A server on 127.0.0.1 is reachable from every web page the user's browser opens, so
//! three checks stand in front of every route and every WebSocket upgrade:
//! - `Host` must be a loopback name (stops DNS rebinding: `evil.example` resolving to
//!   127.0.0.1 still sends `Host: evil.example`);
//! - `Origin`, when sent, must be a loopback origin or an allowed one (stops cross-site
//!   `fetch` and cross-site WebSocket hijacking: browsers always send `Origin` on upgrades);
//! - `Sec-Fetch-Site: cross-site` is refused (a `<script src>` or `<img>` from another
//!   site sends no `Origin` on a GET, but modern browsers send this).
//!
//! The cases every guard must get right (this one and the Vite plugin's `src/guard.js`)
//! are the shared vectors in `testdata/guard/cases.json`, run by `tests/guard_vectors.rs`.
//!
//! Loopback origins on any port are same-site with each other, so they are allowed: a
//! user's Vite app on one port may read `wsreg serve` on another (with CORS granting that
//! one origin, never `*`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Which `Host` and `Origin` values a server accepts besides loopback ones.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Extra host names (without port), e.g. from `--allowed-host`; compared ignoring
    /// ASCII case.
    pub allowed_hosts: Vec<String>,
    /// Extra origins (`scheme://host[:port]`), e.g. from `--allowed-origin`; compared
    /// exactly, as browsers send them (lowercase scheme and host, no default port, no
    /// path). `null` is never allowed, even when listed.
    pub allowed_origins: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("missing Host header")]
    NoHost,
    #[error("more than one Host header")]
    ManyHosts,
    #[error("host {0:?} is not allowed (DNS rebinding protection); use --allowed-host to allow it")]
    Host(String),
    #[error("more than one Origin header")]
    ManyOrigins,
    #[error("origin {0:?} is not allowed; use --allowed-origin to allow it")]
    Origin(String),
    #[error("cross-site requests are not allowed")]
    CrossSite,
}

impl Refusal {
    /// Which check refused: `host`, `origin` or `cross-site` (as the shared test vectors
    /// in `testdata/guard/` name them).
    pub fn check(&self) -> &'static str {
        match self {
            Refusal::NoHost | Refusal::ManyHosts | Refusal::Host(_) => "host",
            Refusal::ManyOrigins | Refusal::Origin(_) => "origin",
            Refusal::CrossSite => "cross-site",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// Whether a host name (no port; IPv6 in brackets) is a loopback name: `localhost` or a
/// name ending in `.localhost` (RFC 6761), an IPv4 address in 127.0.0.0/8 written as
/// browsers write it (four decimal parts, no leading zeros), or `[::1]`. ASCII case is
/// ignored.
///
/// A name is dot-separated non-empty labels of letters, digits, `-` and `_`: so no
/// trailing dot. `localhost.` is refused as Vite refuses it (no browser or tool needs
/// that spelling, and every other check would need a second spelling of each name);
/// `--allowed-host localhost.` allows it on purpose. (Found by fuzzing: `x y/z.localhost`
/// is no host name.)
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    if host == "[::1]" {
        return true;
    }
    let is_name = host.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !is_name {
        return false;
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    // The standard parser takes exactly `d.d.d.d`, each 0-255 without leading zeros.
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]` (and `[v6][:port]`) into the host part; `None` when the value is
/// malformed: an empty host, characters no host name has, a colon in a host that is not
/// bracketed, text after `]` that is not a port, a port that is not 1 to 5 digits or is
/// above 65535.
/// Strict on purpose: browsers send only well-formed values, so anything else is refused
/// rather than guessed at (found by fuzzing: `[::1]:: x` once passed as `[::1]`, and
/// `::1:80` as `::1`).
fn host_part(authority: &str) -> Option<&str> {
    let (host, port) = if authority.starts_with('[') {
        let (host, rest) = authority.split_at(authority.find(']')? + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        }
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    (host_ok && port_ok).then_some(host)
}

impl Guard {
    /// Checks the `Host` header (one of them: [`Guard::check`] refuses a request that
    /// has more than one).
    pub fn check_host(&self, host: Option<&HeaderValue>) -> Result<(), Refusal> {
        let value = host.ok_or(Refusal::NoHost)?;
        let value = value
            .to_str()
            .map_err(|_| Refusal::Host(format!("{value:?}")))?;
        let Some(name) = host_part(value) else {
            return Err(Refusal::Host(value.to_owned()));
        };
        let allowed = is_loopback_host(name)
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name));
        match allowed {
            true => Ok(()),
            false => Err(Refusal::Host(value.to_owned())),
        }
    }

    /// Whether an `Origin` value is loopback or explicitly allowed. `null` (sandboxed
    /// frames and `file:` pages of any site) never is.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if origin == "null" {
            return false;
        }
        if self.allowed_origins.iter().any(|o| o == origin) {
            return true;
        }
        let Some(rest) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        !rest.contains('/') && host_part(rest).is_some_and(is_loopback_host)
    }

    /// Checks `Origin` (at most one, allowed) and, when there is none, `Sec-Fetch-Site`
    /// (no value `cross-site`, in any case).
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        if let Some(origin) = origins.next() {
            if origins.next().is_some() {
                return Err(Refusal::ManyOrigins);
            }
            let text = origin.to_str().unwrap_or("");
            if !self.origin_allowed(text) {
                return Err(Refusal::Origin(
                    String::from_utf8_lossy(origin.as_bytes()).into_owned(),
                ));
            }
            return Ok(());
        }
        let cross_site = headers
            .get_all("sec-fetch-site")
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
        match cross_site {
            true => Err(Refusal::CrossSite),
            false => Ok(()),
        }
    }

    /// Checks a whole request: exactly one allowed `Host`, then [`Guard::check_origin`].
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = hosts.next();
        if hosts.next().is_some() {
            return Err(Refusal::ManyHosts);
        }
        self.check_host(host)?;
        self.check_origin(headers)
    }
}

/// axum middleware: refuses what [`Guard::check`] refuses with 403 and a JSON body, and
/// grants CORS to an allowed `Origin` (that one origin, with `Vary: Origin`).
pub async fn middleware(
    State(guard): State<Arc<Guard>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    if let Err(refusal) = guard.check(request.headers()) {
        // Never the token: a URL may carry one (`?token=`), and logs are not secret.
        tracing::debug!(
            "refused {} {}: {refusal}",
            request.method(),
            super::auth::without_token(request.uri())
        );
        return refusal.into_response();
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn loopback_hosts_pass_and_others_do_not() {
        let g = Guard::default();
        for ok in [
            "localhost",
            "localhost:5173",
            "app.localhost:1",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:9",
            "LOCALHOST:5173",
            "my_app.localhost:5173",
        ] {
            assert_eq!(g.check(&headers(&[("host", ok)])), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:5173",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "0.0.0.0",
            "[::2]:1",
            "10.0.0.1",
            "[::1]evil.example",
            "[::1]:80:80",
            "localhost:+80",
            "localhost:65536",
            "localhost:",
            "::1:2999",
            "::1",
            "127.0.pi/registry HTTP.localhost",
            "localhost.",
            "LOCALHOST.:5173",
            ".localhost",
            "a..localhost",
            "127.0.00.1:5173",
            "127.0.0.1.",
            "localhost:000080",
            "[]:80",
            "",
        ] {
            assert!(
                matches!(g.check(&headers(&[("host", bad)])), Err(Refusal::Host(_))),
                "{bad}"
            );
        }
        assert_eq!(g.check(&HeaderMap::new()), Err(Refusal::NoHost));
        let two = headers(&[("host", "localhost"), ("host", "evil.example")]);
        assert_eq!(g.check(&two), Err(Refusal::ManyHosts));
        let g = Guard {
            allowed_hosts: vec!["devbox.lan".into()],
            ..Guard::default()
        };
        assert_eq!(g.check(&headers(&[("host", "devbox.lan:8080")])), Ok(()));
    }

    #[test]
    fn cross_site_origins_are_refused() {
        let g = Guard::default();
        let h = |o| headers(&[("host", "127.0.0.1:5173"), ("origin", o)]);
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1:5173",
            "https://app.localhost",
            "http://[::1]:4",
        ] {
            assert_eq!(g.check(&h(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "null",
            "http://localhost.evil.example",
            "file://",
            "http://127.0.0.1:5173/x",
            "http://[::1]:: Upgrade",
            "http://[::1]evil.example",
            "http://localhost:99999",
        ] {
            assert!(matches!(g.check(&h(bad)), Err(Refusal::Origin(_))), "{bad}");
        }
        let no_cors = headers(&[("host", "127.0.0.1"), ("sec-fetch-site", "cross-site")]);
        assert_eq!(g.check(&no_cors), Err(Refusal::CrossSite));
        let same = headers(&[("host", "127.0.0.1"), ("sec-fetch-site", "same-origin")]);
        assert_eq!(g.check(&same), Ok(()));
        let g = Guard {
            allowed_origins: vec!["https://tool.example".into()],
            ..Guard::default()
        };
        assert_eq!(g.check(&h("https://tool.example")), Ok(()));
    }
}
