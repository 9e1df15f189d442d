//! Every input a fuzzer found a bug with (`fuzz/regressions/<target>/`), replayed against
//! a real `wsreg serve` over a socket, so that a regression fails `cargo test` without a
//! fuzz build. What each target's inputs must get:
//! - `guard_headers`: 403 (the guard once let them through);
//! - `http_request`: no 5xx, and every 4xx is JSON `{"error": "…"}`.

mod common;

use common::{Registry, exchange};

#[test]
fn guard_regressions_are_refused() {
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&[]);
    for file in common::fuzz_regressions("guard_headers") {
        let r = exchange(at.addr, &std::fs::read(&file).unwrap());
        assert_eq!(r.status, 403, "{}: {}", file.display(), r.body);
        assert!(r.json()["error"].is_string(), "{}", file.display());
    }
}

#[test]
fn http_regressions_get_json_errors_and_no_5xx() {
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&[]);
    for file in common::fuzz_regressions("http_request") {
        let r = exchange(at.addr, &std::fs::read(&file).unwrap());
        assert!(r.status < 500, "{}: {}", file.display(), r.status);
        if r.status >= 400 {
            assert!(
                r.json()["error"].is_string(),
                "{}: {}",
                file.display(),
                r.body
            );
        }
    }
}
