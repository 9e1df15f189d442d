//! Broadcasts held back under load and written together: a room's batch.
//!
//! Forwarding an update to N peers costs N socket writes, and nearly all of a busy
//! room's CPU is the kernel's work for those writes (bench/yjs: 85–95 % of it, and the
//! floor row, a bare forwarder, costs almost as much): no server that writes every
//! update to every peer can go below it. So, under load, a room writes less often
//! instead: a broadcast that comes less than the window (`--batch-window`, 4 ms) after
//! the room last wrote is held, and when the window ends every held message goes to
//! each peer in **one** write, from one buffer that every peer shares (a peer that sent
//! some of them gets a buffer of its own without those).
//!
//! What it costs is latency, and only under load: a broadcast after a quiet window goes
//! out at once, so typing at human speed never waits; sustained traffic waits at most
//! one window. A broadcast to fewer than [`MIN_RECIPIENTS`] peers is never held (one
//! reader saves one write an update; it is not worth the wait), nor is a message over
//! [`MAX_HELD`] bytes (it would be copied into the shared buffer). Held messages are
//! sent before anything else the room sends, so each peer still sees the room's
//! messages in order.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;

use super::outbox::Binary;
use super::room::ConnId;
use crate::servers::frame;

/// The fewest recipients of a broadcast that may be held.
pub const MIN_RECIPIENTS: usize = 4;

/// The largest message that may be held, in bytes.
pub const MAX_HELD: usize = 64 << 10;

/// A room's held broadcasts.
pub struct Batch {
    /// How long after a write broadcasts are held; zero: never.
    window: Duration,
    /// Until when broadcasts are held: a window after the room's last write.
    until: Option<Instant>,
    /// Each held message, and the connection it is not for (its sender).
    held: Vec<(Option<ConnId>, Bytes)>,
}

/// What to do with a broadcast.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Send it now, after whatever is held ([`Batch::take`]).
    Send,
    /// Held, behind others.
    Held,
    /// Held, the first: write the batch at this instant.
    HeldFirst(Instant),
}

impl Batch {
    /// A batch that holds broadcasts for up to `window` after a write (zero: never).
    pub fn new(window: Duration) -> Batch {
        Batch {
            window,
            until: None,
            held: Vec::new(),
        }
    }

    /// Holds a broadcast of `frame` to every peer but `except` (`recipients` of them)
    /// if the room wrote less than the window ago, or says to send it now.
    pub fn offer(&mut self, except: Option<ConnId>, frame: &Bytes, recipients: usize) -> Offer {
        if self.window.is_zero() || recipients < MIN_RECIPIENTS || frame.len() > MAX_HELD {
            return Offer::Send;
        }
        let now = Instant::now();
        match self.until {
            Some(until) if now < until => {
                self.held.push((except, frame.clone()));
                match self.held.len() {
                    1 => Offer::HeldFirst(until),
                    _ => Offer::Held,
                }
            }
            _ => {
                self.until = Some(now + self.window);
                Offer::Send
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Takes every held message, to be written now (which starts a new window).
    pub fn take(&mut self) -> Held {
        self.until = Some(Instant::now() + self.window);
        let frames = std::mem::take(&mut self.held);
        let mut senders: Vec<ConnId> = frames.iter().filter_map(|(except, _)| *except).collect();
        senders.sort_unstable();
        senders.dedup();
        Held {
            frames,
            senders,
            shared: None,
        }
    }
}

/// Held messages, taken to be written.
pub struct Held {
    frames: Vec<(Option<ConnId>, Bytes)>,
    /// The connections some of them are not for.
    senders: Vec<ConnId>,
    /// Every message, for the peers that sent none of them (encoded once).
    shared: Option<Binary>,
}

impl Held {
    /// What `peer` gets, as one write: every message but the ones it sent.
    pub fn for_peer(&mut self, peer: ConnId) -> Option<Binary> {
        if self.senders.binary_search(&peer).is_err() {
            let frames = &self.frames;
            let shared = self
                .shared
                .get_or_insert_with(|| encode(frames.iter().map(|(_, f)| f)));
            return Some(shared.clone());
        }
        let own: Vec<&Bytes> = (self.frames.iter())
            .filter(|(except, _)| *except != Some(peer))
            .map(|(_, frame)| frame)
            .collect();
        (!own.is_empty()).then(|| encode(own.into_iter()))
    }
}

/// Messages as one write: a lone one as itself (not copied), more encoded together.
fn encode<'a>(mut frames: impl ExactSizeIterator<Item = &'a Bytes> + Clone) -> Binary {
    match frames.len() {
        1 => Binary::Message(frames.next().expect("one").clone()),
        _ => Binary::Frames(frame::encode_binary(frames.map(|f| &f[..]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    fn bytes(b: &'static [u8]) -> Bytes {
        Bytes::from_static(b)
    }

    #[test]
    fn the_first_broadcast_goes_at_once_and_the_next_ones_wait_for_the_window() {
        let mut batch = Batch::new(WINDOW);
        let a = ConnId::next();
        assert_eq!(batch.offer(Some(a), &bytes(b"1"), 10), Offer::Send);
        let Offer::HeldFirst(at) = batch.offer(Some(a), &bytes(b"2"), 10) else {
            panic!("not held")
        };
        assert!(at > Instant::now() + WINDOW / 2);
        assert_eq!(batch.offer(None, &bytes(b"3"), 10), Offer::Held);
        // Too few recipients, too large, or no window: never held.
        assert_eq!(batch.offer(None, &bytes(b"4"), 3), Offer::Send);
        let large = Bytes::from(vec![0; MAX_HELD + 1]);
        assert_eq!(batch.offer(None, &large, 10), Offer::Send);
        assert_eq!(
            Batch::new(Duration::ZERO).offer(None, &bytes(b"5"), 10),
            Offer::Send
        );
        let mut held = batch.take();
        assert!(batch.is_empty());
        // The sender of 2 gets 3 alone, as itself; everyone else both, as one write.
        assert_eq!(held.for_peer(a), Some(Binary::Message(bytes(b"3"))));
        let Some(Binary::Frames(first)) = held.for_peer(ConnId::next()) else {
            panic!()
        };
        assert_eq!(&first[..], &[0x82, 1, b'2', 0x82, 1, b'3']);
        let Some(Binary::Frames(again)) = held.for_peer(ConnId::next()) else {
            panic!()
        };
        assert_eq!(
            again.as_ptr(),
            first.as_ptr(),
            "one buffer for every such peer"
        );
        // Taking starts a new window.
        assert!(matches!(
            batch.offer(None, &bytes(b"6"), 10),
            Offer::HeldFirst(_)
        ));
    }

    #[test]
    fn a_peer_that_sent_every_held_message_gets_nothing() {
        let mut batch = Batch::new(WINDOW);
        let a = ConnId::next();
        batch.offer(Some(a), &bytes(b"1"), 10);
        batch.offer(Some(a), &bytes(b"2"), 10);
        batch.offer(Some(a), &bytes(b"3"), 10);
        let mut held = batch.take();
        assert_eq!(held.for_peer(a), None);
        let Some(Binary::Frames(all)) = held.for_peer(ConnId::next()) else {
            panic!()
        };
        assert_eq!(&all[..], &[0x82, 1, b'2', 0x82, 1, b'3']);
    }
}
