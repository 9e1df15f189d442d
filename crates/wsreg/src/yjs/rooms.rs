//! The rooms a server has open, loaded lazily and unloaded when their last connection
//! leaves.
//!
//! This map's lock is held only to look a room up, insert or remove it: never across
//! disk I/O. Loading a room (replaying its log) and unloading it (compacting its log)
//! happen under that room's own lock, so a slow disk or a large document delays only
//! its own room, and joins to other rooms go on meanwhile.
//!
//! No room is loaded twice — two loaded copies would append to the same file: a room
//! in the map is loaded by its first join, under its lock; a room whose last connection
//! left is marked closed and compacted under its lock before it leaves the map, and a
//! join that finds it closed (it looked the room up just before) replaces it by a fresh
//! room, which loads the compacted file.
//!
//! The server's signals go to every connection through the rooms ([`Rooms::tick`],
//! [`Rooms::shut_down`]): a connection is in its room from its join to its leave, the
//! only time it needs them. A join after the shutdown began is told at once.

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::message::ProtocolError;
use super::outbox::Outbox;
use super::room::{ConnId, JoinError, Room, Settings};
use super::room_name;
use crate::atomic_file::{FileError, fail};

pub struct Rooms {
    open: Mutex<HashMap<String, Arc<Room>>>,
    data_dir: Option<PathBuf>,
    settings: Settings,
    /// Notified when a room opens: the server's ticker sleeps while none is open.
    opened: Notify,
    /// The server is shutting down.
    closing: AtomicBool,
}

impl Rooms {
    /// Rooms kept in memory only (`data_dir` `None`) or persisted in `data_dir`, which
    /// is created (mode 0700) if missing.
    pub fn new(data_dir: Option<PathBuf>, settings: Settings) -> Result<Rooms, FileError> {
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
            settings,
            opened: Notify::new(),
            closing: AtomicBool::new(false),
        })
    }

    /// Whether rooms are stored on disk (joining and leaving then do disk I/O).
    pub fn persistent(&self) -> bool {
        self.data_dir.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Room>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins `conn` to room `name`, loading the room first if it is not open.
    pub fn join(&self, name: &str, conn: ConnId, outbox: Outbox) -> Result<Arc<Room>, FileError> {
        loop {
            let room = self
                .lock()
                .entry(name.to_owned())
                .or_insert_with(|| self.create(name))
                .clone();
            match room.join(conn, outbox.clone()) {
                Ok(()) => {
                    // After the join: a shutdown that began before it is seen here, one
                    // that begins later finds this connection in its room.
                    if self.closing.load(Ordering::SeqCst) {
                        outbox.shut_down();
                    }
                    return Ok(room);
                }
                Err(JoinError::Closed) => self.remove(&room),
                Err(JoinError::Load(e)) => {
                    self.remove(&room);
                    return Err(e);
                }
            }
        }
    }

    fn create(&self, name: &str) -> Arc<Room> {
        let path = self
            .data_dir
            .as_ref()
            .map(|d| d.join(room_name::file_name(name)));
        self.opened.notify_one();
        Room::new(name, path, self.settings)
    }

    /// Resolves once a room is open (at once if one is).
    pub async fn any_open(&self) {
        // A room opened after this check left a permit in `opened`.
        if self.lock().is_empty() {
            self.opened.notified().await;
        }
    }

    /// Tells every connection of every open room that the ping interval went by.
    pub fn tick(&self) {
        self.for_each_outbox(Outbox::tick);
    }

    /// Tells every connection, now and joining later, that the server is shutting down.
    pub fn shut_down(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.for_each_outbox(Outbox::shut_down);
    }

    fn for_each_outbox(&self, f: impl Fn(&Outbox)) {
        // The rooms are taken out of the map's lock first: joins go on meanwhile.
        let rooms: Vec<Arc<Room>> = self.lock().values().cloned().collect();
        for room in rooms {
            room.for_each_outbox(&f);
        }
    }

    /// Takes `room` out of the map, if it is still there (and not a newer room).
    fn remove(&self, room: &Arc<Room>) {
        let mut open = self.lock();
        if open.get(room.name()).is_some_and(|r| Arc::ptr_eq(r, room)) {
            open.remove(room.name());
        }
    }

    /// Removes `conn` from `room`; unloads the room (compacting its log) if it is empty.
    /// Returns whether the room was unloaded and freed: the caller then gives the freed
    /// memory back to the system ([`crate::sys::release_free_memory`]) once it has dropped
    /// what it holds itself (the connection's socket and queues).
    pub fn leave(&self, room: Arc<Room>, conn: ConnId) -> bool {
        if !room.leave(conn) {
            return false;
        }
        self.remove(&room);
        Arc::into_inner(room).is_some()
    }

    /// Unloads a room whose log failed: every connection is closed with `error`, and the
    /// next connection loads the room again from its file.
    pub fn discard(&self, room: &Arc<Room>, error: &ProtocolError) {
        self.remove(room);
        tracing::error!("room {:?}: {error}; closed its connections", room.name());
        room.close_all(error);
    }
}
