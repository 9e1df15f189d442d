//! The WebSocket servers wsreg runs and the scaffold they share.
//!
//! Every server is an axum [`Router`](axum::Router) handed to the same scaffold:
//! [`Launch::bind`] (listen on 127.0.0.1, port 0 by default, then register) and
//! [`Bound::serve`] (the Host/Origin guard on every route, graceful shutdown that closes
//! WebSockets with 1001 and unregisters). WebSocket handlers accept and close sockets
//! through [`socket`], so every server enforces its message limit and closes alike.

pub mod echo;
pub mod frame;
pub mod launch;
pub mod probe;
pub mod shared_read;
pub mod socket;
pub mod websocket;
pub mod yjs;

pub use crate::shutdown::{Shutdown, terminate_signal};
pub use launch::{Bound, GRACE, Launch, LaunchError, Listing, stack};
