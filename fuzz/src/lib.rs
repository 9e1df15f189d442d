//! What each fuzz target checks, beyond "does not panic".
//!
//! The targets in `fuzz_targets/` are one line each and call these functions, so the
//! properties are written once and read in one place. A property that fails panics, and
//! libFuzzer saves the input under `artifacts/<target>/`; a fixed one is then kept under
//! `regressions/<target>/` (replayed by `run.sh` before every run) and as a test in
//! `crates/wsreg/tests/`.

pub mod guard;
pub mod http;
pub mod registry;
pub mod request;
pub mod yjs;
