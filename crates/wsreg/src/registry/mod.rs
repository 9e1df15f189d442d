//! The registry: the file format ([`model`]), the file on disk ([`store`]), which entries
//! are alive ([`liveness`]), the selection a reader asks for ([`filter`]) and how changes
//! are noticed ([`watch`]); [`answer_cache`] keeps a judged read for as long as it is exact.

pub mod answer_cache;
pub mod filter;
pub mod liveness;
pub mod model;
pub mod store;
pub mod watch;

pub use answer_cache::{Answer, AnswerCache};
pub use filter::Filter;
pub use liveness::{DeadReason, Judge, ProcessState, ProcessTable, SystemProcesses};
pub use model::{Entry, EntryError, FormatError, Timestamp};
pub use store::{Snapshot, Store};
pub use watch::{LiveList, LiveWatch};
