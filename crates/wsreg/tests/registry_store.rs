//! The store and `Registration` on a real file system (registry version 2, a directory
//! of entry files): entries come back by themselves, bad files hide only themselves,
//! unsafe paths are refused or never followed, permissions are repaired, and writers
//! that start together never meet.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wsreg::registry::{FileRead, SkipReason};
use wsreg::{Error, Server, Store};

mod common;
use common::own_port;

fn temp_store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("reg")).unwrap();
    let store = Store::new(tmp.path().join("reg").join("servers"));
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

/// Waits (reading every 2 ms) until `done` holds; returns how long that took, or panics
/// after 3 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{what}: not after 3 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    start.elapsed()
}

fn wait_listed(store: &Store, want: &[&str]) -> Duration {
    wait_for(&format!("{want:?} listed"), || {
        store
            .read()
            .is_ok_and(|s| want.iter().all(|id| s.entries.iter().any(|e| e.id == *id)))
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn registration_writes_one_file_and_removes_it_on_drop() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", own_port())
        .name("a")
        .project("p")
        .register(&store)
        .unwrap();
    assert_eq!(names(store.dir()), [format!("{}.json", reg.id())]);
    let text = fs::read_to_string(store.entry_path(reg.id())).unwrap();
    assert!(text.starts_with(r#"{"version":2,"id":""#), "{text}");
    let live = store.live().unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].name.as_deref(), Some("a"));
    assert_eq!(live[0].pid, std::process::id());
    drop(reg);
    assert!(
        names(store.dir()).is_empty(),
        "no file and no temp file left"
    );
}

#[test]
fn directory_is_0700_and_files_0600() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    assert_eq!(fs::metadata(store.dir()).unwrap().mode() & 0o777, 0o700);
    let file = fs::metadata(store.entry_path(reg.id())).unwrap();
    assert_eq!(file.mode() & 0o777, 0o600);
}

#[test]
fn loose_directory_permissions_are_repaired_by_a_writer() {
    let (_tmp, store) = temp_store();
    fs::create_dir_all(store.dir()).unwrap();
    fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o777)).unwrap();
    let _reg = Server::new("echo", 4000).register(&store).unwrap();
    assert_eq!(fs::metadata(store.dir()).unwrap().mode() & 0o777, 0o700);
}

#[test]
fn a_corrupted_entry_file_hides_only_that_entry_and_its_owner_rewrites_it() {
    let (_tmp, store) = temp_store();
    let mine = Server::new("echo", 4000).register(&store).unwrap();
    let other = Server::new("echo", 4001).register(&store).unwrap();
    let path = store.entry_path(mine.id());
    let started = Instant::now();
    fs::write(&path, "{ torn").unwrap();
    let back = wait_for(
        "the corrupted entry rewritten",
        || matches!(store.read_entry(path.file_name().unwrap()), FileRead::Entry(e, _) if e.id == mine.id()),
    );
    println!("corrupted → rewritten by its owner in {back:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(ids(&store).len(), 2);
    assert!(ids(&store).contains(&other.id().to_owned()));
}

#[test]
fn a_deleted_entry_file_comes_back_for_each_of_three_registrations() {
    let (_tmp, store) = temp_store();
    let regs: Vec<_> = (0..3)
        .map(|i| Server::new("echo", 4000 + i).register(&store).unwrap())
        .collect();
    for reg in &regs {
        fs::remove_file(store.entry_path(reg.id())).unwrap();
    }
    let want: Vec<&str> = regs.iter().map(|r| r.id()).collect();
    let took = wait_listed(&store, &want);
    println!("three deleted entries back in {took:?}");
}

#[test]
fn the_directory_deleted_is_recreated_with_the_entry() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    // The keeper may put its file back while the directory is being removed (the unlink
    // of the file comes first): then the removal finds it not empty, and goes again.
    for attempt in 1.. {
        match fs::remove_dir_all(store.dir()) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < 100 => {}
            Err(e) => panic!("cannot remove {}: {e}", store.dir().display()),
        }
    }
    wait_listed(&store, &[reg.id()]);
    assert_eq!(fs::metadata(store.dir()).unwrap().mode() & 0o777, 0o700);
}

#[test]
fn an_entry_unregistered_by_mistake_comes_back_and_a_replaced_one_is_restored() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", own_port()).register(&store).unwrap();
    assert!(store.unregister(reg.id()).unwrap());
    wait_listed(&store, &[reg.id()]);
    // Another valid entry renamed over the file: the owner restores its own.
    let mut impostor = reg.entry().clone();
    impostor.port = 4999;
    let tmp = store.dir().join(".impostor.tmp");
    fs::write(&tmp, wsreg::registry::model::entry_file_json(&impostor)).unwrap();
    fs::rename(&tmp, store.entry_path(reg.id())).unwrap();
    wait_for("the owner's port back", || {
        store
            .live()
            .unwrap()
            .first()
            .is_some_and(|e| e.port == own_port())
    });
}

#[test]
fn unregister_refuses_an_id_that_is_not_a_file_name_of_the_registry() {
    let (tmp, store) = temp_store();
    let outside = tmp.path().join("reg").join("victim.json");
    fs::create_dir(store.dir()).unwrap();
    fs::write(&outside, "keep").unwrap();
    for id in ["../victim", ".hidden", "", "a/b"] {
        assert!(store.unregister(id).is_err(), "{id:?}");
    }
    assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
}

#[test]
fn a_symlinked_entry_file_is_skipped_and_not_followed() {
    let (tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    let target = tmp.path().join("elsewhere.json");
    let mut copy = reg.entry().clone();
    copy.id = "linked".into();
    fs::write(&target, wsreg::registry::model::entry_file_json(&copy)).unwrap();
    symlink(&target, store.entry_path("linked")).unwrap();
    let snapshot = store.read().unwrap();
    assert_eq!(snapshot.entries.len(), 1);
    assert_eq!(snapshot.skipped.len(), 1);
    assert_eq!(snapshot.skipped[0].reason, SkipReason::Symlink);
    assert!(
        snapshot.skipped[0]
            .to_string()
            .contains("linked.json: skipped: a symbolic link"),
        "{}",
        snapshot.skipped[0]
    );
}

#[test]
fn a_symlinked_registry_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    symlink(&real, tmp.path().join("link")).unwrap();
    let store = Store::new(tmp.path().join("link"));
    assert!(matches!(store.read(), Err(Error::Symlink { .. })));
    assert!(matches!(
        Server::new("echo", 4000).register(&store).map(drop),
        Err(Error::Symlink { .. })
    ));
    assert!(fs::read_dir(&real).unwrap().next().is_none());
}

/// A directory owned by someone else: made with chown when running as root (as CI does),
/// else `/`, which belongs to root.
fn foreign_dir(tmp: &Path) -> PathBuf {
    if rustix::process::geteuid().as_raw() != 0 {
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
    let store = Store::new(foreign_dir(tmp.path()));
    let err = store.read().unwrap_err();
    assert!(matches!(err, Error::ForeignOwner { .. }), "{err}");
    assert!(err.to_string().contains("is owned by uid"), "{err}");
    assert!(matches!(
        Server::new("echo", 4000).register(&store).map(drop),
        Err(Error::ForeignOwner { .. })
    ));
}

#[test]
#[ignore = "needs root (gives a file away with chown): cargo nextest run --run-ignored all, as ./test.sh does as root"]
fn an_entry_file_owned_by_another_user_is_skipped() {
    let (_tmp, store) = temp_store();
    let theirs = Server::new("echo", 4000).register_once(&store).unwrap();
    let mine = Server::new("echo", 4001).register_once(&store).unwrap();
    std::os::unix::fs::chown(store.entry_path(&theirs.id), Some(65534), Some(65534)).unwrap();
    let snapshot = store.read().unwrap();
    assert_eq!(ids(&store), std::slice::from_ref(&mine.id));
    assert_eq!(
        snapshot.skipped[0].reason,
        SkipReason::ForeignOwner { owner: 65534 }
    );
    let pruned = store.prune().unwrap();
    assert!(pruned.is_empty(), "prune never touches another user's file");
}

#[test]
fn an_oversized_entry_file_is_skipped_unread_and_left_whole() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    let big = store.entry_path("big");
    let bytes = vec![b' '; 100 * 1024 * 1024];
    fs::write(&big, &bytes).unwrap();
    let started = Instant::now();
    let snapshot = store.read().unwrap();
    println!("a read past a 100 MB entry file: {:?}", started.elapsed());
    assert_eq!(ids(&store), [reg.id().to_owned()]);
    assert_eq!(
        snapshot.skipped[0].reason,
        SkipReason::TooLarge(100 * 1024 * 1024)
    );
    assert_eq!(fs::metadata(&big).unwrap().len(), 100 * 1024 * 1024);
}

#[test]
fn invalid_entry_files_are_skipped_and_the_valid_ones_kept() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    let mut other = reg.entry().clone();
    other.id = "someone-else".into();
    fs::write(
        store.entry_path("named-wrong"),
        wsreg::registry::model::entry_file_json(&other),
    )
    .unwrap();
    fs::write(
        store.entry_path("v1"),
        r#"{"version":1,"id":"v1","port":1,"pid":1}"#,
    )
    .unwrap();
    fs::write(
        store.entry_path("bad-port"),
        r#"{"version":2,"id":"bad-port","port":0,"pid":1}"#,
    )
    .unwrap();
    fs::write(store.dir().join(".x.123.tmp"), "half a wri").unwrap();
    fs::write(store.dir().join("notes.txt"), "hello").unwrap();
    let snapshot = store.read().unwrap();
    assert_eq!(ids(&store), [reg.id().to_owned()]);
    let mut reasons: Vec<String> = snapshot.skipped.iter().map(|s| s.to_string()).collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:#?}");
    assert!(
        reasons[0].contains("bad-port.json: skipped: port 0 is out of range"),
        "{reasons:#?}"
    );
    assert!(reasons[1].contains("named-wrong.json: skipped: the entry's id \"someone-else\" does not match its file name"), "{reasons:#?}");
    assert!(
        reasons[2].contains("v1.json: skipped: format version 1 is not supported"),
        "{reasons:#?}"
    );
}

#[test]
fn prune_removes_dead_entries_and_old_junk_but_not_young_junk_or_the_legacy_file() {
    let (_tmp, store) = temp_store();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let dead = Server::for_pid("echo", 4000, child.id())
        .register_once(&store)
        .unwrap();
    let live = Server::new("echo", 4001).register_once(&store).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let old_junk = store.entry_path("old-junk");
    fs::write(&old_junk, "{").unwrap();
    let old_tmp = store.dir().join(".x.abc.tmp");
    fs::write(&old_tmp, "{").unwrap();
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in [&old_junk, &old_tmp] {
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    }
    let young_junk = store.entry_path("young-junk");
    fs::write(&young_junk, "{").unwrap();
    fs::write(
        store.legacy_path(),
        r#"{"version":1,"servers":[{"id":"x","port":1,"pid":4194304}]}"#,
    )
    .unwrap();

    let mut pruned: Vec<String> = store
        .prune()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {:?} {}",
                p.path.file_name().unwrap().to_string_lossy(),
                p.id,
                p.reason
            )
        })
        .collect();
    pruned.sort();
    assert_eq!(pruned.len(), 3, "{pruned:#?}");
    assert!(
        pruned[0].starts_with(".x.abc.tmp None a temp file"),
        "{pruned:#?}"
    );
    assert_eq!(
        pruned[1],
        format!("{}.json Some({:?}) no such process", dead.id, dead.id)
    );
    assert!(
        pruned[2].starts_with("old-junk.json None not valid JSON"),
        "{pruned:#?}"
    );
    assert!(young_junk.exists());
    assert!(store.entry_path(&live.id).exists());
    assert!(store.legacy_path().exists());
}

#[test]
fn the_legacy_file_is_read_and_merged_but_never_written() {
    let (_tmp, store) = temp_store();
    fs::create_dir_all(store.base_dir()).unwrap();
    let me = std::process::id();
    let legacy = format!(
        r#"{{"version":1,"servers":[{{"id":"old","port":5001,"pid":{me},"startedAt":"2020-01-01T00:00:00Z"}}]}}"#
    );
    fs::write(store.legacy_path(), &legacy).unwrap();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    assert_eq!(ids(&store), ["old".to_owned(), reg.id().to_owned()]);
    drop(reg);
    assert_eq!(fs::read_to_string(store.legacy_path()).unwrap(), legacy);
}

#[test]
fn a_path_ending_in_json_names_the_legacy_file_beside_its_directory() {
    let store = Store::new("/x/reg/servers.json");
    assert_eq!(store.dir(), Path::new("/x/reg/servers"));
    assert_eq!(store.legacy_path(), Path::new("/x/reg/servers.json"));
    let store = Store::new("/x/reg/servers");
    assert_eq!(store.dir(), Path::new("/x/reg/servers"));
    assert_eq!(store.legacy_path(), Path::new("/x/reg/servers.json"));
    assert_eq!(store.base_dir(), Path::new("/x/reg"));
}

#[test]
fn a_hundred_registrations_at_once_lose_nothing_and_leave_no_temp_file() {
    let (_tmp, store) = temp_store();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(100));
    let threads: Vec<_> = (0..100u16)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                Server::new("echo", 4000 + i)
                    .register_once(&store)
                    .unwrap()
                    .id
            })
        })
        .collect();
    let mut registered: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    registered.sort();
    let mut listed = ids(&store);
    listed.sort();
    assert_eq!(listed, registered);
    assert_eq!(names(store.dir()).len(), 100, "only entry files");
}

#[test]
fn a_lease_is_renewed_while_the_registration_lives() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", own_port())
        .lease(Duration::from_secs(1))
        .register(&store)
        .unwrap();
    let first = store.read().unwrap().entries[0].heartbeat_at.unwrap();
    wait_for("the lease renewed", || {
        store.read().unwrap().entries[0].heartbeat_at.unwrap() > first
    });
    assert_eq!(store.live().unwrap()[0].id, reg.id());
}

#[test]
fn a_hundred_thousand_junk_files_do_not_stall_a_reader() {
    let (_tmp, store) = temp_store();
    let reg = Server::new("echo", 4000).register(&store).unwrap();
    for i in 0..50_000 {
        fs::write(store.dir().join(format!("junk-{i}")), "").unwrap();
        fs::write(store.dir().join(format!("junk-{i}.json")), "x").unwrap();
    }
    let started = Instant::now();
    let snapshot = store.read().unwrap();
    let took = started.elapsed();
    println!("a read among 100,000 junk files (50,000 of them invalid .json): {took:?}");
    assert_eq!(snapshot.entries.len(), 1);
    assert_eq!(snapshot.entries[0].id, reg.id());
    assert_eq!(snapshot.skipped.len(), 50_000);
}
