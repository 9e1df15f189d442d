//! Yjs sync, as the y-websocket server speaks it: one document per room (the URL path),
//! shared by every connection to that room, optionally persisted in a data directory.
//!
//! - [`message`]: one client frame, decoded strictly, and the errors that close a
//!   connection with their WebSocket close codes.
//! - [`room`]: a document, its awareness and its connections; the order in which an
//!   update is applied, stored and forwarded, and the group commit of the log.
//! - [`awareness`]: who is in a room, by y-protocols' rules, in one small map.
//! - [`batch`]: broadcasts held back under load and written to each peer together.
//! - [`outbox`]: a connection's queue of outgoing frames, shared between peers and
//!   bounded in bytes.
//! - [`rooms`]: the open rooms, loaded on first use and unloaded when empty.
//! - [`ticker`]: the server's one timer, ticking every connection for its pings.
//! - [`update_log`]: a document's append-only log file and its compaction.
//! - [`room_name`]: room names and the file names they are stored under.
//! - [`heap`]: giving an unloaded room's memory back to the system (glibc's per-thread
//!   cache turned off, so that `malloc_trim` can).
//!
//! The WebSocket server around them is [`crate::servers::yjs`].

pub mod awareness;
pub mod batch;
pub mod heap;
pub mod message;
pub mod outbox;
pub mod room;
pub mod room_name;
pub mod rooms;
pub mod ticker;
pub mod update_log;

pub use message::ProtocolError;
pub use outbox::{DEFAULT_MAX_OUTBOX, Outgoing};
pub use room::{ConnId, Room, Settings};
pub use rooms::Rooms;
pub use ticker::Ticker;
