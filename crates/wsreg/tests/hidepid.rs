//! A `/proc` that will not describe a process (mounted `hidepid=1`, as hardened machines
//! do) is not evidence that the process is gone: its entry is `unknown` — listed, flagged
//! by `list --all`, and kept by `prune`. Without hidepid, the same `prune` removes the
//! entry once the process is really gone, so the test would see a reader that took
//! EPERM for "no such process".
//!
//! The test runs `wsreg` as the user `nobody` in a mount namespace of its own with a
//! fresh `/proc` mounted `hidepid=1`, against an entry naming a root process: that needs
//! root, so it is `#[ignore]`d unless asked for (./test.sh asks when run as root, as CI is).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const NOBODY: &str = "65534";

/// `wsreg ARGS…` as nobody; with `hidepid`, under a `/proc` mounted `hidepid=1`.
fn as_nobody(wsreg: &Path, registry: &Path, hidepid: bool, args: &[&str]) -> Output {
    let mut command = format!(
        "exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups {} --registry {}",
        wsreg.display(),
        registry.display()
    );
    for arg in args {
        command.push(' ');
        command.push_str(arg);
    }
    let output = match hidepid {
        true => Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount -t proc -o hidepid=1 proc /proc && {command}"
            ))
            .output(),
        false => Command::new("sh").args(["-c", &command]).output(),
    }
    .expect("run unshare/setpriv (util-linux)");
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
#[ignore = "needs root (a mount namespace, setpriv): cargo nextest run --run-ignored all, as ./test.sh does as root"]
fn an_unreadable_process_is_unknown_listed_and_never_pruned() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A copy nobody may run, wherever the checkout is.
    let wsreg = dir.path().join("wsreg");
    std::fs::copy(common::WSREG, &wsreg).unwrap();
    // nobody's registry.
    let base = dir.path().join("reg");
    std::fs::create_dir(&base).unwrap();
    std::os::unix::fs::chown(&base, Some(65534), Some(65534)).unwrap();
    let registry = base.join("servers.json");
    let (mut root_process, port) = common::listening_process();
    let pid = root_process.pid().to_string();
    let port = port.to_string();

    // nobody registers root's process (its /proc entry is readable without hidepid).
    let registered = as_nobody(
        &wsreg,
        &registry,
        false,
        &["register", "--port", &port, "--pid", &pid],
    );
    let id = String::from_utf8(registered.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let entry_file = base.join("servers").join(format!("{id}.json"));
    assert!(entry_file.exists());

    // Under hidepid, /proc/<pid>/stat answers EPERM to nobody.
    let pruned = as_nobody(&wsreg, &registry, true, &["prune"]);
    assert!(
        entry_file.exists(),
        "prune removed a live entry it could not read: {}",
        String::from_utf8_lossy(&pruned.stdout)
    );
    let listed = as_nobody(&wsreg, &registry, true, &["list", "--all", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let entry = &doc["servers"][0];
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["live"], true);
    let why = entry["unknownReason"].as_str().unwrap_or_default();
    assert!(
        why.contains(&format!("cannot read /proc/{pid}/stat")),
        "{entry}"
    );
    let plain = as_nobody(&wsreg, &registry, true, &["list", "--json"]);
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains(&id),
        "an unknown entry is listed"
    );

    // Once the process is really gone, prune removes the entry.
    root_process.signal(libc::SIGKILL);
    root_process.wait_exit(common::STEP);
    as_nobody(&wsreg, &registry, false, &["prune"]);
    assert!(!entry_file.exists(), "prune kept a dead entry");
}
