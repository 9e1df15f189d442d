//! The registry: the formats ([`model`]), the directory of entry files on disk
//! ([`store`]), which entries are alive ([`liveness`], and [`exits`] for learning of an
//! exit at once), which process listens on a port ([`sockets`], over [`sock_diag`]), the
//! selection a reader asks for ([`filter`]) and the live list kept current by push ([`watch`], over [`inotify`]).

pub mod exits;
pub mod filter;
pub mod inotify;
pub mod liveness;
pub mod model;
pub mod sock_diag;
pub mod sockets;
pub mod store;
pub mod watch;

pub use filter::Filter;
pub use liveness::{
    DeadReason, Judge, Listening, ProcessState, ProcessTable, SystemProcesses, Verdict,
};
pub use model::{Entry, EntryError, FormatError, HealthCheck, Timestamp};
pub use store::{FileId, FileRead, Pruned, SkipReason, Skipped, Snapshot, Store};
pub use watch::{Answer, LiveWatch};
