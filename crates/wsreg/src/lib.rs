//! # wsreg — find every WebSocket server on this machine
//!
//! Servers register in a per-user registry, a directory with one file per server
//! (`~/.peer-plan/servers/<id>.json`); readers show the live ones and push every change
//! to browsers.
//!
//! The model in one page:
//!
//! - **The registry is soft state.** The file caches which registered processes are alive.
//!   Readers judge liveness at read time ([`registry::Judge`]: PID plus its start time, and
//!   leases), so a crashed server is never shown; a live server's [`Registration`] puts its
//!   entry back within a second if it vanishes.
//! - **No lost updates, no shared writes.** Each server writes only its own file, a temp
//!   file renamed into place, and unlinks it to unregister ([`registry::Store`]): no lock,
//!   and readers never see a torn file.
//! - **Bad input loses nothing.** An invalid or oversized file is skipped with a warning,
//!   that file only; nothing is wiped ([`registry::model`]).
//! - **Push, not poll; idle is free.** [`registry::LiveWatch`] sleeps on inotify and on a
//!   pidfd per live server, re-reads only the file an event names, and publishes each
//!   new live list once for every reader. While nothing changes, nothing runs.
//! - **Beyond one machine, the same.** With [`Backend::etcd`] an entry is an etcd key
//!   under a lease its [`Registration`] renews, read by get-then-watch ([`etcd`]); the
//!   API, the SSE stream and the page get the same answers ([`Live`]).
//! - **Agents find servers too.** [`mcp`] serves the live list over MCP (`wsreg mcp`):
//!   tools to list and to wait for servers, and a resource whose changes are pushed.
//!
//! ```no_run
//! # fn main() -> wsreg::Result<()> {
//! let store = wsreg::Store::locate(None)?;
//! let registration = wsreg::Server::new("echo", 54321).name("my server").register(&store)?;
//! // ... serve; the entry stays listed while `registration` lives ...
//! drop(registration); // unregisters
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]

pub mod atomic_file;
pub mod backend;
pub mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod health;
pub mod http;
pub mod mcp;
pub mod registration;
pub mod registry;
pub mod servers;
pub mod shutdown;
pub mod supervise;
#[allow(unsafe_code)]
pub mod sys;
pub mod yjs;

pub use backend::{Backend, Live};
pub use error::{Error, Result};
pub use registration::{Registration, Server};
pub use registry::{Entry, Filter, LiveWatch, Store};
