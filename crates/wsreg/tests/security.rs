//! The localhost safety defaults, from outside: servers bind loopback; a foreign `Host`
//! (DNS rebinding) gets 403 on the API, the page and WebSocket upgrades; a cross-site
//! `Origin` gets 403 on WebSocket upgrades and API requests, and CORS is granted to one
//! loopback or allowed origin at a time, never `*`.

mod common;

use common::{Events, Registry, get, request, upgrade_status};

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
    assert_eq!(
        upgrade_status(&at.url, &[("Host", "evil.example")]).await,
        403
    );
    assert_eq!(upgrade_status(&at.url, &[("Host", "localhost")]).await, 101);
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
            upgrade_status(&at.url, &[("Origin", origin)]).await,
            403,
            "{origin}"
        );
    }
    assert_eq!(
        upgrade_status(&at.url, &[("Sec-Fetch-Site", "cross-site")]).await,
        403
    );
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:8080",
        "https://tool.example",
    ] {
        assert_eq!(
            upgrade_status(&at.url, &[("Origin", origin)]).await,
            101,
            "{origin}"
        );
    }
    assert_eq!(
        upgrade_status(&at.url, &[]).await,
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
