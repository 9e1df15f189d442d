#![no_main]
//! The Host/Origin/Sec-Fetch-Site guard on arbitrary request heads (see `src/guard.rs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsreg_fuzz::guard::check(data));
