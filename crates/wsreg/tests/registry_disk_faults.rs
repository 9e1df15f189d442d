//! Disk faults on a real file system: a registry on a tiny tmpfs that fills up, and one
//! that turns read-only. Writes fail with a clear error and the existing entries are
//! intact.
//! Mounting needs root, so these tests are `#[ignore]`d: a run that does not ask for them
//! says "skipped" in its summary, and ./test.sh asks for them when it runs as root (CI
//! does).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::own_port;
use wsreg::{Server, Store};

/// A tmpfs mounted for one test, unmounted on drop.
struct TinyFs {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl TinyFs {
    fn mount(size: &str) -> TinyFs {
        assert_eq!(
            rustix::process::geteuid().as_raw(),
            0,
            "mounting a tmpfs needs root: these tests are ignored unless asked for (./test.sh asks when run as root, as CI is)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
                path(&dir),
            ],
        );
        TinyFs { _tmp: tmp, dir }
    }

    fn remount_read_only(&self) {
        run("mount", &["-o", "remount,ro", path(&self.dir)]);
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd).args(args).status().unwrap();
    assert!(status.success(), "{cmd} {args:?} failed");
}

#[test]
#[ignore = "needs root (mounts a tmpfs): cargo nextest run --run-ignored all, as ./test.sh does as root"]
fn a_full_disk_fails_registration_clearly_and_keeps_the_file() {
    let fs = TinyFs::mount("64k");
    let store = Store::new(fs.dir.join("servers"));
    let first = Server::new("echo", own_port()).register(&store).unwrap();
    let before = std::fs::read(store.entry_path(first.id())).unwrap();
    // Fill the file system to the last byte.
    let filler = fs.dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    let _ = std::io::Write::write_all(&mut f, &[0u8]);
    drop(f);

    let err = Server::new("echo", own_port())
        .name("n".repeat(200))
        .register(&store)
        .map(drop)
        .unwrap_err();
    let msg = wsreg::error::Chain(&err).to_string();
    println!("{msg}");
    assert!(msg.contains("No space left on device"), "{msg}");
    assert!(
        msg.contains(path(&fs.dir)),
        "the error names the place: {msg}"
    );
    assert_eq!(
        std::fs::read(store.entry_path(first.id())).unwrap(),
        before,
        "the other entry is intact"
    );
    assert_eq!(store.live().unwrap()[0].id, first.id());
    let leftovers: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );

    std::fs::remove_file(&filler).unwrap();
    let second = Server::new("echo", own_port()).register(&store).unwrap();
    assert_eq!(store.live().unwrap().len(), 2, "{}", second.id());
}

#[test]
#[ignore = "needs root (mounts a tmpfs): cargo nextest run --run-ignored all, as ./test.sh does as root"]
fn a_read_only_registry_fails_writes_clearly_and_keeps_serving_reads() {
    let fs = TinyFs::mount("1m");
    let store = Store::new(fs.dir.join("servers"));
    let live = Server::new("echo", own_port()).register(&store).unwrap();
    fs.remount_read_only();
    let err = Server::new("echo", own_port())
        .register(&store)
        .map(drop)
        .unwrap_err();
    assert!(
        wsreg::error::Chain(&err)
            .to_string()
            .contains("Read-only file system"),
        "{err}"
    );
    assert_eq!(store.live().unwrap()[0].id, live.id(), "readers still read");
    let err = live.unregister().unwrap_err();
    assert!(
        wsreg::error::Chain(&err)
            .to_string()
            .contains("Read-only file system"),
        "{err}"
    );
}
