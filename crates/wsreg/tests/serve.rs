//! `wsreg serve` and `wsreg demo` as real processes: the API lists what is live, the
//! event stream pushes each change within a second, errors are JSON, `--static` serves a
//! user's site beside the API, a taken port is reported clearly.

mod common;

use std::time::{Duration, Instant};

use common::{Events, Registry, STEP, get, ids};

/// The most a change may take to reach a subscriber (the bound).
const PUSH_BOUND: Duration = Duration::from_secs(1);

#[test]
fn the_api_lists_what_is_live_and_filters_it() {
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&[]);
    let doc = get(at.addr, "/api/registry", &[]);
    assert_eq!(doc.status, 200);
    assert_eq!(doc.header("content-type"), Some("application/json"));
    assert_eq!(doc.json(), serde_json::json!({"version": 1, "servers": []}));

    let (_a, a) = reg.echo(&["--project", "alpha", "--name", "A"]);
    let (mut b, b_at) = reg.echo(&["--project", "beta"]);
    let (a, b_id) = (a.id.unwrap(), b_at.id.unwrap());
    let doc = get(at.addr, "/api/registry", &[]).json();
    assert_eq!(ids(&doc), vec![a.clone(), b_id.clone()]);
    // Nobody is subscribed, so nothing was probed.
    for entry in doc["servers"].as_array().unwrap() {
        assert_eq!(
            entry["health"],
            serde_json::json!({"state": "unknown", "checkedAt": null, "latencyMs": null})
        );
    }
    let mut without_health = doc.clone();
    for entry in without_health["servers"].as_array_mut().unwrap() {
        entry.as_object_mut().unwrap().remove("health");
    }
    assert_eq!(
        without_health,
        reg.list(),
        "the API answers what `wsreg list --json` prints, and each server's health"
    );
    let entry = &doc["servers"][0];
    assert_eq!(entry["kind"], "echo");
    assert_eq!(entry["name"], "A");
    assert_eq!(entry["url"], format!("ws://127.0.0.1:{}/", entry["port"]));

    let only = |q: &str| ids(&get(at.addr, &format!("/api/registry{q}"), &[]).json());
    assert_eq!(only("?project=alpha"), vec![a.clone()]);
    assert_eq!(only("?project=beta&kind=echo"), vec![b_id.clone()]);
    assert_eq!(only("?kind=yjs"), Vec::<String>::new());
    assert_eq!(only("?project="), vec![a.clone(), b_id.clone()]);

    // A SIGKILLed server leaves no chance to unregister: it is gone from the very next answer.
    b.signal(libc::SIGKILL);
    b.wait_exit(STEP);
    assert_eq!(only(""), vec![a]);
}

#[test]
fn errors_are_json() {
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&[]);
    for path in [
        "/api/nope",
        "/api",
        "/no-such-file.js",
        "/wsreg-client/nope.js",
    ] {
        let r = get(at.addr, path, &[]);
        assert_eq!(r.status, 404, "{path}");
        assert!(
            r.json()["error"].as_str().unwrap().contains("not found"),
            "{path}: {}",
            r.body
        );
    }
    for path in ["/", "/api/registry"] {
        let r = common::send(at.addr, "POST", path, &[]);
        assert_eq!(r.status, 405, "{path}");
        assert!(r.json()["error"].is_string(), "{path}: {}", r.body);
    }
    let r = get(at.addr, "/api/registry?project=a&project=b", &[]);
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
}

#[test]
fn the_page_and_the_client_library_are_embedded() {
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&[]);
    let page = get(at.addr, "/", &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.body
            .contains("<script type=\"module\" src=\"/app.js\">")
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let app = get(at.addr, "/app.js", &[]);
    assert!(app.header("content-type").unwrap().contains("javascript"));
    let import = app
        .body
        .lines()
        .find_map(|l| {
            l.strip_prefix("import {")
                .and_then(|l| l.split_once("} from '"))
        })
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split('\'').next())
        .expect("app.js imports wsreg-client");
    let lib = get(at.addr, import, &[]);
    assert_eq!(lib.status, 200, "{import}");
    assert!(lib.body.contains("export"), "{import}");
}

#[test]
fn events_push_each_change_within_a_second() {
    let reg = Registry::new();
    // Without probes, so that every event is a change of the list.
    let (mut serve, at) = reg.serve(&["--health-interval", "0"]);
    let events = Events::subscribe(at.addr, "/api/registry/events");
    assert_eq!(events.status, 200);
    let header = |k: &str| {
        events
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("content-type").as_deref(), Some("text/event-stream"));
    assert_eq!(header("cache-control").as_deref(), Some("no-cache"));
    assert!(
        ids(&events.next_servers(STEP)).is_empty(),
        "first event: the list now"
    );
    let yjs_only = Events::subscribe(at.addr, "/api/registry/events?kind=yjs");
    assert!(ids(&yjs_only.next_servers(STEP)).is_empty());

    let started = Instant::now();
    let mut echo = reg.spawn(&["echo", "--port", "0"]);
    let listening = echo.listening();
    let printed = started.elapsed();
    let doc = events.next_servers(PUSH_BOUND);
    let arrived = started.elapsed();
    assert_eq!(ids(&doc), vec![listening.id.clone().unwrap()]);
    println!(
        "SSE: server start → event {arrived:?} (of which listening line {printed:?}, push {:?})",
        arrived - printed
    );

    let stopped = Instant::now();
    echo.signal(libc::SIGTERM);
    let doc = events.next_servers(PUSH_BOUND);
    println!("SSE: SIGTERM → event without it {:?}", stopped.elapsed());
    assert!(ids(&doc).is_empty());
    echo.wait_exit(STEP);

    let (killed, _) = reg.echo(&[]);
    assert_eq!(ids(&events.next_servers(PUSH_BOUND)).len(), 1);
    let sent = Instant::now();
    killed.signal(libc::SIGKILL);
    assert!(ids(&events.next_servers(PUSH_BOUND)).is_empty());
    println!("SSE: SIGKILL → event without it {:?}", sent.elapsed());

    assert!(
        yjs_only.quiet_for(Duration::from_millis(300)),
        "a subscriber whose filtered list did not change gets no event"
    );

    // Open streams do not hold the endpoint up: SIGTERM ends them and it exits at once.
    serve.signal(libc::SIGTERM);
    assert!(serve.wait_exit(PUSH_BOUND).success());
}

#[test]
fn static_serves_a_users_site_with_the_api_beside_it() {
    let reg = Registry::new();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<p>my app</p>").unwrap();
    std::fs::create_dir(site.path().join("assets")).unwrap();
    std::fs::write(site.path().join("assets/app.js"), "console.log(1)").unwrap();
    let dir = site.path().to_str().unwrap();
    let (_serve, at) = reg.serve(&["--static", dir]);
    assert_eq!(get(at.addr, "/", &[]).body, "<p>my app</p>");
    let js = get(at.addr, "/assets/app.js", &[]);
    assert_eq!(js.body, "console.log(1)");
    assert!(js.header("content-type").unwrap().contains("javascript"));
    let route = get(at.addr, "/some/client/route", &[]);
    assert_eq!((route.status, route.body.as_str()), (200, "<p>my app</p>"));
    assert_eq!(get(at.addr, "/api/registry", &[]).json()["version"], 1);
    assert_eq!(get(at.addr, "/wsreg-client/src/index.js", &[]).status, 200);

    let out = reg.output(&["serve", "--port", "0", "--static", "/no/such/dir"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/dir") && err.contains("not a directory"),
        "{err}"
    );
}

#[test]
fn a_taken_port_is_reported_clearly() {
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&[]);
    let port = at.addr.port().to_string();
    let out = reg.output(&["serve", "--port", &port]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port} is already in use")) && err.contains("--port"),
        "{err}"
    );
}

/// A registration is in the very next answer, however the endpoint watches: with a
/// fresh HOME (no ~/.peer-plan at all, as on a new machine) and by polling.
#[test]
fn the_answer_is_exact_on_a_fresh_home_and_when_polling() {
    for (mode, poll) in [("fresh HOME", false), ("WSREG_WATCH=poll", true)] {
        let home = tempfile::tempdir().unwrap();
        let spawn = |args: &[&str]| {
            let mut cmd = std::process::Command::new(common::WSREG);
            cmd.args(args)
                .env("HOME", home.path())
                .env_remove("WSREG_REGISTRY")
                .env("WSREG_LOG", "warn")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped());
            if poll {
                cmd.env("WSREG_WATCH", "poll");
            }
            common::Proc::spawn(cmd)
        };
        let mut serve = spawn(&["serve", "--port", "0"]);
        let at = serve.listening();
        let mut echoes = Vec::new();
        for n in 1..=3 {
            let mut echo = spawn(&["echo"]);
            echo.listening();
            echoes.push(echo);
            let listed = ids(&get(at.addr, "/api/registry", &[]).json());
            assert_eq!(
                listed.len(),
                n,
                "{mode}: the registration is not in the next answer"
            );
        }
    }
}

#[test]
fn without_port_a_taken_default_moves_to_the_next_free_port_as_vite_does() {
    // 5173 held here (or by whoever holds it already, a Vite app say): either way the
    // endpoint must not fail, and must say where it listens.
    let _held = std::net::TcpListener::bind("127.0.0.1:5173");
    let reg = Registry::new();
    let mut serve = reg.spawn(&["serve"]);
    let at = serve.listening();
    let port = at.addr.port();
    assert!((5174..=5193).contains(&port), "listening on {port}");
    assert_eq!(get(at.addr, "/api/registry", &[]).status, 200);
}

#[test]
fn demo_runs_three_echo_servers_and_leaves_the_registry_as_it_found_it() {
    let reg = Registry::new();
    let (mut before, before_at) = reg.echo(&["--name", "was here first"]);
    let mut demo = reg.spawn(&["demo", "--port", "0"]);
    let page = demo.line_where("the serve line", |l| l.starts_with("serve listening on "));
    let url = page.rsplit(' ').next().unwrap();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let doc = get(addr, "/api/registry?project=demo", &[]).json();
    let names: Vec<&str> = doc["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo 1", "echo 2", "echo 3"]);
    assert_eq!(get(addr, "/", &[]).status, 200);

    demo.signal(libc::SIGINT);
    assert!(demo.wait_exit(Duration::from_secs(2)).success());
    assert_eq!(reg.ids(), vec![before_at.id.unwrap()]);
    before.signal(libc::SIGTERM);
    assert!(before.wait_exit(STEP).success());
    assert!(reg.ids().is_empty());
}

#[test]
fn a_new_subscriber_gets_the_list_as_it_is_now_first() {
    // Servers that registered before anyone subscribed are in the very first event, with
    // probes off (nothing else would publish) and on.
    for interval in ["0", "5s"] {
        let reg = Registry::new();
        let (_serve, at) = reg.serve(&["--health-interval", interval]);
        let (_echo, echo) = reg.echo(&[]);
        common::eventually("listed", STEP, || {
            ids(&get(at.addr, "/api/registry", &[]).json()).len() == 1
        });
        let events = Events::subscribe(at.addr, "/api/registry/events");
        assert_eq!(
            ids(&events.next_servers(STEP)),
            vec![echo.id.clone().unwrap()],
            "interval {interval}"
        );
    }
}
