//! One y-websocket message, decoded strictly, and the protocol errors that close a
//! connection (each with its WebSocket close code).
//!
//! The y-websocket protocol sends one message per binary frame:
//! `[type: varuint][payload]`, where type 0 is sync (`[0 step1 | 1 step2 | 2 update]`
//! then a length-prefixed state vector or update), 1 awareness (a length-prefixed
//! awareness update), 2 auth and 3 query-awareness. yrs's own reader treats a buffer
//! that ends early as "no more messages", which would silently swallow a truncated
//! frame, so this decoder reads exactly one message and insists that it ends exactly at
//! the end of the frame. The update in a sync message is decoded here too, so a
//! malformed one is refused before anything is stored or applied.

use yrs::encoding::read::{self, Cursor, Read};
use yrs::sync::AwarenessUpdate;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{StateVector, Update};

/// y-websocket message types.
pub const MSG_SYNC: u64 = 0;
pub const MSG_AWARENESS: u64 = 1;
pub const MSG_AUTH: u64 = 2;
pub const MSG_QUERY_AWARENESS: u64 = 3;

/// Sync message subtypes.
pub const SYNC_STEP_1: u64 = 0;
pub const SYNC_STEP_2: u64 = 1;
pub const SYNC_UPDATE: u64 = 2;

/// WebSocket close codes (RFC 6455, section 7.4.1).
pub mod close_code {
    /// A frame of a kind this endpoint does not accept (text, unknown message types).
    pub const UNSUPPORTED: u16 = 1003;
    /// A message that does not decode (truncated, malformed).
    pub const INVALID: u16 = 1007;
    /// A message over the size limit, or one that would make the document too large.
    pub const TOO_BIG: u16 = 1009;
    /// The server could not do what the message asked (storage failed).
    pub const INTERNAL: u16 = 1011;
    /// The connection fell too far behind; it may reconnect.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// A decoded client message.
#[derive(Debug)]
pub enum Incoming {
    /// "Here is my state vector; send me what I am missing."
    SyncStep1(StateVector),
    /// Document changes: a sync step 2 (the answer to our step 1) or a live edit, which
    /// the server treats alike. `raw` is the update as received (what is stored and
    /// forwarded), `update` the same decoded; `live` says the frame is an update message
    /// (0/2), which the room forwards as it came, without encoding it again.
    Update {
        raw: Vec<u8>,
        update: Update,
        live: bool,
    },
    /// Awareness states (presence).
    Awareness(AwarenessUpdate),
    /// "Send me every awareness state you know."
    QueryAwareness,
    /// An auth message: servers send these, clients do not; it is ignored.
    Auth,
}

/// Why a connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("text frames are not part of the y-websocket protocol (send binary frames)")]
    TextFrame,
    #[error("unknown message type {0}")]
    UnknownType(u64),
    #[error("unknown sync message type {0}")]
    UnknownSyncType(u64),
    #[error("truncated message: it ends in the middle of a field")]
    Truncated,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("malformed message: {0} bytes after its end")]
    TrailingBytes(usize),
    #[error("message of {size} bytes is over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("update refused: the document would exceed its limit of {limit} bytes")]
    DocumentFull { limit: usize },
    #[error("the server could not store the update: {0}")]
    Storage(String),
}

impl ProtocolError {
    /// The WebSocket close code this error closes the connection with.
    pub fn close_code(&self) -> u16 {
        use close_code::*;
        match self {
            ProtocolError::TextFrame
            | ProtocolError::UnknownType(_)
            | ProtocolError::UnknownSyncType(_) => UNSUPPORTED,
            ProtocolError::Truncated
            | ProtocolError::Malformed(_)
            | ProtocolError::TrailingBytes(_) => INVALID,
            ProtocolError::TooLarge { .. } | ProtocolError::DocumentFull { .. } => TOO_BIG,
            ProtocolError::Storage(_) => INTERNAL,
        }
    }

    /// The close reason: the message, cut to the 123 bytes a close frame can carry.
    pub fn close_reason(&self) -> String {
        let mut reason = self.to_string();
        if reason.len() > 123 {
            let mut end = 120;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push_str("...");
        }
        reason
    }
}

fn read_error(e: read::Error) -> ProtocolError {
    match e {
        read::Error::EndOfBuffer(_) => ProtocolError::Truncated,
        other => ProtocolError::Malformed(other.to_string()),
    }
}

/// The fewest bytes one entry takes in a state vector (client, clock), an update
/// (block count, client, clock) and an awareness update (client, clock, state length).
const MIN_CLOCK_BYTES: usize = 2;
const MIN_CLIENT_GROUP_BYTES: usize = 3;
const MIN_AWARENESS_BYTES: usize = 3;

/// A state vector, an update and an awareness update each start with a count of entries,
/// and yrs reserves a hash map of that many entries before reading them: a 15-byte
/// update that claims 2^27 clients costs a quarter of a second and 260 MB (found by
/// fuzzing). So the count is checked against the bytes that could hold the entries.
fn check_count(payload: &[u8], min_entry_bytes: usize) -> Result<(), ProtocolError> {
    let mut cursor = Cursor::new(payload);
    let count: u64 = cursor.read_var().map_err(read_error)?;
    let room = (payload.len() - cursor.next) / min_entry_bytes;
    match count <= room as u64 {
        true => Ok(()),
        false => Err(ProtocolError::Malformed(format!(
            "it claims {count} entries in {} bytes",
            payload.len()
        ))),
    }
}

/// Decodes a document update, refusing one that yrs cannot encode back. yrs decodes
/// some malformed blocks (e.g. an item with an empty parent name) into a form whose
/// encoding it cannot read again; applied, such a block makes the document's own
/// encoding unreadable — every client that joins later fails to load it, and a
/// compaction would store it (found by fuzzing). The round trip costs one more encode
/// and decode of each update.
fn decode_update(payload: &[u8]) -> Result<Update, ProtocolError> {
    check_count(payload, MIN_CLIENT_GROUP_BYTES)?;
    let update = Update::decode_v1(payload).map_err(read_error)?;
    match Update::decode_v1(&update.encode_v1()) {
        Ok(_) => Ok(update),
        Err(e) => Err(ProtocolError::Malformed(format!(
            "the update does not survive re-encoding ({e})"
        ))),
    }
}

/// Decodes one binary frame of at most `max_message` bytes.
pub fn decode(frame: &[u8], max_message: usize) -> Result<Incoming, ProtocolError> {
    if frame.len() > max_message {
        return Err(ProtocolError::TooLarge {
            size: frame.len(),
            limit: max_message,
        });
    }
    let mut cursor = Cursor::new(frame);
    let tag: u64 = cursor.read_var().map_err(read_error)?;
    let message = match tag {
        MSG_SYNC => {
            let sub: u64 = cursor.read_var().map_err(read_error)?;
            if sub > SYNC_UPDATE {
                return Err(ProtocolError::UnknownSyncType(sub));
            }
            let payload = cursor.read_buf().map_err(read_error)?;
            match sub {
                SYNC_STEP_1 => {
                    check_count(payload, MIN_CLOCK_BYTES)?;
                    Incoming::SyncStep1(StateVector::decode_v1(payload).map_err(read_error)?)
                }
                _ => Incoming::Update {
                    update: decode_update(payload)?,
                    raw: payload.to_vec(),
                    live: sub == SYNC_UPDATE,
                },
            }
        }
        MSG_AWARENESS => {
            let payload = cursor.read_buf().map_err(read_error)?;
            check_count(payload, MIN_AWARENESS_BYTES)?;
            Incoming::Awareness(AwarenessUpdate::decode_v1(payload).map_err(read_error)?)
        }
        MSG_AUTH => return Ok(Incoming::Auth),
        MSG_QUERY_AWARENESS => Incoming::QueryAwareness,
        other => return Err(ProtocolError::UnknownType(other)),
    };
    match frame.len() - cursor.next {
        0 => Ok(message),
        extra => Err(ProtocolError::TrailingBytes(extra)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::sync::{Message, SyncMessage};
    use yrs::updates::encoder::Encode;
    use yrs::{Doc, ReadTxn, Text, Transact};

    fn an_update() -> Vec<u8> {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("t");
        text.insert(&mut doc.transact_mut(), 0, "hello");
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    #[test]
    fn decodes_what_yrs_encodes() {
        let update = an_update();
        let frame = Message::Sync(SyncMessage::Update(update.clone())).encode_v1();
        match decode(&frame, 1 << 20).unwrap() {
            Incoming::Update { raw, .. } => assert_eq!(raw, update),
            other => panic!("{other:?}"),
        }
        let frame = Message::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1();
        assert!(matches!(
            decode(&frame, 1 << 20),
            Ok(Incoming::SyncStep1(_))
        ));
        assert!(matches!(
            decode(&[3], 1 << 20),
            Ok(Incoming::QueryAwareness)
        ));
    }

    #[test]
    fn refuses_every_kind_of_malformed_frame() {
        let update = an_update();
        let frame = Message::Sync(SyncMessage::Update(update)).encode_v1();
        // Every strict prefix is truncated.
        for end in 0..frame.len() {
            let err = decode(&frame[..end], 1 << 20).unwrap_err();
            assert!(
                matches!(err, ProtocolError::Truncated | ProtocolError::Malformed(_)),
                "prefix of {end} bytes: {err:?}"
            );
            assert_eq!(err.close_code(), close_code::INVALID);
        }
        assert_eq!(
            decode(&[0, 2, 0x80], 100).unwrap_err(),
            ProtocolError::Truncated
        );
        let mut trailing = frame.clone();
        trailing.push(0);
        assert_eq!(
            decode(&trailing, 1 << 20).unwrap_err(),
            ProtocolError::TrailingBytes(1)
        );
        assert_eq!(
            decode(&[9], 100).unwrap_err(),
            ProtocolError::UnknownType(9)
        );
        assert_eq!(
            decode(&[0, 7, 0], 100).unwrap_err(),
            ProtocolError::UnknownSyncType(7)
        );
        assert_eq!(
            decode(&frame, 4).unwrap_err().close_code(),
            close_code::TOO_BIG
        );
        // A well-framed update whose content is garbage.
        let err = decode(&[0, 2, 3, 0xff, 0xff, 0xff], 100).unwrap_err();
        assert_eq!(err.close_code(), close_code::INVALID, "{err:?}");
    }

    #[test]
    fn counts_that_the_bytes_cannot_hold_are_refused_before_decoding() {
        // An update claiming ~2^40 clients (found by fuzzing), and one claiming 2^27.
        let bomb = [
            0, 2, 15, 0xff, 0xfe, 0xfe, 0xff, 0xfb, 0xfe, 0xfe, 0x83, 0x05, b'h', b'e', b'l', b'l',
            b'o', 0,
        ];
        let claims_2_27 = [
            0, 2, 11, 0x80, 0x80, 0x80, 0x40, 0x05, b'h', b'e', b'l', b'l', b'o', 0,
        ];
        for frame in [&bomb[..], &claims_2_27] {
            let started = std::time::Instant::now();
            let err = decode(frame, 1 << 20).unwrap_err();
            assert!(err.to_string().contains("claims"), "{err}");
            assert_eq!(err.close_code(), close_code::INVALID);
            assert!(started.elapsed() < std::time::Duration::from_millis(50));
        }
        let sv = [0, 0, 3, 0x80, 0x80, 0x10];
        assert!(decode(&sv, 100).unwrap_err().to_string().contains("claims"));
        let awareness = [1, 4, 0x80, 0x80, 0x80, 0x40];
        assert!(
            decode(&awareness, 100)
                .unwrap_err()
                .to_string()
                .contains("claims")
        );
    }

    #[test]
    fn an_update_that_does_not_survive_re_encoding_is_refused() {
        // Found by fuzzing: applied, it made the document's encoding unreadable.
        let payload = [
            1, 2, 1, 0xf1, 0xc4, 1, 1, 1, 2, 2, 0x58, 0, 0x12, 1, 1, 0, 1, 4, 1, 1, 0, 1, 0, 0, 0,
            0, 0, 0, 0, 4, 0, 0, 0, 1,
        ];
        let frame = [&[0, 2, payload.len() as u8][..], &payload].concat();
        let err = decode(&frame, 100).unwrap_err();
        assert!(err.to_string().contains("re-encoding"), "{err}");
        assert_eq!(err.close_code(), close_code::INVALID);
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let err = ProtocolError::Storage("é".repeat(200));
        assert!(err.close_reason().len() <= 123);
    }
}
