#![no_main]
//! The registry file parser and validator on arbitrary bytes (see `src/registry.rs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsreg_fuzz::registry::check(data));
