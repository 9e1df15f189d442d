//! The rooms a server has open, loaded lazily and unloaded when their last connection
//! leaves.
//!
//! Joining and leaving take this map's lock first and the room's second, so "find or
//! load the room, then join it" and "leave, and unload the room if it is now empty" are
//! each atomic: a room in the map always has a connection (except while it loads), and
//! no room is loaded twice — two loaded copies would append to the same file. An unload
//! compacts the room's log before the lock is released, so the next load reads the
//! compacted file.

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::message::ProtocolError;
use super::room::{ConnId, Limits, Outbox, Room};
use super::room_name;
use crate::atomic_file::{FileError, fail};

pub struct Rooms {
    open: Mutex<HashMap<String, Arc<Room>>>,
    data_dir: Option<PathBuf>,
    limits: Limits,
}

impl Rooms {
    /// Rooms kept in memory only (`data_dir` `None`) or persisted in `data_dir`, which
    /// is created (mode 0700) if missing.
    pub fn new(data_dir: Option<PathBuf>, limits: Limits) -> Result<Rooms, FileError> {
        if let Some(dir) = &data_dir {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(fail("create", dir))?;
        }
        Ok(Rooms {
            open: Mutex::new(HashMap::new()),
            data_dir,
            limits,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Room>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins `conn` to room `name`, loading the room first if it is not open.
    pub fn join(&self, name: &str, conn: ConnId, outbox: Outbox) -> Result<Arc<Room>, FileError> {
        let mut open = self.lock();
        let room = match open.get(name) {
            Some(room) => room.clone(),
            None => {
                let path = self
                    .data_dir
                    .as_ref()
                    .map(|d| d.join(room_name::file_name(name)));
                let room = Arc::new(Room::load(name, path, self.limits)?);
                open.insert(name.to_owned(), room.clone());
                room
            }
        };
        room.join(conn, outbox);
        Ok(room)
    }

    /// Removes `conn` from `room`; unloads the room (compacting its log) if it is empty.
    pub fn leave(&self, room: &Arc<Room>, conn: ConnId) {
        let mut open = self.lock();
        if !room.leave(conn) {
            return;
        }
        if open.get(room.name()).is_some_and(|r| Arc::ptr_eq(r, room)) {
            open.remove(room.name());
            if let Err(e) = room.compact() {
                tracing::warn!(
                    "room {:?}: cannot compact its log: {}",
                    room.name(),
                    crate::error::Chain(&e)
                );
            }
        }
    }

    /// Unloads a room whose log failed: every connection is closed with `error`, and the
    /// next connection loads the room again from its file.
    pub fn discard(&self, room: &Arc<Room>, error: &ProtocolError) {
        let mut open = self.lock();
        if open.get(room.name()).is_some_and(|r| Arc::ptr_eq(r, room)) {
            open.remove(room.name());
        }
        tracing::error!("room {:?}: {error}; closed its connections", room.name());
        room.close_all(error);
    }
}
