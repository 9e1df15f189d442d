//! The Rust reader against every shared test vector in `testdata/vectors/` (the Vite
//! plugin is tested against the same folders): each case's registry file, read through
//! the real `Store` from a temp directory and judged with the case's process table,
//! hostname and clock, must give exactly the expected API answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use wsreg::registry::{Judge, ProcessState, ProcessTable, Timestamp, model};
use wsreg::{Error, Store};

struct CaseTable(HashMap<u32, Option<u64>>);

impl ProcessTable for CaseTable {
    fn probe(&self, pid: u32) -> ProcessState {
        match self.0.get(&pid) {
            Some(start_time) => ProcessState::Running {
                start_time: *start_time,
            },
            None => ProcessState::Missing,
        }
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

/// Reads one case; returns the answer, or the error's short name.
fn answer(case_dir: &Path, case: &Value) -> Result<Value, String> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("servers.json");
    let source = case_dir.join(case["registry"].as_str().unwrap());
    if source.exists() {
        let mut bytes = std::fs::read(&source).unwrap();
        if let Some(n) = case["generate"]["oversizedBytes"].as_u64() {
            bytes.resize(n as usize, b' ');
        }
        std::fs::write(&path, bytes).unwrap();
    }
    let snapshot = match Store::new(&path).read() {
        Ok(s) => s,
        Err(Error::UnsupportedVersion { .. }) => return Err("unsupported-version".into()),
        Err(e) => return Err(e.to_string()),
    };
    let table = CaseTable(
        case["processes"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(pid, start)| (pid.parse().unwrap(), start.as_u64()))
            .collect(),
    );
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
        let want = match case["expectError"].as_str() {
            Some(err) => Err(err.to_owned()),
            None => Ok(serde_json::from_slice::<Value>(
                &std::fs::read(dir.join("expected.json")).unwrap(),
            )
            .unwrap()),
        };
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
