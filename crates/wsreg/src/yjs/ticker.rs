//! A Yjs server's one timer ([`Ticker`]): every ping interval while a room is open, a
//! tick to every connection ([`Rooms::tick`]); when the server's shutdown begins, the
//! shutdown to every connection ([`Rooms::shut_down`]). Its task is stopped when the
//! ticker is dropped, with the server.
//!
//! One timer for the server, not one per connection: a `tokio::time::Interval` cost
//! every connection 128 bytes of heap, and its wait for the shutdown 88 bytes of its
//! task. Each tick walks the open rooms, as often as the timers it replaces fired; the
//! ticker sleeps while no room is open, so an idle server never wakes.

use std::sync::Arc;
use std::time::Duration;

use super::Rooms;
use crate::shutdown::Shutdown;

/// The timer of one server; its task stops when this is dropped.
pub struct Ticker {
    task: tokio::task::AbortHandle,
}

impl Ticker {
    /// Starts ticking every `every` for `rooms`, until `shutdown` begins or the ticker
    /// is dropped. Needs a tokio runtime.
    pub fn start(rooms: Arc<Rooms>, every: Duration, shutdown: Shutdown) -> Ticker {
        let ticks = async move {
            tokio::select! {
                () = shutdown.requested() => rooms.shut_down(),
                () = async {
                    loop {
                        rooms.any_open().await;
                        tokio::time::sleep(every).await;
                        rooms.tick();
                    }
                } => {}
            }
        };
        Ticker {
            task: tokio::spawn(ticks).abort_handle(),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
