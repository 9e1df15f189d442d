//! The Host/Origin/Sec-Fetch-Site guard (`wsreg::http::Guard`) on arbitrary request heads.
//!
//! A differential check: the guard parses `Host` and `Origin` by hand (it must be cheap
//! and strict), and every request it lets through must also pass an independent reading
//! made with the `http` crate's URI parser and the standard library's IP parsers —
//! a loopback host, or the one extra host/origin this guard allows. The check is one-way
//! (soundness): refusing an exotic but loopback form is allowed, accepting anything else
//! is a bug.

use std::net::{Ipv4Addr, Ipv6Addr};

use http::header::{HOST, ORIGIN};
use http::uri::{Authority, Uri};
use wsreg::http::Guard;

use crate::request;

const EXTRA_HOST: &str = "devbox.lan";
const EXTRA_ORIGIN: &str = "https://tool.example";

pub fn check(data: &[u8]) {
    let Some(request) = request::parse(data) else {
        return;
    };
    let guard = Guard {
        allowed_hosts: vec![EXTRA_HOST.to_owned()],
        allowed_origins: vec![EXTRA_ORIGIN.to_owned()],
    };
    let headers = request.headers();
    if let Err(refusal) = guard.check(headers) {
        // The refusal's message is sent back to the client: it must render.
        let _ = axum::response::IntoResponse::into_response(refusal);
        return;
    }
    let host = headers.get(HOST).expect("accepted without a Host header");
    let host = host
        .to_str()
        .expect("accepted a Host that is not visible ASCII");
    let authority: Authority = host
        .parse()
        .unwrap_or_else(|e| panic!("accepted Host {host:?}, not an authority: {e}"));
    assert!(
        is_loopback(authority.host()) || authority.host().eq_ignore_ascii_case(EXTRA_HOST),
        "accepted Host {host:?}"
    );
    match headers.get(ORIGIN) {
        Some(origin) => {
            let origin = origin.to_str().expect("accepted a non-ASCII Origin");
            if !origin.eq_ignore_ascii_case(EXTRA_ORIGIN) {
                assert_loopback_origin(origin);
            }
        }
        None => assert_ne!(
            headers.get("sec-fetch-site").map(|v| v.as_bytes()),
            Some(&b"cross-site"[..]),
            "accepted a cross-site request without Origin"
        ),
    }
}

fn assert_loopback_origin(origin: &str) {
    let uri: Uri = origin
        .parse()
        .unwrap_or_else(|e| panic!("accepted Origin {origin:?}, not a URI: {e}"));
    assert!(
        matches!(uri.scheme_str(), Some("http" | "https")),
        "accepted Origin {origin:?}: scheme"
    );
    let authority = uri.authority().expect("an absolute URI has an authority");
    assert!(
        is_loopback(authority.host()),
        "accepted Origin {origin:?}: host"
    );
    assert!(
        uri.path_and_query().is_none_or(|p| p.as_str() == "/") && !origin.ends_with('/'),
        "accepted Origin {origin:?}: an origin has no path or query"
    );
}

/// Loopback by the standard library's parsers: `localhost` and its subdomains, 127/8,
/// and `[::1]` in any IPv6 spelling.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()),
        None => host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()),
    }
}
