//! The y-websocket message decoder (`wsreg::yjs::message::decode`) on arbitrary frames.
//!
//! An input is a sequence of frames, `[connection: u8][length: u16 LE][frame]` (the first
//! byte is unused here; the layout keeps the seeds and regressions replayable by a
//! room-level harness). Beyond not panicking and not allocating beyond what the frame
//! could hold (libFuzzer's RSS limit stops a run that does):
//! - a refused frame gets one of the close codes a malformed frame may get;
//! - an accepted update is the frame's own payload, and yrs encodes it back into bytes
//!   it can read again (what the room stores, forwards and compacts).
//!
//! The decoder is fuzzed, not the room: yrs 0.28 integrates some malformed (but
//! round-tripping) updates into a document state it cannot encode back, a yrs bug
//! that no check on the update alone can catch; see docs/security.md.

use wsreg::yjs::message::{self, Incoming, close_code};
use yrs::Update;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

const MAX_MESSAGE: usize = 64 * 1024;

pub fn check(data: &[u8]) {
    let mut rest = data;
    while let [_, lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (frame, after) = tail.split_at(len);
        rest = after;
        match message::decode(frame, MAX_MESSAGE) {
            Ok(Incoming::Update { raw, update, .. }) => {
                assert!(
                    frame.windows(raw.len()).any(|w| w == raw.as_slice()),
                    "the raw update is the frame's payload"
                );
                Update::decode_v1(&update.encode_v1()).expect("an accepted update re-encodes");
            }
            Ok(_) => {}
            Err(e) => {
                let code = e.close_code();
                assert!(
                    [
                        close_code::UNSUPPORTED,
                        close_code::INVALID,
                        close_code::TOO_BIG
                    ]
                    .contains(&code),
                    "{e:?} closes with {code}"
                );
            }
        }
    }
}
