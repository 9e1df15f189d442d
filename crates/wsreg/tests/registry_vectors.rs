//! The Rust reader against every shared test vector in `testdata/vectors/` (the Vite
//! plugin is tested against the same folders): each case's registry directory and
//! legacy file, copied to a temp directory and read through the real `Store`, judged
//! with the case's process table, hostname and clock, must give exactly the expected
//! API answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use wsreg::Store;
use wsreg::registry::{Judge, Listening, ProcessState, ProcessTable, Timestamp, model};

/// A case's `processes` (PID → start time) and, when the case describes them, its
/// `sockets` (PID → the ports it listens on; `null`: its descriptors cannot be read).
struct CaseTable {
    processes: HashMap<u32, Option<u64>>,
    sockets: Option<HashMap<u32, Option<Vec<u16>>>>,
}

impl ProcessTable for CaseTable {
    fn probe(&self, pid: u32) -> ProcessState {
        match self.processes.get(&pid) {
            Some(start_time) => ProcessState::Running {
                start_time: *start_time,
            },
            None => ProcessState::Missing,
        }
    }

    fn listens(&self, pid: u32, port: u16, _kind: &str) -> Listening {
        let Some(sockets) = &self.sockets else {
            return Listening::Unchecked;
        };
        match sockets.get(&pid) {
            Some(None) => Listening::Unreadable(std::io::ErrorKind::PermissionDenied),
            Some(Some(ports)) if ports.contains(&port) => Listening::Yes,
            _ => Listening::No,
        }
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

/// Copies a case folder as it is (symlinks stay symlinks) into `to`.
fn copy_case(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let (src, dst) = (item.path(), to.join(item.file_name()));
        let kind = item.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            copy_case(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Reads one case through the real `Store`; returns the answer, or the error.
fn answer(case_dir: &Path, case: &Value) -> Result<Value, String> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("case");
    copy_case(case_dir, &root);
    if let Some(pad) = case["generate"]["pad"].as_str() {
        let path = root.join(pad);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.resize(case["generate"]["bytes"].as_u64().unwrap() as usize, b' ');
        std::fs::write(&path, bytes).unwrap();
    }
    let snapshot = Store::new(root.join("servers"))
        .read()
        .map_err(|e| e.to_string())?;
    let table = CaseTable {
        processes: case["processes"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(pid, start)| (pid.parse().unwrap(), start.as_u64()))
            .collect(),
        sockets: case["sockets"].as_object().map(|sockets| {
            sockets
                .iter()
                .map(|(pid, ports)| {
                    (
                        pid.parse().unwrap(),
                        serde_json::from_value(ports.clone()).unwrap(),
                    )
                })
                .collect()
        }),
    };
    let now = Timestamp::parse(case["now"].as_str().unwrap()).unwrap().0;
    let judge = Judge::new(&table, case["hostname"].as_str().unwrap(), now);
    let live = snapshot.entries.iter().filter(|e| judge.is_live(e));
    Ok(serde_json::from_str(&model::to_json(live)).unwrap())
}

#[test]
fn every_vector_gives_its_expected_answer() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("testdata/vectors exists")
        .map(|d| d.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 20,
        "expected the full set of vectors, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let case: Value =
            serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap();
        let got = answer(dir, &case);
        let want = Ok(serde_json::from_slice::<Value>(
            &std::fs::read(dir.join("expected.json")).unwrap(),
        )
        .unwrap());
        if got != want {
            failures.push(format!("{name}:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors differ:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
    println!("{} vectors agree", dirs.len());
}
