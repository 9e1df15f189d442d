//! The registry endpoint as `wsreg serve` runs it — guard, routes, query parsing, page —
//! on arbitrary request heads, without a socket.
//!
//! One router (over a temporary registry holding three live entries of this process) and
//! one runtime are built for the whole run. Each input is sent through the same layers
//! `Bound::serve` puts around the routes. Beyond not panicking:
//! - no answer is a 5xx (nothing a client sends may break the server);
//! - a request the guard refuses gets 403 and nothing else runs;
//! - every 4xx is JSON `{"error": "…"}`;
//! - `GET /api/registry` answers the canonical document, listing only registered
//!   entries, each matching the `project`/`kind` it was asked for.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use tower::ServiceExt;
use wsreg::http::{Endpoint, Guard, Site};
use wsreg::servers::{Shutdown, stack};
use wsreg::{Backend, Registration, Server, Store};

use crate::request;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: Router,
    _registrations: Vec<Registration>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = Store::new(dir.path().join("servers.json"));
        let registrations = [("echo", Some("p")), ("yjs", Some("p")), ("echo", None)]
            .into_iter()
            .enumerate()
            .map(|(i, (kind, project))| {
                let server = Server::new(kind, 4000 + i as u16);
                let server = match project {
                    Some(p) => server.project(p),
                    None => server,
                };
                server.register(&store).expect("register")
            })
            .collect();
        let app = runtime.block_on(async {
            let endpoint = Endpoint::new(&Backend::dir(store), std::time::Duration::ZERO)
                .expect("watch the registry");
            let routes = wsreg::http::router(endpoint, &Site::Page);
            stack(routes, Guard::default(), None, Shutdown::default())
        });
        Fixture {
            runtime,
            app,
            _registrations: registrations,
            _dir: dir,
        }
    })
}

pub fn check(data: &[u8]) {
    let Some(request) = request::parse(data) else {
        return;
    };
    let fixture = fixture();
    let refused = Guard::default().check(request.headers()).is_err();
    let is_registry = request.uri().path() == "/api/registry";
    let query = request.uri().query().unwrap_or("").to_owned();
    let request = request.map(|()| Body::empty());
    fixture.runtime.block_on(async {
        let response = fixture
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        assert!(!status.is_server_error(), "answered {status}");
        if refused {
            assert_eq!(status, StatusCode::FORBIDDEN, "the guard refused it");
        }
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let streaming = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if streaming {
            return;
        }
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        if status.is_client_error() {
            assert!(is_json, "a {status} answer is JSON");
            let doc: serde_json::Value = serde_json::from_slice(&body).expect("JSON error");
            assert!(doc["error"].is_string(), "{doc}");
        } else if status == StatusCode::OK && is_registry {
            check_listing(&body, &query);
        }
    });
}

/// The registry answer lists only the fixture's entries, each matching the filter.
fn check_listing(body: &[u8], query: &str) {
    let doc: serde_json::Value = serde_json::from_slice(body).expect("a JSON document");
    assert_eq!(doc["version"], 1);
    let wanted = |key: &str| {
        url_pairs(query)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
    };
    let (project, kind) = (wanted("project"), wanted("kind"));
    for server in doc["servers"].as_array().expect("a servers array") {
        let port = server["port"].as_u64().expect("a port");
        assert!((4000..4003).contains(&port), "{server}");
        if let Some(kind) = &kind {
            assert_eq!(server["kind"].as_str(), Some(kind.as_str()), "{query}");
        }
        if let Some(project) = &project {
            assert_eq!(
                server["project"].as_str(),
                Some(project.as_str()),
                "{query}"
            );
        }
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded as the standard says (`+` is a
/// space, `%XX` a byte, invalid UTF-8 replaced), written independently of serde's.
fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        match (b, tail) {
            (b'+', _) => bytes.push(b' '),
            (b'%', [h, l, ..]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                let hex = |c: u8| (c as char).to_digit(16).expect("a hex digit") as u8;
                bytes.push(hex(*h) << 4 | hex(*l));
                rest = &tail[2..];
                continue;
            }
            _ => bytes.push(b),
        }
        rest = tail;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
