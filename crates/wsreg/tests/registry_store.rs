//! The store and `Registration` on a real file system: entries come back by themselves,
//! corrupt files are moved aside, unsafe paths are refused, permissions are repaired.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wsreg::{Error, Server, Store};

fn temp_store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path().join("reg").join("servers.json"));
    (tmp, store)
}

fn ids(store: &Store) -> Vec<String> {
    store
        .read()
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Polls until every id is listed; returns how long that took, or panics after 3 s.
fn wait_listed(store: &Store, want: &[&str]) -> Duration {
    let start = Instant::now();
    loop {
        let listed = store
            .read()
            .map(|s| s.entries.into_iter().map(|e| e.id).collect::<Vec<_>>());
        if let Ok(listed) = listed
            && want.iter().all(|id| listed.iter().any(|l| l == id))
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{want:?} not back after 3 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn corrupt_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("servers.json.corrupt-"))
        .collect()
}

#[test]
fn registration_lists_then_unregisters_on_drop() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000)
        .name("a")
        .project("p")
        .register(&store)
        .unwrap();
    let live = store.live().unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, reg.id());
    assert_eq!(live[0].pid, std::process::id());
    assert!(live[0].pid_start_time.is_some());
    drop(reg);
    assert_eq!(ids(&store), Vec::<String>::new());
}

#[test]
fn directory_is_0700_and_file_0600() {
    let (_tmp, store) = temp_store();
    let _reg = Server::new("echo", 4000).register(&store).unwrap();
    assert_eq!(fs::metadata(store.dir()).unwrap().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(store.path()).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn loose_permissions_are_repaired_by_a_writer() {
    let (_tmp, store) = temp_store();
    let _reg = Server::new("echo", 4000).register(&store).unwrap();
    fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(store.path(), fs::Permissions::from_mode(0o666)).unwrap();
    let _other = Server::new("echo", 4001).register(&store).unwrap();
    assert_eq!(fs::metadata(store.dir()).unwrap().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(store.path()).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn a_corrupt_file_is_moved_aside_and_a_live_registration_is_back_within_a_second() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    fs::write(store.path(), b"{\"servers\": [ this is not json").unwrap();
    let took = wait_listed(&store, &[reg.id()]);
    println!(
        "entry back {} ms after the file was corrupted",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let aside = corrupt_files(store.dir());
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        fs::read(&aside[0]).unwrap(),
        b"{\"servers\": [ this is not json"
    );
}

#[test]
fn the_file_deleted_while_three_registrations_live_brings_all_three_back_within_a_second() {
    let (_tmp, store) = temp_store();
    let regs: Vec<_> = (0..3)
        .map(|i| Server::new("echo", 4000 + i).register(&store).unwrap())
        .collect();
    let want: Vec<&str> = regs.iter().map(|r| r.id()).collect();
    wait_listed(&store, &want);
    fs::remove_file(store.path()).unwrap();
    let took = wait_listed(&store, &want);
    println!(
        "3 entries back {} ms after the file was deleted",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn the_directory_deleted_is_recreated_with_the_entry() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    fs::remove_dir_all(store.dir()).unwrap();
    let took = wait_listed(&store, &[reg.id()]);
    println!(
        "entry back {} ms after its directory was deleted",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(fs::metadata(store.dir()).unwrap().mode() & 0o777, 0o700);
}

#[test]
fn an_entry_pruned_by_mistake_comes_back() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    store
        .update(|entries| {
            entries.clear();
            Ok(())
        })
        .unwrap();
    let took = wait_listed(&store, &[reg.id()]);
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn a_symlinked_registry_file_is_refused() {
    let (tmp, store) = temp_store();
    fs::create_dir_all(store.dir()).unwrap();
    fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o700)).unwrap();
    let target = tmp.path().join("elsewhere.json");
    fs::write(&target, "{}").unwrap();
    symlink(&target, store.path()).unwrap();
    assert!(matches!(store.read(), Err(Error::Symlink { .. })));
    let err = Server::new("echo", 4000)
        .register(&store)
        .map(drop)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("refusing {}: it is a symbolic link", store.path().display())
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "{}",
        "the link's target is untouched"
    );
}

#[test]
fn a_symlinked_registry_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    symlink(&real, tmp.path().join("link")).unwrap();
    let store = Store::new(tmp.path().join("link").join("servers.json"));
    assert!(matches!(store.read(), Err(Error::Symlink { .. })));
    assert!(matches!(
        Server::new("echo", 4000).register(&store).map(drop),
        Err(Error::Symlink { .. })
    ));
    assert!(!real.join("servers.json").exists());
}

/// A directory owned by someone else: made with chown when running as root (as CI does),
/// else `/`, which belongs to root.
fn foreign_dir(tmp: &Path) -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return PathBuf::from("/");
    }
    let dir = tmp.join("theirs");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    dir
}

#[test]
fn a_registry_directory_owned_by_another_user_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(foreign_dir(tmp.path()).join("servers.json"));
    let err = store.read().unwrap_err();
    assert!(matches!(err, Error::ForeignOwner { .. }), "{err}");
    assert!(err.to_string().contains("is owned by uid"), "{err}");
    assert!(matches!(
        Server::new("echo", 4000).register(&store).map(drop),
        Err(Error::ForeignOwner { .. })
    ));
}

#[test]
fn a_registry_file_owned_by_another_user_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Only root can give a file away; the directory test covers the check itself.
        return;
    }
    let (_tmp, store) = temp_store();
    let _reg = Server::new("echo", 4000).register(&store).unwrap();
    std::os::unix::fs::chown(store.path(), Some(65534), Some(65534)).unwrap();
    assert!(matches!(store.read(), Err(Error::ForeignOwner { .. })));
}

#[test]
fn a_newer_format_version_is_left_alone() {
    let (_tmp, store) = temp_store();
    fs::create_dir_all(store.dir()).unwrap();
    let doc = r#"{"version": 2, "servers": [{"id": "from-the-future"}]}"#;
    fs::write(store.path(), doc).unwrap();
    let err = Server::new("echo", 4000)
        .register(&store)
        .map(drop)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("format version 2 is not supported"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(store.path()).unwrap(), doc);
}

#[test]
fn an_oversized_file_is_not_read_and_is_moved_aside_whole() {
    let (_tmp, store) = temp_store();
    fs::create_dir_all(store.dir()).unwrap();
    let big = vec![b' '; 16 * 1024 * 1024 + 1];
    fs::write(store.path(), &big).unwrap();
    let snapshot = store.read().unwrap();
    assert!(snapshot.corrupt.is_some());
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    assert_eq!(ids(&store), [reg.id()]);
    let aside = corrupt_files(store.dir());
    assert_eq!(fs::metadata(&aside[0]).unwrap().len(), big.len() as u64);
}

#[test]
fn invalid_entries_are_skipped_and_the_valid_ones_kept() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
    doc["servers"]
        .as_array_mut()
        .unwrap()
        .insert(0, serde_json::json!({"id": "bad id", "port": 1, "pid": 1}));
    fs::write(store.path(), doc.to_string()).unwrap();
    let snapshot = store.read().unwrap();
    assert_eq!(snapshot.skipped.len(), 1);
    assert_eq!(snapshot.skipped[0].id.as_deref(), Some("bad id"));
    assert_eq!(snapshot.live().len(), 1);
    assert_eq!(snapshot.live()[0].id, reg.id());
}

#[test]
fn a_lease_is_renewed_while_the_registration_lives() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000)
        .lease(Duration::from_secs(1))
        .register(&store)
        .unwrap();
    let first = store.read().unwrap().entries[0].heartbeat_at.unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let later = store.read().unwrap().entries[0].heartbeat_at.unwrap();
    assert!(later > first, "heartbeat not renewed: {first} then {later}");
    assert_eq!(store.live().unwrap()[0].id, reg.id());
}
