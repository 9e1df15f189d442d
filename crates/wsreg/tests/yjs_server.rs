//! `wsreg yjs` as a real process, spoken to with raw y-websocket frames: malformed input
//! closes only the connection that sent it (with the right close code) while the server,
//! its other connections and its other documents keep working; acknowledged updates
//! survive `kill -9`, a torn last record is ignored, the log is compacted when the last
//! client leaves, room names cannot escape the data directory, and cross-site upgrades
//! are refused. Under load: a client that stops reading is closed once its queue passes
//! `--max-outbox` while the others carry on, a frozen client is dropped after a missed
//! ping and its awareness removed, and every update acknowledged during a flood from
//! several writers (group commit) survives `kill -9`. Every reader gets each writer's
//! updates in order, whether written straight into its socket, queued, or in pieces.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{Listening, Proc, Registry, STEP};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use wsreg::yjs::update_log;
use yrs::block::ClientID;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn start(reg: &Registry, args: &[&str]) -> (Proc, Listening) {
    let mut all = vec!["yjs", "--port", "0"];
    all.extend_from_slice(args);
    let mut proc = reg.spawn(&all);
    let listening = proc.listening();
    (proc, listening)
}

/// A y-websocket client with its own replica of the room's text.
struct Client {
    socket: Socket,
    doc: Doc,
}

impl Client {
    /// Connects to `room` and completes the first sync (our step 1 → the server's step 2).
    async fn join(server: &Listening, room: &str) -> Client {
        let url = format!("ws://{}/{room}", server.addr);
        let (socket, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut client = Client {
            socket,
            doc: Doc::new(),
        };
        client.sync().await;
        client
    }

    async fn send(&mut self, message: Message) {
        self.socket
            .send(Ws::binary(message.encode_v1()))
            .await
            .unwrap();
    }

    async fn send_raw(&mut self, frame: Ws) {
        self.socket.send(frame).await.unwrap();
    }

    /// Sends sync step 1 and applies messages until the server's step 2 has come: every
    /// update the server had acknowledged is then in this replica.
    async fn sync(&mut self) {
        let sv = self.doc.transact().state_vector();
        self.send(Message::Sync(SyncMessage::SyncStep1(sv))).await;
        loop {
            if let Message::Sync(SyncMessage::SyncStep2(_)) = self.next().await {
                return;
            }
        }
    }

    /// The next y-websocket message (document updates are applied to the replica).
    async fn next(&mut self) -> Message {
        loop {
            let frame = tokio::time::timeout(STEP, self.socket.next())
                .await
                .expect("a message in time")
                .expect("the connection is open")
                .expect("a frame");
            let Ws::Binary(bytes) = frame else {
                assert!(matches!(frame, Ws::Ping(_) | Ws::Pong(_)), "{frame:?}");
                continue;
            };
            let message = Message::decode_v1(&bytes).expect("a y-websocket message");
            if let Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u)) = &message {
                let update = Update::decode_v1(u).unwrap();
                self.doc.transact_mut().apply_update(update).unwrap();
            }
            return message;
        }
    }

    /// Inserts `s` at the end of the text and sends the update.
    async fn type_text(&mut self, s: &str) {
        self.type_into("text", s).await
    }

    /// Inserts `s` at the end of the text named `name` and sends the update.
    async fn type_into(&mut self, name: &str, s: &str) {
        let text = self.doc.get_or_insert_text(name);
        let before = self.doc.transact().state_vector();
        let len = text.len(&self.doc.transact());
        text.insert(&mut self.doc.transact_mut(), len, s);
        let update = self.doc.transact().encode_state_as_update_v1(&before);
        self.send(Message::Sync(SyncMessage::Update(update))).await;
    }

    fn text(&self) -> String {
        self.text_of("text")
    }

    fn text_of(&self, name: &str) -> String {
        let text = self.doc.get_or_insert_text(name);
        text.get_string(&self.doc.transact())
    }

    /// Waits for the server to close the connection; returns the close code.
    async fn closed(&mut self) -> u16 {
        loop {
            let frame = tokio::time::timeout(STEP, self.socket.next())
                .await
                .expect("the close in time");
            match frame {
                Some(Ok(Ws::Close(Some(close)))) => return close.code.into(),
                Some(Ok(Ws::Close(None))) | None => panic!("closed without a code"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the connection failed instead of closing: {e}"),
            }
        }
    }
}

/// An update that inserts `n` bytes of text by a new client.
fn big_update(n: usize) -> Message {
    let doc = Doc::new();
    doc.get_or_insert_text("text")
        .insert(&mut doc.transact_mut(), 0, &"x".repeat(n));
    let update = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    Message::Sync(SyncMessage::Update(update))
}

fn invalid_utf8_text_frame() -> Ws {
    Ws::Frame(Frame::message(
        vec![0x68, 0xff, 0xfe, 0x69],
        OpCode::Data(Data::Text),
        true,
    ))
}

#[tokio::test]
async fn malformed_messages_close_only_their_connection() {
    let reg = Registry::new();
    let (_server, addr) = start(&reg, &["--max-message", "4096", "--max-doc", "6000"]);
    let mut writer = Client::join(&addr, "a").await;
    let mut reader = Client::join(&addr, "a").await;
    let mut elsewhere = Client::join(&addr, "b").await;
    writer.type_text("before ").await;
    reader.next().await;
    assert_eq!(reader.text(), "before ");

    let cases: Vec<(&str, Ws, u16)> = vec![
        ("truncated varint", Ws::binary(vec![0x00, 0x02, 0x85]), 1007),
        ("varint too long", Ws::binary(vec![0xff; 12]), 1007),
        (
            "update cut short",
            Ws::binary(vec![0x00, 0x02, 0x05, 0x01]),
            1007,
        ),
        (
            "garbage update",
            Ws::binary(vec![0, 2, 3, 0xff, 0xff, 0xff]),
            1007,
        ),
        ("trailing bytes", Ws::binary(vec![0x03, 0x00]), 1007),
        ("unknown message type", Ws::binary(vec![0x09, 0x00]), 1003),
        (
            "unknown sync type",
            Ws::binary(vec![0x00, 0x07, 0x00]),
            1003,
        ),
        ("text frame", Ws::text("hello"), 1003),
        ("invalid UTF-8 text frame", invalid_utf8_text_frame(), 1007),
        ("oversized message", Ws::binary(vec![0u8; 5000]), 1009),
    ];
    for (what, frame, code) in cases {
        let mut bad = Client::join(&addr, "a").await;
        bad.send_raw(frame).await;
        assert_eq!(bad.closed().await, code, "{what}");
    }
    // An update that would take the document past --max-doc.
    let mut greedy = Client::join(&addr, "a").await;
    greedy.send(big_update(3000)).await;
    reader.next().await;
    greedy.send(big_update(3000)).await;
    assert_eq!(greedy.closed().await, 1009, "document over its limit");

    // The server, its other connections and its other documents are unaffected.
    writer.type_text("after").await;
    reader.next().await;
    assert!(reader.text().contains("before ") && reader.text().contains("after"));
    assert!(!reader.text().contains(&"x".repeat(6000)));
    elsewhere.type_text("room b works").await;
    elsewhere.sync().await; // acknowledged
    let mut late_b = Client::join(&addr, "b").await;
    assert_eq!(late_b.text(), "room b works");
    late_b.sync().await;
    let mut late_a = Client::join(&addr, "a").await;
    assert_eq!(late_a.text(), reader.text());
    late_a.sync().await;
    assert_eq!(reg.ids().len(), 1, "still running and listed");
}

#[tokio::test]
async fn acknowledged_updates_survive_kill_9_and_a_torn_tail_is_ignored() {
    let reg = Registry::new();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let (mut server, addr) = start(&reg, &["--data-dir", data_dir]);
    let mut writer = Client::join(&addr, "notes").await;
    let mut observer = Client::join(&addr, "notes").await;
    // Acknowledged by answering the writer's next sync step.
    writer.type_text("one ").await;
    writer.sync().await;
    // Acknowledged by forwarding to another client.
    writer.type_text("two ").await;
    while observer.text() != "one two " {
        observer.next().await;
    }
    server.signal(libc::SIGKILL);
    server.wait_exit(STEP);

    // A crash in the middle of the next append: a header promising more than was written.
    let log = data.path().join("room-notes.ylog");
    let mut bytes = std::fs::read(&log).unwrap();
    assert!(bytes.starts_with(b"WSREGYL1"));
    bytes.extend_from_slice(&[100, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]);
    std::fs::write(&log, &bytes).unwrap();

    let (_server, addr) = start(&reg, &["--data-dir", data_dir]);
    let mut back = Client::join(&addr, "notes").await;
    assert_eq!(back.text(), "one two ");
    let compacted = std::fs::read(&log).unwrap();
    assert!(
        compacted.len() < bytes.len(),
        "the log was compacted on load"
    );
    back.type_text("three").await;
    back.sync().await;
    let again = Client::join(&addr, "notes").await;
    assert_eq!(again.text(), "one two three");

    // When the last client leaves, the log is compacted to a single record.
    drop((back, again));
    common::eventually("the log compacted on close", STEP, || {
        let r = update_log::parse(&std::fs::read(&log).unwrap());
        r.damage.is_none() && r.updates.len() == 1
    });
}

#[tokio::test]
async fn cross_site_upgrades_are_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let reg = Registry::new();
    let (_server, addr) = start(&reg, &[]);
    let mut request = format!("ws://{}/room", addr.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let mut request = format!("ws://{}/room", addr.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://localhost:5173".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[tokio::test]
async fn room_names_stay_inside_the_data_directory() {
    let reg = Registry::new();
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let (_server, addr) = start(&reg, &["--data-dir", data.to_str().unwrap()]);
    for room in ["..%2F..%2Fescape", "a%2Fb", ".hidden", "caf%C3%A9"] {
        let mut client = Client::join(&addr, room).await;
        client.type_text(room).await;
        client.sync().await;
    }
    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(parent.path()), vec!["data"]);
    assert_eq!(
        names(&data),
        vec![
            "room-%2E%2E%252F%2E%2E%252Fescape.ylog",
            "room-%2Ehidden.ylog",
            "room-a%252Fb.ylog",
            "room-caf%25C3%25A9.ylog",
        ]
    );
    // Same name, same document.
    let again = Client::join(&addr, "a%2Fb").await;
    assert_eq!(again.text(), "a%2Fb");
}

/// A WebSocket client that never reads after the handshake: its receive buffer is made
/// small, so the server's writes back up into the server's queue for it.
async fn stalled_client(
    server: &Listening,
    room: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(server.addr).await.unwrap();
    let url = format!("ws://{}/{room}", server.addr);
    let (socket, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    socket
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_the_others_carry_on() {
    const UPDATES: usize = 96;
    const SIZE: usize = 64 << 10;
    let reg = Registry::new();
    let (_server, addr) = start(&reg, &["--max-outbox", "262144"]);
    let mut writer = Client::join(&addr, "r").await;
    let mut reader = Client::join(&addr, "r").await;
    let mut stalled = stalled_client(&addr, "r").await;
    // 6 MiB: more than the stalled connection's socket buffers (4 MiB at most on Linux)
    // and its 256 KiB queue hold.
    // In step with the reader, whose queue then never holds more than one update.
    let chunk = "y".repeat(SIZE);
    for _ in 0..UPDATES {
        writer.type_text(&chunk).await;
        let message = reader.next().await;
        assert!(
            matches!(message, Message::Sync(SyncMessage::Update(_))),
            "{message:?}"
        );
    }
    assert_eq!(reader.text().len(), UPDATES * SIZE);
    // The stalled client finds what fitted in the buffers, then the server's 1013.
    let code = loop {
        let frame = tokio::time::timeout(STEP, stalled.next())
            .await
            .expect("the close in time");
        match frame {
            Some(Ok(Ws::Close(Some(close)))) => break u16::from(close.code),
            Some(Ok(Ws::Binary(_) | Ws::Ping(_))) => continue,
            other => panic!("expected a close with a code, got {other:?}"),
        }
    };
    assert_eq!(code, 1013);
    // The room and its other clients are unaffected.
    writer.type_text("after").await;
    while !reader.text().ends_with("after") {
        reader.next().await;
    }
    let late = Client::join(&addr, "r").await;
    assert_eq!(late.text().len(), UPDATES * SIZE + "after".len());
}

#[tokio::test]
async fn sigterm_closes_every_connection_of_every_room_with_1001_and_exits_0() {
    let reg = Registry::new();
    let (mut server, addr) = start(&reg, &[]);
    let mut clients = Vec::new();
    for room in ["a", "a", "b"] {
        clients.push(Client::join(&addr, room).await);
    }
    server.signal(libc::SIGTERM);
    for mut client in clients {
        let close = loop {
            let frame = tokio::time::timeout(STEP, client.socket.next())
                .await
                .expect("a frame in time")
                .expect("the connection is open")
                .expect("a frame");
            if let Ws::Close(close) = frame {
                break close;
            }
        };
        let code = close.expect("a close code").code;
        assert_eq!(u16::from(code), 1001, "going away");
    }
    assert!(server.wait_exit(STEP).success());
    assert!(reg.ids().is_empty(), "unregistered");
}

#[tokio::test]
async fn a_frozen_client_is_dropped_after_a_missed_ping_and_its_awareness_removed() {
    let reg = Registry::new();
    let (_server, addr) = start(&reg, &["--ping-interval", "200ms"]);
    let mut observer = Client::join(&addr, "p").await;
    // A client that announces itself, then neither reads nor writes again (its TCP
    // connection stays open: a frozen tab, a suspended laptop).
    let url = format!("ws://{}/p", addr.addr);
    let (mut frozen, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let id = ClientID::new(4242);
    let entry = AwarenessUpdateEntry {
        clock: 1,
        json: r#"{"user":"frozen"}"#.into(),
    };
    let update = AwarenessUpdate {
        clients: HashMap::from([(id, entry)]),
    };
    frozen
        .send(Ws::binary(Message::Awareness(update).encode_v1()))
        .await
        .unwrap();
    // The observer answers the pings (it reads); it sees the frozen client arrive and
    // then leave, with no fixed wait: Client::next bounds each step.
    let mut present = false;
    loop {
        if let Message::Awareness(update) = observer.next().await
            && let Some(entry) = update.clients.get(&id)
        {
            match &*entry.json {
                "null" => break,
                _ => present = true,
            }
        }
    }
    assert!(
        present,
        "the frozen client's state was seen before its removal"
    );
    // Its connection is gone; the observer's is not.
    let ended = tokio::time::timeout(STEP, async {
        while let Some(Ok(_)) = frozen.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the server dropped the frozen connection");
    observer.type_text("still here").await;
    observer.sync().await;
}

#[tokio::test]
async fn updates_acknowledged_during_a_flood_survive_kill_9() {
    const WRITERS: usize = 6;
    const PER_WRITER: usize = 3000;
    const KILL_AFTER: usize = 2000;
    let reg = Registry::new();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let (mut server, addr) = start(&reg, &["--data-dir", data_dir]);
    let mut observer = Client::join(&addr, "flood").await;
    // Each writer types numbered tokens into a text of its own, as fast as it can send
    // (without waiting for anything), so updates arrive together and share fsyncs.
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut writer = Client::join(&addr, "flood").await;
        writers.push(tokio::spawn(async move {
            for n in 0..PER_WRITER {
                let token = format!("{n};");
                let text = writer.doc.get_or_insert_text(format!("w{w}"));
                let before = writer.doc.transact().state_vector();
                let len = text.len(&writer.doc.transact());
                text.insert(&mut writer.doc.transact_mut(), len, &token);
                let update = writer.doc.transact().encode_state_as_update_v1(&before);
                let frame = Ws::binary(Message::Sync(SyncMessage::Update(update)).encode_v1());
                if writer.socket.send(frame).await.is_err() {
                    return; // the server was killed
                }
            }
        }));
    }
    // Everything the observer receives was forwarded, so acknowledged (docs/yjs.md).
    let count = |c: &Client| -> usize {
        (0..WRITERS)
            .map(|w| c.text_of(&format!("w{w}")).matches(';').count())
            .sum()
    };
    while count(&observer) < KILL_AFTER {
        observer.next().await;
    }
    server.signal(libc::SIGKILL);
    server.wait_exit(STEP);
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged: Vec<String> = (0..WRITERS)
        .map(|w| observer.text_of(&format!("w{w}")))
        .collect();

    let (_server, addr) = start(&reg, &["--data-dir", data_dir]);
    let back = Client::join(&addr, "flood").await;
    for (w, seen) in acknowledged.iter().enumerate() {
        let stored = back.text_of(&format!("w{w}"));
        // A writer's updates are stored in the order it sent them: what was
        // acknowledged is a prefix of what survived.
        assert!(
            stored.starts_with(seen.as_str()),
            "writer {w}: {} acknowledged tokens, {} stored, not a prefix",
            seen.matches(';').count(),
            stored.matches(';').count()
        );
    }
}

#[tokio::test]
async fn an_update_sent_right_before_leaving_still_reaches_the_others() {
    let reg = Registry::new();
    let data = tempfile::tempdir().unwrap();
    let (_server, addr) = start(&reg, &["--data-dir", data.path().to_str().unwrap()]);
    let mut observer = Client::join(&addr, "bye").await;
    let mut writer = Client::join(&addr, "bye").await;
    // The update and the close arrive in one write: the update waits for a commit,
    // which the leaving connection must still make.
    let text = writer.doc.get_or_insert_text("text");
    text.insert(&mut writer.doc.transact_mut(), 0, "last words");
    let update = writer
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let frame = Message::Sync(SyncMessage::Update(update)).encode_v1();
    writer.socket.feed(Ws::binary(frame)).await.unwrap();
    writer.socket.feed(Ws::Close(None)).await.unwrap();
    writer.socket.flush().await.unwrap();
    while observer.text() != "last words" {
        observer.next().await;
    }
}

/// Joins `room` over a socket whose receive buffer is small (4 KiB), so that frames
/// sent to it often go out in pieces.
async fn join_with_small_buffer(server: &Listening, room: &str) -> Client {
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(server.addr).await.unwrap();
    let url = format!("ws://{}/{room}", server.addr);
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (socket, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let mut client = Client {
        socket,
        doc: Doc::new(),
    };
    client.sync().await;
    client
}

#[tokio::test]
async fn every_reader_gets_each_writers_updates_in_order() {
    // Frames written straight into idle sockets, frames queued behind others, frames the
    // socket took only part of, and (by default) broadcasts held and written together
    // must reach every reader in the order the room sent them. Three writers flood
    // without waiting; one reader's small buffer makes the server's writes to it
    // partial and its queue fill and drain.
    for args in [&[][..], &["--batch-window", "0"]] {
        updates_arrive_in_order(args).await;
    }
}

async fn updates_arrive_in_order(args: &[&str]) {
    const WRITERS: usize = 3;
    const UPDATES: usize = 150;
    let reg = Registry::new();
    let (_server, addr) = start(&reg, args);
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(Client::join(&addr, "order").await);
    }
    readers.push(join_with_small_buffer(&addr, "order").await);
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        writers.push(Client::join(&addr, "order").await);
    }
    // Every update made beforehand, so each is known by its bytes.
    let mut sent: HashMap<Vec<u8>, (usize, usize)> = HashMap::new();
    let mut frames = Vec::new();
    for (w, writer) in writers.iter().enumerate() {
        let text = writer.doc.get_or_insert_text(format!("w{w}"));
        let mut updates = Vec::new();
        for i in 0..UPDATES {
            let before = writer.doc.transact().state_vector();
            let len = text.len(&writer.doc.transact());
            text.insert(&mut writer.doc.transact_mut(), len, &"z".repeat(1500));
            let update = writer.doc.transact().encode_state_as_update_v1(&before);
            sent.insert(update.clone(), (w, i));
            updates.push(Message::Sync(SyncMessage::Update(update)).encode_v1());
        }
        frames.push(updates);
    }
    let floods = writers
        .into_iter()
        .zip(frames)
        .map(|(mut writer, updates)| {
            tokio::spawn(async move {
                for frame in updates {
                    writer.socket.feed(Ws::binary(frame)).await.unwrap();
                }
                writer.socket.flush().await.unwrap();
                writer
            })
        });
    let floods: Vec<_> = floods.collect();
    for (r, reader) in readers.iter_mut().enumerate() {
        let mut next = [0; WRITERS];
        while next.iter().sum::<usize>() < WRITERS * UPDATES {
            let Message::Sync(SyncMessage::Update(update)) = reader.next().await else {
                continue;
            };
            let (w, i) = sent[&update];
            assert_eq!(
                i, next[w],
                "reader {r}: writer {w}'s update {i} out of order"
            );
            next[w] += 1;
        }
    }
    for flood in floods {
        flood.await.unwrap();
    }
}

#[test]
fn a_batch_window_over_a_second_is_refused_with_a_clear_error() {
    let reg = Registry::new();
    let out = reg.output(&["yjs", "--port", "0", "--batch-window", "2s"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--batch-window") && stderr.contains("at most 1s"),
        "{stderr}"
    );
    assert!(reg.ids().is_empty(), "nothing registered");
}
