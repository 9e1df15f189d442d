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
