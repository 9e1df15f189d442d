//! # wsreg — find every WebSocket server on this machine
//!
//! Servers register in a per-user registry file (`~/.peer-plan/servers.json`); readers
//! show the live ones and push every change to browsers.
//!
//! The model in one page:
//!
//! - **The registry is soft state.** The file caches which registered processes are alive.
//!   Readers judge liveness at read time ([`registry::Judge`]: PID plus its start time, and
//!   leases), so a crashed server is never shown; a live server's [`Registration`] puts its
//!   entry back within a second if it vanishes.
//! - **No lost updates.** Writers lock a sibling file, read-modify-write, and replace the
//!   file by `rename` ([`registry::Store`]); readers take no lock and never see a torn file.
//! - **Bad input loses nothing.** An invalid entry is skipped with a warning; a corrupt file
//!   is moved aside, never overwritten ([`registry::model`]).
//! - **Push, not poll.** [`registry::LiveWatch`] watches the registry directory and
//!   publishes each new live list.
//!
//! ```no_run
//! # fn main() -> wsreg::Result<()> {
//! let store = wsreg::Store::locate(None)?;
//! let registration = wsreg::Server::new("echo", 54321).name("my server").register(&store)?;
//! // ... serve; the entry stays listed while `registration` lives ...
//! drop(registration); // unregisters
//! # Ok(()) }
//! ```

pub mod atomic_file;
pub mod error;
pub mod http;
pub mod registration;
pub mod registry;
pub mod servers;
pub mod supervise;
pub mod yjs;

pub use error::{Error, Result};
pub use registration::{Registration, Server};
pub use registry::{Entry, Filter, LiveWatch, Store};
