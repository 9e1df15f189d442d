//! WebSocket frame headers (RFC 6455, section 5.2), as a server reads and writes them.
//!
//! Only what a server needs: client frames must be masked and use no extension (every
//! RSV bit clear); server frames are never masked. A header is parsed from the bytes
//! read so far ([`parse`] says how many more it needs), so a reader keeps at most
//! [`MAX_HEADER`] bytes of a header between reads, never a buffer of its own.

use bytes::{Bytes, BytesMut};

/// The longest header: 2 bytes, an 8-byte length and a 4-byte mask.
pub const MAX_HEADER: usize = 14;

/// The longest header a server writes (no mask).
pub const MAX_SERVER_HEADER: usize = 10;

/// The largest payload of a control frame (ping, pong, close).
pub const MAX_CONTROL: usize = 125;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Ping, pong and close.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A client frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: Opcode,
    pub mask: [u8; 4],
    pub len: u64,
}

/// A header that breaks the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("a frame with a reserved bit set (no extension was agreed)")]
    Reserved,
    #[error("a frame with the unknown opcode {0:#x}")]
    Opcode(u8),
    #[error("an unmasked frame from the client")]
    Unmasked,
    #[error("a control frame that is fragmented or longer than 125 bytes")]
    Control,
    #[error("a frame length that does not use the shortest encoding or sets the top bit")]
    Length,
}

/// What [`parse`] made of the bytes so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The header is complete and this long.
    Header(Header, usize),
    /// The header is this long in all; read up to it.
    Needs(usize),
}

/// Parses a client frame's header from its first bytes.
pub fn parse(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    if bytes.len() < 2 {
        return Ok(Parsed::Needs(2));
    }
    let (b0, b1) = (bytes[0], bytes[1]);
    if b0 & 0x70 != 0 {
        return Err(HeaderError::Reserved);
    }
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(HeaderError::Opcode(b0 & 0x0F))?;
    if b1 & 0x80 == 0 {
        return Err(HeaderError::Unmasked);
    }
    let fin = b0 & 0x80 != 0;
    let extra = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let total = 2 + extra + 4;
    if bytes.len() < total {
        return Ok(Parsed::Needs(total));
    }
    let len = match extra {
        0 => u64::from(b1 & 0x7F),
        2 => u64::from(u16::from_be_bytes([bytes[2], bytes[3]])),
        _ => u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")),
    };
    let shortest = match extra {
        0 => true,
        2 => len >= 126,
        _ => len > u64::from(u16::MAX) && len >> 63 == 0,
    };
    if !shortest {
        return Err(HeaderError::Length);
    }
    if opcode.is_control() && (!fin || len > MAX_CONTROL as u64) {
        return Err(HeaderError::Control);
    }
    let mask = bytes[total - 4..total].try_into().expect("4 bytes");
    Ok(Parsed::Header(
        Header {
            fin,
            opcode,
            mask,
            len,
        },
        total,
    ))
}

/// Writes an unmasked, final server frame's header for a payload of `len` bytes into
/// `out`; returns its length.
pub fn encode(opcode: Opcode, len: usize, out: &mut [u8; MAX_SERVER_HEADER]) -> usize {
    out[0] = 0x80 | opcode.bits();
    match len {
        0..=125 => {
            out[1] = len as u8;
            2
        }
        126..=0xFFFF => {
            out[1] = 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = 127;
            out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    }
}

/// Binary messages as the server sends them (each an unmasked, final frame), one after
/// the other in one buffer.
pub fn encode_binary<'a>(payloads: impl IntoIterator<Item = &'a [u8]> + Clone) -> Bytes {
    let len = payloads
        .clone()
        .into_iter()
        .map(|p| MAX_SERVER_HEADER + p.len())
        .sum();
    let mut frames = BytesMut::with_capacity(len);
    let mut head = [0; MAX_SERVER_HEADER];
    for payload in payloads {
        let head_len = encode(Opcode::Binary, payload.len(), &mut head);
        frames.extend_from_slice(&head[..head_len]);
        frames.extend_from_slice(payload);
    }
    frames.freeze()
}

/// Unmasks `payload`, whose first byte is byte `offset` of the frame's payload.
pub fn unmask(payload: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut mask = mask;
    mask.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut words = payload.chunks_exact_mut(8);
    for word in &mut words {
        let value = u64::from_ne_bytes((&*word).try_into().expect("8 bytes")) ^ wide;
        word.copy_from_slice(&value.to_ne_bytes());
    }
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(b0: u8, len_bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![b0, len_bytes[0] | 0x80];
        v.extend_from_slice(&len_bytes[1..]);
        v.extend_from_slice(&[1, 2, 3, 4]);
        v
    }

    #[test]
    fn binary_messages_are_encoded_back_to_back_in_their_shortest_form() {
        let long = vec![7; 300];
        let frames = encode_binary([&b"ab"[..], &[], &long]);
        assert_eq!(&frames[..4], &[0x82, 2, b'a', b'b']);
        assert_eq!(&frames[4..6], &[0x82, 0]);
        assert_eq!(&frames[6..10], &[0x82, 126, 1, 44]);
        assert_eq!(&frames[10..], &long[..]);
    }

    #[test]
    fn headers_parse_in_every_length_form_and_say_what_they_still_need() {
        let short = masked(0x82, &[5]);
        assert_eq!(parse(&short[..1]), Ok(Parsed::Needs(2)));
        assert_eq!(parse(&short[..2]), Ok(Parsed::Needs(6)));
        let header = Header {
            fin: true,
            opcode: Opcode::Binary,
            mask: [1, 2, 3, 4],
            len: 5,
        };
        assert_eq!(parse(&short), Ok(Parsed::Header(header, 6)));
        let medium = masked(0x01, &[126, 0x01, 0x00]);
        assert_eq!(parse(&medium[..3]), Ok(Parsed::Needs(8)));
        let Ok(Parsed::Header(h, 8)) = parse(&medium) else {
            panic!("{:?}", parse(&medium))
        };
        assert_eq!((h.fin, h.opcode, h.len), (false, Opcode::Text, 256));
        let long = masked(0x82, &[127, 0, 0, 0, 0, 0, 1, 0, 0]);
        let Ok(Parsed::Header(h, 14)) = parse(&long) else {
            panic!("{:?}", parse(&long))
        };
        assert_eq!(h.len, 65536);
    }

    #[test]
    fn headers_that_break_the_protocol_are_refused() {
        assert_eq!(parse(&masked(0xC2, &[1])), Err(HeaderError::Reserved));
        assert_eq!(parse(&masked(0x83, &[1])), Err(HeaderError::Opcode(3)));
        assert_eq!(parse(&[0x82, 0x01]), Err(HeaderError::Unmasked));
        assert_eq!(parse(&masked(0x09, &[0])), Err(HeaderError::Control));
        assert_eq!(
            parse(&masked(0x89, &[126, 0, 126])),
            Err(HeaderError::Control)
        );
        assert_eq!(
            parse(&masked(0x82, &[126, 0, 10])),
            Err(HeaderError::Length)
        );
        let top = masked(0x82, &[127, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse(&top), Err(HeaderError::Length));
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        let mut out = [0; MAX_SERVER_HEADER];
        assert_eq!(encode(Opcode::Binary, 125, &mut out), 2);
        assert_eq!(out[..2], [0x82, 125]);
        assert_eq!(encode(Opcode::Text, 126, &mut out), 4);
        assert_eq!(out[..4], [0x81, 126, 0, 126]);
        assert_eq!(encode(Opcode::Close, 70_000, &mut out), 10);
        assert_eq!(out[..10], [0x88, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn unmasking_in_pieces_matches_unmasking_at_once() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let masked: Vec<u8> = plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        let mut whole = masked.clone();
        unmask(&mut whole, mask, 0);
        assert_eq!(whole, plain);
        let mut pieces = masked.clone();
        let (a, rest) = pieces.split_at_mut(13);
        let (b, c) = rest.split_at_mut(501);
        unmask(a, mask, 0);
        unmask(b, mask, 13);
        unmask(c, mask, 514);
        assert_eq!(pieces, plain);
    }
}
