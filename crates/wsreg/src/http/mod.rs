//! HTTP and WebSocket plumbing shared by every wsreg server.

pub mod guard;

pub use guard::Guard;
