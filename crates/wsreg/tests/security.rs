//! The localhost safety defaults, from outside: servers bind loopback; a foreign `Host`
//! (DNS rebinding) gets 403 on the API, the page and WebSocket upgrades; a cross-site
//! `Origin` gets 403 on WebSocket upgrades and API requests, and CORS is granted to one
//! loopback or allowed origin at a time, never `*`.

mod common;

use common::{Events, Listening, Registry, STEP, get, request};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The status of a WebSocket handshake with these extra headers: 101 when it upgraded.
async fn upgrade_status(at: &Listening, headers: &[(&'static str, &str)]) -> u16 {
    let mut request = at.url.as_str().into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let result = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time");
    match result {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("\"error\""), "a JSON refusal: {body}");
            response.status().as_u16()
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

#[test]
fn servers_listen_on_loopback_by_default() {
    let reg = Registry::new();
    let (_echo, echo) = reg.echo(&[]);
    let (_serve, serve) = reg.serve(&[]);
    assert!(echo.addr.ip().is_loopback(), "{echo:?}");
    assert!(serve.addr.ip().is_loopback(), "{serve:?}");
    assert_eq!(
        reg.list()["servers"][0]["url"],
        format!("ws://127.0.0.1:{}/", echo.addr.port())
    );
}

#[test]
fn a_foreign_host_is_refused_on_the_api_the_page_and_events() {
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&["--allowed-host", "devbox.lan"]);
    for path in [
        "/api/registry",
        "/api/registry/events",
        "/",
        "/app.js",
        "/nope",
    ] {
        for host in ["evil.example", "evil.example:80", "127.0.0.1.evil.example"] {
            let r = get(at.addr, path, &[("Host", host)]);
            assert_eq!(r.status, 403, "{path} with Host {host}");
            assert!(
                r.json()["error"].as_str().unwrap().contains("not allowed"),
                "{}",
                r.body
            );
        }
        for host in [
            "localhost",
            "127.0.0.1:1",
            "app.localhost:5173",
            "[::1]:80",
            "devbox.lan",
        ] {
            let (status, _, _) = request(at.addr, path, &[("Host", host)]);
            assert_ne!(status, 403, "{path} with Host {host}");
        }
    }
}

#[tokio::test]
async fn a_foreign_host_is_refused_on_a_websocket_upgrade() {
    let reg = Registry::new();
    let (_echo, at) = reg.echo(&[]);
    assert_eq!(upgrade_status(&at, &[("Host", "evil.example")]).await, 403);
    assert_eq!(upgrade_status(&at, &[("Host", "localhost")]).await, 101);
}

#[tokio::test]
async fn a_cross_site_origin_is_refused_on_a_websocket_upgrade() {
    let reg = Registry::new();
    let (_echo, at) = reg.echo(&["--allowed-origin", "https://tool.example"]);
    for origin in [
        "http://evil.example",
        "null",
        "http://localhost.evil.example",
    ] {
        assert_eq!(
            upgrade_status(&at, &[("Origin", origin)]).await,
            403,
            "{origin}"
        );
    }
    assert_eq!(
        upgrade_status(&at, &[("Sec-Fetch-Site", "cross-site")]).await,
        403
    );
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:8080",
        "https://tool.example",
    ] {
        assert_eq!(
            upgrade_status(&at, &[("Origin", origin)]).await,
            101,
            "{origin}"
        );
    }
    assert_eq!(
        upgrade_status(&at, &[]).await,
        101,
        "no Origin: not a browser"
    );
}

#[test]
fn the_api_grants_cors_to_one_loopback_origin_and_never_to_a_cross_site_one() {
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&[]);
    for path in ["/api/registry", "/api/registry/events"] {
        let r = get(at.addr, path, &[("Origin", "http://evil.example")]);
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), None, "{path}");
    }
    let r = get(
        at.addr,
        "/api/registry",
        &[("Origin", "http://localhost:3000")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = get(at.addr, "/api/registry", &[]);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let events = Events::subscribe(at.addr, "/api/registry/events?kind=echo");
    assert_eq!(events.status, 200);
}
