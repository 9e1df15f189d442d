//! Writers in other languages get the format right with ten lines: the Node and Python
//! writers shown in docs/registry-format.md are taken from the doc itself, run as real
//! processes, and read by the Rust reader. A writer that dies without unregistering is
//! judged dead at once, and `prune` removes its file.

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

/// Runs a writer that registers port 45678 and then stays alive.
fn start(reg: &Registry, program: &str, file: &Path) -> Child {
    Command::new(program)
        .arg(file)
        .env("WSREG_REGISTRY", reg.store().dir())
        .env("PORT", "45678")
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

fn check(reg: &Registry, mut writer: Child) {
    eventually("the foreign entry listed", STEP, || reg.ids().len() == 1);
    let server = reg.list()["servers"][0].clone();
    assert_eq!(server["kind"], "echo");
    assert_eq!(server["port"], 45678);
    assert_eq!(server["url"], "ws://127.0.0.1:45678/");
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

/// Runs the doc's writer that follows `heading`, kept alive by `stay` after it, with
/// `program`, and checks what the Rust reader makes of it.
fn run_doc_writer(heading: &str, program: &str, file_name: &str, stay: &str) {
    let reg = Registry::new();
    let code = snippet(heading);
    assert!(code.lines().count() <= 12, "{code}");
    let file = reg.path().parent().unwrap().join(file_name);
    std::fs::write(&file, format!("{code}\n{stay}\n")).unwrap();
    check(&reg, start(&reg, program, &file));
}

#[test]
fn the_docs_ten_line_node_writer_is_read_by_the_rust_reader() {
    run_doc_writer(
        "A writer in ten lines of Node",
        "node",
        "writer.mjs",
        "setInterval(() => {}, 1 << 30);",
    );
}

#[test]
fn the_docs_ten_line_python_writer_is_read_by_the_rust_reader() {
    run_doc_writer(
        "in ten lines of Python",
        "python3",
        "writer.py",
        "import time\ntime.sleep(60)",
    );
}
