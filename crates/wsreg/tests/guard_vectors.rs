//! The shared guard cases (`testdata/guard/cases.json`) against `wsreg::http::Guard`: the
//! Vite plugin's guard passes the same cases (`vite-plugin-wsreg/test/guard-vectors.test.js`).
//! Every fuzz regression input of the guard (`fuzz/regressions/guard_headers/`) must be
//! one of the cases, with the same headers.

mod common;

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use wsreg::http::Guard;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cases() -> Vec<Value> {
    let path = root().join("testdata/guard/cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("cases.json is JSON");
    doc["cases"].as_array().expect("cases").clone()
}

fn pairs(case: &Value) -> Vec<(String, String)> {
    case["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| {
            let pair = pair.as_array().expect("a [name, value] pair");
            assert_eq!(pair.len(), 2, "{pair:?}");
            let text = |v: &Value| v.as_str().expect("a string").to_owned();
            (text(&pair[0]), text(&pair[1]))
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The guard's outcome: `allowed`, or the check that refused (`host`, `origin`,
/// `cross-site`).
fn outcome(case: &Value) -> String {
    let guard = Guard {
        allowed_hosts: strings(&case["config"]["allowedHosts"]),
        allowed_origins: strings(&case["config"]["allowedOrigins"]),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in pairs(case) {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("a header value"),
        );
    }
    match guard.check(&headers) {
        Ok(()) => "allowed".to_owned(),
        Err(refusal) => refusal.check().to_owned(),
    }
}

#[test]
fn every_case_gets_its_expected_outcome() {
    let cases = cases();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        assert!(
            case["why"].as_str().is_some_and(|w| w.len() >= 10),
            "{name}: say why"
        );
        let expected = match case["expect"].as_str() {
            Some("allowed") => "allowed",
            Some("refused") => case["refusedBy"].as_str().expect("refusedBy"),
            other => panic!("{name}: expect {other:?}"),
        };
        assert!(
            ["allowed", "host", "origin", "cross-site"].contains(&expected),
            "{name}: {expected}"
        );
        let got = outcome(case);
        if got != expected {
            failures.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn case_names_are_unique() {
    let mut names: Vec<String> = cases()
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate case names");
}

/// The header fields of a raw request head (`fuzz/regressions/guard_headers/*.http`).
fn head_fields(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').expect("name: value");
            (name.to_owned(), value.trim_matches([' ', '\t']).to_owned())
        })
        .collect()
}

#[test]
fn every_fuzz_regression_of_the_guard_is_a_case() {
    let cases = cases();
    for file in common::fuzz_regressions("guard_headers") {
        let file_name = file.file_name().unwrap().to_str().unwrap();
        let case = cases
            .iter()
            .find(|c| c["fuzz"].as_str() == Some(file_name))
            .unwrap_or_else(|| {
                panic!("no case in testdata/guard/cases.json has fuzz {file_name:?}")
            });
        assert_eq!(
            pairs(case),
            head_fields(&std::fs::read(&file).unwrap()),
            "{file_name}: the case's headers are not the file's"
        );
        assert_eq!(case["expect"], "refused", "{file_name}");
    }
}
