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
    /// Extra host names (without port), e.g. from `--allowed-host`.
    pub allowed_hosts: Vec<String>,
    /// Extra origins (`scheme://host[:port]`), e.g. from `--allowed-origin`.
    pub allowed_origins: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("missing Host header")]
    NoHost,
    #[error("host {0:?} is not allowed (DNS rebinding protection); use --allowed-host to allow it")]
    Host(String),
    #[error("origin {0:?} is not allowed; use --allowed-origin to allow it")]
    Origin(String),
    #[error("cross-site requests are not allowed")]
    CrossSite,
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

/// Whether a host name (no port; brackets allowed around IPv6) is a loopback name.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "[::1]" || host == "::1" {
        return true;
    }
    // A name's characters first: `x y/z.localhost` is no host name (found by fuzzing).
    let is_name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if is_name && (host == "localhost" || host.ends_with(".localhost")) {
        return true;
    }
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// Splits `host[:port]` (and `[v6][:port]`) into the host part; `None` when the value is
/// malformed (text after `]` that is not a port, a port that is not 0–65535 in digits, a
/// colon in a host that is not bracketed).
/// Strict on purpose: browsers send only well-formed values, so anything else is refused
/// rather than guessed at (found by fuzzing: `[::1]:: x` once passed as `[::1]`).
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
    // An unbracketed IPv6 address is no authority (`::1:80`, found by fuzzing).
    let host_ok = host.starts_with('[') || !host.contains(':');
    let port_ok =
        port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok());
    (host_ok && port_ok).then_some(host)
}

impl Guard {
    /// Checks the `Host` header.
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

    /// Whether an `Origin` value is loopback or explicitly allowed.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
        {
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

    /// Checks `Origin` and `Sec-Fetch-Site`.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let text = origin.to_str().unwrap_or("");
            if !self.origin_allowed(text) {
                return Err(Refusal::Origin(
                    String::from_utf8_lossy(origin.as_bytes()).into_owned(),
                ));
            }
            return Ok(());
        }
        match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
            Some(b"cross-site") => Err(Refusal::CrossSite),
            _ => Ok(()),
        }
    }

    /// Checks a whole request.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_host(headers.get(header::HOST))?;
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
            "LOCALHOST.",
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
        ] {
            assert!(
                matches!(g.check(&headers(&[("host", bad)])), Err(Refusal::Host(_))),
                "{bad}"
            );
        }
        assert_eq!(g.check(&HeaderMap::new()), Err(Refusal::NoHost));
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
