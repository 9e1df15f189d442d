#![no_main]
//! The registry endpoint (guard, routes, query parsing) on arbitrary request heads (see
//! `src/http.rs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsreg_fuzz::http::check(data));
