//! One room: a Yjs document, its awareness (who is here), the connections that share it,
//! and, with a data directory, its update log.
//!
//! Every operation runs under the room's lock and is synchronous (yrs is, and the log
//! fsyncs), so callers run it on a blocking thread. Replies and broadcasts are queued to
//! the connections *under the lock*, so every connection sees the document's updates in
//! the order the room applied them. As in the y-websocket server, awareness updates go to
//! every connection (the sender too), document updates to every other one.
//!
//! An update is handled in this order: decode it (a malformed one is refused before
//! anything happens), check the document size limit, append it to the log and fsync,
//! apply it, forward it to the other connections. So nothing a connection can observe —
//! a forwarded update, or a sync step 2 built from the document — ever contains an update
//! that is not on disk yet. If the log fails, the update is neither applied nor
//! forwarded, and the room is broken: its connections are closed and the next one
//! reloads it from the file.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::mpsc;
use yrs::block::ClientID;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update, WriteTxn};

use super::message::{self, Incoming, ProtocolError};
use super::update_log::{MAX_RECORD, UpdateLog};
use crate::atomic_file::FileError;

/// How many frames may wait for a slow connection before it is dropped.
pub const OUTBOX_FRAMES: usize = 4096;

/// While open, the log is compacted once it grows past this many times the size it had
/// after its last compaction (plus [`COMPACT_SLACK`]).
const COMPACT_FACTOR: u64 = 4;
const COMPACT_SLACK: u64 = 1 << 20;

/// The per-server size limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest message a client may send, in bytes.
    pub max_message: usize,
    /// The largest a document may grow, in bytes of its encoded state.
    pub max_doc: usize,
}

/// A connection, as the rooms know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// A new id, unique in this process.
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// What a room asks a connection's writer to do.
#[derive(Debug)]
pub enum Outgoing {
    /// Send this binary frame.
    Frame(Vec<u8>),
    /// Close with this error's code and reason.
    Close(ProtocolError),
}

/// The sending side of a connection's queue.
pub type Outbox = mpsc::Sender<Outgoing>;

/// A connection's queue: the sender goes to [`Room::join`], the receiver to the writer.
pub fn outbox() -> (Outbox, mpsc::Receiver<Outgoing>) {
    mpsc::channel(OUTBOX_FRAMES)
}

pub struct Room {
    name: String,
    limits: Limits,
    state: Mutex<State>,
}

struct State {
    awareness: Awareness,
    peers: HashMap<ConnId, Peer>,
    log: Option<UpdateLog>,
    /// Bytes in the log right after its last compaction.
    compacted_len: u64,
    /// An upper bound of the encoded document's size: exact at load, then grown by the
    /// size of every update applied, and recomputed when it nears the limit.
    size: usize,
    max_doc: usize,
    /// The log failed: no more updates until the room is reloaded.
    broken: bool,
}

struct Peer {
    outbox: Outbox,
    /// The awareness client ids this connection announced, removed when it leaves.
    clients: HashSet<ClientID>,
}

impl Room {
    /// Opens a room: loads its document from `log_path` (when persistent) and compacts
    /// the log into one record.
    pub fn load(name: &str, log_path: Option<PathBuf>, limits: Limits) -> Result<Room, FileError> {
        let doc = Doc::new();
        let log = match log_path {
            None => None,
            Some(path) => {
                let recovered = UpdateLog::read(&path)?;
                let count = recovered.updates.len();
                for (i, bytes) in recovered.updates.into_iter().enumerate() {
                    let applied = Update::decode_v1(&bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|u| apply_update(&doc, u));
                    if let Err(e) = applied {
                        tracing::warn!("{}: record {i} of {count} skipped: {e}", path.display());
                    }
                }
                let state = encode_state(&doc);
                let content = (!doc_is_empty(&doc)).then_some(state.as_slice());
                Some(UpdateLog::compact(&path, content)?)
            }
        };
        let size = encode_state(&doc).len();
        let compacted_len = log.as_ref().map_or(0, UpdateLog::len);
        Ok(Room {
            name: name.to_owned(),
            limits,
            state: Mutex::new(State {
                awareness: Awareness::new(doc),
                peers: HashMap::new(),
                log,
                compacted_len,
                size,
                max_doc: limits.max_doc,
                broken: false,
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection and queues the server's greeting: sync step 1 (our state
    /// vector, so the client sends what we miss) and the awareness states we know.
    pub fn join(&self, conn: ConnId, outbox: Outbox) {
        let mut state = self.lock();
        let sv = state.awareness.doc().transact().state_vector();
        let mut greeting = vec![Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1()];
        greeting.extend(state.awareness_frame());
        state.peers.insert(
            conn,
            Peer {
                outbox,
                clients: HashSet::new(),
            },
        );
        for frame in greeting {
            state.send(conn, frame);
        }
    }

    /// Handles one binary frame from `conn`. An error means: close that connection with
    /// the error's code (the room itself is unaffected, unless its storage failed).
    pub fn handle(&self, conn: ConnId, frame: &[u8]) -> Result<(), ProtocolError> {
        let incoming = message::decode(frame, self.limits.max_message)?;
        let mut state = self.lock();
        match incoming {
            Incoming::SyncStep1(sv) => {
                let update = state
                    .awareness
                    .doc()
                    .transact()
                    .encode_state_as_update_v1(&sv);
                state.send(
                    conn,
                    Message::Sync(SyncMessage::SyncStep2(update)).encode_v1(),
                );
            }
            Incoming::Update { raw, update, .. } => state.apply(conn, raw, update)?,
            Incoming::Awareness(update) => {
                let summary = state
                    .awareness
                    .apply_update_summary(update)
                    .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
                if let Some(summary) = summary {
                    if let Some(peer) = state.peers.get_mut(&conn) {
                        peer.clients
                            .extend(summary.added.iter().chain(&summary.updated));
                        for id in &summary.removed {
                            peer.clients.remove(id);
                        }
                    }
                    // To the sender too, as the y-websocket server does: a client that
                    // hears nothing for 30 s reconnects, and its own awareness renewals
                    // (every 15 s) coming back are what a lone client hears.
                    state.broadcast(None, frame);
                }
            }
            Incoming::QueryAwareness => {
                if let Some(frame) = state.awareness_frame() {
                    state.send(conn, frame);
                }
            }
            Incoming::Auth => {}
        }
        Ok(())
    }

    /// Removes a connection and tells the others that its awareness states are gone.
    /// Returns whether the room is now empty.
    pub fn leave(&self, conn: ConnId) -> bool {
        let mut state = self.lock();
        state.remove_peer(conn);
        state.peers.is_empty()
    }

    /// Closes every connection with `error` (the room is being discarded).
    pub fn close_all(&self, error: &ProtocolError) {
        let mut state = self.lock();
        for (_, peer) in state.peers.drain() {
            let _ = peer.outbox.try_send(Outgoing::Close(error.clone()));
        }
    }

    /// Compacts the log (called when the last connection has left).
    pub fn compact(&self) -> Result<(), FileError> {
        self.lock().compact()
    }

    /// The whole document, encoded as one update.
    pub fn state(&self) -> Vec<u8> {
        encode_state(self.lock().awareness.doc())
    }
}

impl State {
    /// Stores, applies and forwards a document update (see the module docs for the order).
    fn apply(&mut self, from: ConnId, raw: Vec<u8>, update: Update) -> Result<(), ProtocolError> {
        if self.broken {
            return Err(ProtocolError::Storage(
                "the document's log failed earlier".into(),
            ));
        }
        if update.is_empty() {
            return Ok(());
        }
        self.make_room_for(raw.len())?;
        if let Some(log) = &mut self.log {
            log.append(&raw).map_err(|e| {
                self.broken = true;
                ProtocolError::Storage(error_chain(&e))
            })?;
        }
        apply_update(self.awareness.doc(), update).map_err(ProtocolError::Malformed)?;
        self.size += raw.len();
        let frame = Message::Sync(SyncMessage::Update(raw)).encode_v1();
        self.broadcast(Some(from), &frame);
        if let Some(log) = &self.log
            && log.len() > COMPACT_FACTOR * self.compacted_len + COMPACT_SLACK
        {
            self.compact().map_err(|e| {
                self.broken = true;
                ProtocolError::Storage(error_chain(&e))
            })?;
        }
        Ok(())
    }

    /// Refuses an update of `len` bytes that could take the document past its limit.
    fn make_room_for(&mut self, len: usize) -> Result<(), ProtocolError> {
        let limit = self.max_doc.min(MAX_RECORD);
        if self.size + len <= limit {
            return Ok(());
        }
        self.size = encode_state(self.awareness.doc()).len();
        match self.size + len <= limit {
            true => Ok(()),
            false => Err(ProtocolError::DocumentFull { limit }),
        }
    }

    fn compact(&mut self) -> Result<(), FileError> {
        let Some(log) = &self.log else {
            return Ok(());
        };
        if self.broken || log.records() <= 1 {
            return Ok(());
        }
        let state = encode_state(self.awareness.doc());
        let log = UpdateLog::compact(log.path(), Some(&state))?;
        self.compacted_len = log.len();
        self.size = state.len();
        self.log = Some(log);
        Ok(())
    }

    /// Every known awareness state as one frame, if there is any.
    fn awareness_frame(&self) -> Option<Vec<u8>> {
        let update = self.awareness.update().ok()?;
        (!update.clients.is_empty()).then(|| Message::Awareness(update).encode_v1())
    }

    fn send(&mut self, to: ConnId, frame: Vec<u8>) {
        let full = match self.peers.get(&to) {
            Some(peer) => peer.outbox.try_send(Outgoing::Frame(frame)).is_err(),
            None => false,
        };
        if full {
            self.drop_slow(to);
        }
    }

    /// Queues `frame` for every connection but `except`.
    fn broadcast(&mut self, except: Option<ConnId>, frame: &[u8]) {
        let slow: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(id, _)| Some(**id) != except)
            .filter(|(_, peer)| {
                peer.outbox
                    .try_send(Outgoing::Frame(frame.to_vec()))
                    .is_err()
            })
            .map(|(id, _)| *id)
            .collect();
        for id in slow {
            self.drop_slow(id);
        }
    }

    /// A connection whose queue is full (or whose writer is gone) is dropped: its queue
    /// closes, and its writer closes the socket once it has sent what was queued.
    fn drop_slow(&mut self, conn: ConnId) {
        tracing::debug!("dropping a connection that does not keep up");
        self.remove_peer(conn);
    }

    fn remove_peer(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        let gone: Vec<ClientID> = peer.clients.into_iter().collect();
        if gone.is_empty() {
            return;
        }
        for id in &gone {
            self.awareness.remove_state(*id);
        }
        if let Ok(update) = self.awareness.update_with_clients(gone) {
            let frame = Message::Awareness(update).encode_v1();
            self.broadcast(None, &frame);
        }
    }
}

/// Applies an update in a transaction of its own.
///
/// An update that refers to content the document does not have is kept *pending* by yrs
/// until that content arrives, and every encoding of the document (the answer to a sync
/// step 1, a compaction) includes it. yrs decodes some malformed updates into pending
/// blocks whose encoding it cannot read back, and from then on every encoding of the
/// document panics (found by fuzzing: one 18-byte frame broke a room for good, and with a
/// data directory, across restarts). So a pending part that does not survive the round
/// trip is dropped again at once and the update refused; a sound pending part stays.
fn apply_update(doc: &Doc, update: Update) -> Result<(), String> {
    let mut txn = doc.transact_mut();
    txn.apply_update(update).map_err(|e| e.to_string())?;
    let store = txn.store();
    let update_ok = store
        .pending_update()
        .is_none_or(|p| Update::decode_v1(&p.update.encode_v1()).is_ok());
    let deletes_ok = store.pending_ds().is_none_or(|ds| {
        // An update with no blocks (a zero count) and this delete set.
        let bytes = [&[0u8][..], &ds.encode_v1()].concat();
        Update::decode_v1(&bytes).is_ok()
    });
    if update_ok && deletes_ok {
        return Ok(());
    }
    txn.prune_pending();
    Err("the update refers to missing content in a form that cannot be stored".into())
}

fn encode_state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn doc_is_empty(doc: &Doc) -> bool {
    let txn = doc.transact();
    txn.state_vector() == StateVector::default() && !txn.has_missing_updates()
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::sync::AwarenessUpdate;
    use yrs::sync::awareness::AwarenessUpdateEntry;
    use yrs::{GetString, Text};

    const LIMITS: Limits = Limits {
        max_message: 1 << 20,
        max_doc: 1 << 20,
    };

    fn edit(text: &str) -> Vec<u8> {
        let doc = Doc::new();
        doc.get_or_insert_text("t")
            .insert(&mut doc.transact_mut(), 0, text);
        Message::Sync(SyncMessage::Update(encode_state(&doc))).encode_v1()
    }

    fn text_of(state: &[u8]) -> String {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("t");
        doc.transact_mut()
            .apply_update(Update::decode_v1(state).unwrap())
            .unwrap();
        text.get_string(&doc.transact())
    }

    fn drain(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<Message> {
        let mut out = Vec::new();
        while let Ok(Outgoing::Frame(f)) = rx.try_recv() {
            out.push(Message::decode_v1(&f).unwrap());
        }
        out
    }

    #[test]
    fn updates_reach_the_others_and_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("room-x.ylog");
        let room = Room::load("x", Some(path.clone()), LIMITS).unwrap();
        let (a, b) = (ConnId::next(), ConnId::next());
        let (tx_a, mut rx_a) = outbox();
        let (tx_b, mut rx_b) = outbox();
        room.join(a, tx_a);
        room.join(b, tx_b);
        assert!(matches!(
            drain(&mut rx_a)[..],
            [Message::Sync(SyncMessage::SyncStep1(_))]
        ));
        drain(&mut rx_b);
        room.handle(a, &edit("hello")).unwrap();
        assert!(drain(&mut rx_a).is_empty(), "no echo to the sender");
        assert!(matches!(
            drain(&mut rx_b)[..],
            [Message::Sync(SyncMessage::Update(_))]
        ));
        drop(room); // as after kill -9: no compaction on close
        let room = Room::load("x", Some(path), LIMITS).unwrap();
        assert_eq!(text_of(&room.state()), "hello");
    }

    #[test]
    fn awareness_of_a_leaving_connection_is_removed_for_the_others() {
        let room = Room::load("x", None, LIMITS).unwrap();
        let (a, b) = (ConnId::next(), ConnId::next());
        let (tx_a, mut rx_a) = outbox();
        let (tx_b, mut rx_b) = outbox();
        room.join(a, tx_a);
        room.join(b, tx_b);
        drain(&mut rx_a);
        drain(&mut rx_b);
        let mut clients = HashMap::new();
        clients.insert(
            ClientID::new(42),
            AwarenessUpdateEntry {
                clock: 1,
                json: r#"{"user":"ann"}"#.into(),
            },
        );
        let frame = Message::Awareness(AwarenessUpdate { clients }).encode_v1();
        room.handle(a, &frame).unwrap();
        assert_eq!(drain(&mut rx_b).len(), 1);
        assert_eq!(
            drain(&mut rx_a).len(),
            1,
            "awareness goes back to its sender too"
        );
        assert!(!room.leave(a));
        match &drain(&mut rx_b)[..] {
            [Message::Awareness(update)] => {
                let entry = &update.clients[&ClientID::new(42)];
                assert_eq!(&*entry.json, "null");
                assert_eq!(entry.clock, 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(room.leave(b));
    }

    #[test]
    fn an_update_past_the_document_limit_is_refused_and_not_stored() {
        let limits = Limits {
            max_message: 1 << 20,
            max_doc: 100,
        };
        let room = Room::load("x", None, limits).unwrap();
        let a = ConnId::next();
        let (tx, _rx) = outbox();
        room.join(a, tx);
        room.handle(a, &edit("small")).unwrap();
        let err = room.handle(a, &edit(&"x".repeat(200))).unwrap_err();
        assert_eq!(err, ProtocolError::DocumentFull { limit: 100 });
        assert_eq!(text_of(&room.state()), "small");
    }

    #[test]
    fn a_pending_update_that_cannot_be_encoded_is_refused_and_the_room_keeps_working() {
        // Found by fuzzing: items whose parent is missing, in forms yrs decodes but cannot
        // encode back. Before the fix the next sync step 1 panicked, for good.
        let frames: [&[u8]; 2] = [
            &[0, 2, 15, 1, 1, 1, 0, 2, 0x22, 1, 3, 0, 0, 0, 1, 5, 0xc4, 1],
            &[
                0, 2, 15, 1, 1, 0xfe, 0, 0, 2, 0, 1, 0x25, 0, 1, b'a', 1, b'z', 0,
            ],
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("room-x.ylog");
        let room = Room::load("x", Some(path.clone()), LIMITS).unwrap();
        let a = ConnId::next();
        let (tx, mut rx) = outbox();
        room.join(a, tx);
        room.handle(a, &edit("kept")).unwrap();
        for frame in frames {
            let err = room.handle(a, frame).unwrap_err();
            assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
        }
        drain(&mut rx);
        let step1 = Message::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1();
        room.handle(a, &step1).unwrap();
        assert!(matches!(
            drain(&mut rx)[..],
            [Message::Sync(SyncMessage::SyncStep2(_))]
        ));
        drop(room);
        let room = Room::load("x", Some(path), LIMITS).unwrap();
        assert_eq!(
            text_of(&room.state()),
            "kept",
            "the log replays without them"
        );
    }
}
