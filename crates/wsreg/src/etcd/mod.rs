//! The registry beyond one machine: the same entries as etcd keys.
//!
//! A server's entry is the key `<prefix>/servers/<id>`, its value the same entry JSON as
//! an entry file, bound to a lease that the server's [`Registration`](crate::Registration)
//! keeps alive ([`lease`]) and revokes when it leaves. Readers get the prefix and then
//! watch it from the revision the get returned ([`watch`]): the same [`Answer`]s as the
//! directory's watch, so the API, the SSE stream and the page do not know which backend
//! they read. Lease expiry is the end of a remote server; a same-host entry still gets
//! the PID + start-time check and its pidfd, so a killed local server vanishes at once.
//! [`config`] says where the cluster is and how to reach it.
//!
//! [`Answer`]: crate::registry::Answer

pub mod config;
pub mod keys;
pub mod lease;
pub mod members;
pub mod watch;

pub use config::{EtcdConfig, EtcdError};
pub use lease::HeldLease;
pub use watch::EtcdWatch;
