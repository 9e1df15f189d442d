//! Writers in other languages get the format right with ten lines: the Node and Python
//! writers shown in docs/registry-format.md are taken from the doc itself, run as real
//! processes (each then listens on its port, as the server it stands for would), and
//! read by the Rust reader. A writer that dies without unregistering is judged dead at
//! once, and `prune` removes its file.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{Registry, STEP, eventually};

/// The first code block in docs/registry-format.md after the line containing `after`.
fn snippet(after: &str) -> String {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/registry-format.md"),
    )
    .unwrap();
    let rest = &doc[doc
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} in the doc"))..];
    let block = &rest[rest.find("```").unwrap()..];
    let body = &block[block.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Runs a writer that registers `port` and then listens on it and stays alive.
fn start(reg: &Registry, program: &str, file: &Path, port: u16) -> Child {
    Command::new(program)
        .arg(file)
        .env("WSREG_REGISTRY", reg.store().dir())
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

fn check(reg: &Registry, mut writer: Child, port: u16) {
    eventually("the foreign entry listed", STEP, || reg.ids().len() == 1);
    let server = reg.list()["servers"][0].clone();
    assert_eq!(server["kind"], "echo");
    assert_eq!(server["port"], port);
    assert_eq!(server["url"], format!("ws://127.0.0.1:{port}/"));
    assert_eq!(server["pid"], writer.id());
    let out = reg.output(&["list", "--json"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert!(reg.ids().is_empty(), "a dead writer's entry is not listed");
    let out = reg.output(&["prune"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 file removed"));
    assert_eq!(std::fs::read_dir(reg.store().dir()).unwrap().count(), 0);
}

/// Runs the doc's writer that follows `heading`, then `stay` (listen on the port and stay
/// alive), with
/// `program`, and checks what the Rust reader makes of it.
fn run_doc_writer(heading: &str, program: &str, file_name: &str, stay: &str) {
    let reg = Registry::new();
    let code = snippet(heading);
    assert!(code.lines().count() <= 12, "{code}");
    let file = reg.path().parent().unwrap().join(file_name);
    std::fs::write(&file, format!("{code}\n{stay}\n")).unwrap();
    let port = free_port();
    check(&reg, start(&reg, program, &file, port), port);
}

#[test]
fn the_docs_ten_line_node_writer_is_read_by_the_rust_reader() {
    run_doc_writer(
        "A writer in ten lines of Node",
        "node",
        "writer.mjs",
        "(await import('node:net')).default.createServer().listen(port, '127.0.0.1');",
    );
}

#[test]
fn the_docs_ten_line_python_writer_is_read_by_the_rust_reader() {
    run_doc_writer(
        "in ten lines of Python",
        "python3",
        "writer.py",
        "import time\nserver = socket.create_server(('127.0.0.1', port))\ntime.sleep(60)",
    );
}
