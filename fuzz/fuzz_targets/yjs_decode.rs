#![no_main]
//! The y-websocket message decoder on arbitrary frames (see `src/yjs.rs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsreg_fuzz::yjs::check(data));
