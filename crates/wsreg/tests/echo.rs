//! `wsreg echo` as a real process over real sockets: the round trip, the size limit, and
//! graceful shutdown on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::{Registry, STEP};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Client {
    let (client, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("connect");
    client
}

/// The next data or close message (pongs skipped), within [`STEP`].
async fn next(client: &mut Client) -> Message {
    loop {
        let msg = tokio::time::timeout(STEP, client.next())
            .await
            .expect("a message in time")
            .expect("the stream is open")
            .expect("a message");
        if !matches!(msg, Message::Pong(_)) {
            return msg;
        }
    }
}

#[tokio::test]
async fn echoes_text_as_text_binary_as_binary_and_a_full_mebibyte() {
    let reg = Registry::new();
    let (_echo, at) = reg.echo(&[]);
    let mut client = connect(&at.url).await;

    client.send(Message::text("héllo")).await.unwrap();
    assert_eq!(next(&mut client).await, Message::text("héllo"));

    let bytes: Vec<u8> = (0..=255).collect();
    client.send(Message::binary(bytes.clone())).await.unwrap();
    assert_eq!(next(&mut client).await, Message::binary(bytes));

    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    client.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(next(&mut client).await, Message::binary(big));

    client
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(STEP, client.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let reg = Registry::new();
    let (_echo, at) = reg.echo(&[]);
    let mut client = connect(&at.url).await;
    client
        .send(Message::binary(vec![7u8; (1 << 20) + 1]))
        .await
        .unwrap();
    match next(&mut client).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Size, "{frame:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }

    let (_small, at) = reg.echo(&["--max-message", "10"]);
    let mut client = connect(&at.url).await;
    client.send(Message::text("0123456789")).await.unwrap();
    assert_eq!(next(&mut client).await, Message::text("0123456789"));
    client.send(Message::text("0123456789!")).await.unwrap();
    match next(&mut client).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Size, "{frame:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_unregisters_and_exits_0() {
    let reg = Registry::new();
    let (mut echo, at) = reg.echo(&["--name", "leaving"]);
    let id = at
        .id
        .clone()
        .expect("a registered echo server prints its id");
    assert_eq!(reg.ids(), vec![id]);
    let mut client = connect(&at.url).await;
    client.send(Message::text("before")).await.unwrap();
    assert_eq!(next(&mut client).await, Message::text("before"));

    let sent = Instant::now();
    echo.signal(libc::SIGTERM);
    match next(&mut client).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away, "{frame:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let status = echo.wait_exit(Duration::from_secs(1));
    let took = sent.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(reg.ids().is_empty(), "entry still listed: {:?}", reg.list());
    println!("SIGTERM to exit with a client connected: {took:?}");
}

/// A client speaking raw frames over a blocking socket, for what a WebSocket library
/// will not send: frames in pieces, fragments with a ping between them, bad frames.
struct Raw(std::net::TcpStream);

impl Raw {
    fn connect(at: &common::Listening) -> Raw {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(at.addr).unwrap();
        tcp.set_read_timeout(Some(STEP)).unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            at.host()
        );
        tcp.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            tcp.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Raw(tcp)
    }

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut out = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.0.write_all(bytes).unwrap();
    }

    /// The next server frame: (fin, opcode, payload); `None` once the server closed.
    fn read(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        use std::io::Read;
        let mut head = [0; 2];
        if self.0.read_exact(&mut head).is_err() {
            return None;
        }
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        let len = match head[1] & 0x7F {
            126 => {
                let mut n = [0; 2];
                self.0.read_exact(&mut n).unwrap();
                u16::from_be_bytes(n) as usize
            }
            127 => {
                let mut n = [0; 8];
                self.0.read_exact(&mut n).unwrap();
                u64::from_be_bytes(n) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0; len];
        self.0.read_exact(&mut payload).unwrap();
        Some((head[0] & 0x80 != 0, head[0] & 0x0F, payload))
    }
}

#[test]
fn fragments_pieces_and_pings_between_them_make_one_message() {
    let reg = Registry::new();
    let (_echo, at) = reg.echo(&[]);
    let mut raw = Raw::connect(&at);
    // A text message in three fragments, a ping between the first two, every byte in
    // a write of its own: headers and payloads arrive in pieces.
    let mut bytes = Raw::frame(false, 0x1, "hé".as_bytes());
    bytes.extend(Raw::frame(true, 0x9, b"ping!"));
    bytes.extend(Raw::frame(false, 0x0, &[b'l'; 300]));
    bytes.extend(Raw::frame(true, 0x0, "lo ✓".as_bytes()));
    for byte in &bytes {
        raw.write(&[*byte]);
    }
    assert_eq!(raw.read(), Some((true, 0xA, b"ping!".to_vec())));
    let text = format!("hé{}lo ✓", "l".repeat(300));
    assert_eq!(raw.read(), Some((true, 0x1, text.into_bytes())));
    // A binary message past 64 KiB (several reads of the socket), then the close
    // handshake: the server echoes the code and ends the connection.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    raw.write(&Raw::frame(true, 0x2, &big));
    assert_eq!(raw.read(), Some((true, 0x2, big)));
    raw.write(&Raw::frame(true, 0x8, b"\x03\xe8done"));
    assert_eq!(raw.read(), Some((true, 0x8, b"\x03\xe8".to_vec())));
    assert_eq!(
        raw.read(),
        None,
        "the server ends the connection after a Close"
    );
}

#[test]
fn frames_that_break_the_protocol_end_only_their_connection() {
    let reg = Registry::new();
    let (_echo, at) = reg.echo(&[]);
    let bad: [(&str, Vec<u8>); 5] = [
        ("unmasked", vec![0x82, 0x01, 0x00]),
        ("a reserved bit", Raw::frame(true, 0x40 | 0x2, b"x")),
        ("an unknown opcode", Raw::frame(true, 0x3, b"x")),
        ("a continuation of nothing", Raw::frame(true, 0x0, b"x")),
        ("text that is not UTF-8", Raw::frame(true, 0x1, b"\xff\xfe")),
    ];
    let mut good = Raw::connect(&at);
    for (what, frame) in bad {
        let mut raw = Raw::connect(&at);
        raw.write(&frame);
        match raw.read() {
            None | Some((true, 0x8, _)) => {}
            other => panic!("{what}: the connection goes on: {other:?}"),
        }
        good.write(&Raw::frame(true, 0x2, what.as_bytes()));
        assert_eq!(
            good.read(),
            Some((true, 0x2, what.as_bytes().to_vec())),
            "after {what}"
        );
    }
}
