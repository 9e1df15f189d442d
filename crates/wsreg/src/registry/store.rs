//! The registry on disk, version 2: a directory holding one file per server,
//! `<id>.json`, and beside it the legacy single file of version 1, read-only.
//!
//! A writer touches only its own file: it writes a temp file in the same directory and
//! renames it into place, and unregistering unlinks it. No lock, no read-modify-write:
//! two servers starting together never meet, and `rename` shows readers the whole file
//! or none of it. There is no fsync: the registry is soft state (after a power loss no
//! registered process is alive), and a file torn by a crash is an invalid entry that
//! readers skip and `prune` removes (docs/registry-format.md, "Writing").
//!
//! A reader opens each file with `O_NOFOLLOW` and checks it before reading, so a symlink
//! planted in the directory is never followed and a huge file is never read; each
//! problem skips that one file, with its reason.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::liveness::Judge;
use super::model::{self, Entry, EntryError, FormatError, MAX_ENTRY_FILE_BYTES, MAX_FILE_BYTES};
use crate::error::{Error, Result};

/// The environment variable that overrides the default registry directory.
pub const ENV_VAR: &str = "WSREG_REGISTRY";

/// How old an invalid file or a leftover temp file must be before `prune` removes it: a
/// younger one may be a write in progress, or about to be restored by its owner.
pub const PRUNE_GRACE: Duration = Duration::from_secs(60);

/// What identifies one version of a file without reading it: every writer renames a
/// new inode in, and an edit in place changes the size or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileId {
    pub fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The identity of the file at `path` now (not following a symlink), if any.
    pub fn at(path: &Path) -> Option<FileId> {
        fs::symlink_metadata(path).ok().map(|m| FileId::of(&m))
    }

    /// The inode, which stays the same when only the file's metadata changes.
    pub fn inode(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

/// A file a reader passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: SkipReason,
}

/// Why a file, or an entry of the legacy file, was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A symbolic link: never followed.
    Symlink,
    /// A directory, a FIFO, …
    NotAFile,
    /// Owned by another user.
    ForeignOwner { owner: u32 },
    /// Over [`MAX_ENTRY_FILE_BYTES`]: not read at all.
    TooLarge(u64),
    /// The file could not be read.
    Unreadable(String),
    /// An entry file that breaks a rule of the format.
    Invalid(EntryError),
    /// The legacy file as a whole.
    Legacy(FormatError),
    /// One entry of the legacy file.
    LegacyEntry(model::Skipped),
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.reason {
            SkipReason::Legacy(e) => write!(f, "{path}: legacy file not read: {e}"),
            SkipReason::LegacyEntry(s) => write!(f, "{path}: {s}"),
            reason => write!(f, "{path}: skipped: {reason}"),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Symlink => f.write_str("a symbolic link (not followed)"),
            SkipReason::NotAFile => f.write_str("not a regular file"),
            SkipReason::ForeignOwner { owner } => {
                write!(f, "owned by uid {owner}, not by this user")
            }
            SkipReason::TooLarge(len) => write!(
                f,
                "{len} bytes, over the limit of {MAX_ENTRY_FILE_BYTES} (not read)"
            ),
            SkipReason::Unreadable(e) => write!(f, "cannot read it: {e}"),
            SkipReason::Invalid(e) => write!(f, "{e}"),
            SkipReason::Legacy(e) => write!(f, "{e}"),
            SkipReason::LegacyEntry(s) => write!(f, "{s}"),
        }
    }
}

/// One read of the registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The valid entries, live or dead, in registration order ([`model::order_key`]).
    pub entries: Vec<Entry>,
    /// What was passed over.
    pub skipped: Vec<Skipped>,
}

impl Snapshot {
    /// The live entries, judged now on this machine.
    pub fn live(&self) -> Vec<Entry> {
        let judge = Judge::system();
        self.entries
            .iter()
            .filter(|e| judge.is_live(e))
            .cloned()
            .collect()
    }
}

/// What one name in the registry directory holds. (A value returned and taken apart at
/// once, never stored in bulk: its size does not matter, hence the allowed lint.)
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum FileRead {
    /// A name that is not an entry's (`.tmp` files, other names): passed over silently.
    NotAnEntry,
    /// No such file (any more).
    Missing,
    /// A valid entry, and the version of the file it was read from.
    Entry(Entry, FileId),
    /// An entry file that was passed over.
    Skipped(Box<Skipped>, FileId),
}

/// A file `prune` removed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub path: PathBuf,
    /// The entry's id, when the file held a valid (dead) entry.
    pub id: Option<String>,
    pub reason: String,
}

/// A handle on one registry. Cheap to clone; holds no open file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    dir: PathBuf,
    legacy: PathBuf,
    /// Whether the user named this registry. The default location is created with all
    /// its parents on first use; a directory the user gave only if its parent exists,
    /// since a typo there would otherwise start a registry no reader looks at.
    given: bool,
}

impl Store {
    /// The registry a user named: a directory, or (as in version 1) a path ending in
    /// `.json`, which names the legacy file, beside the directory of the same name.
    pub fn new(path: impl Into<PathBuf>) -> Store {
        let path: PathBuf = path.into();
        let dir = match path.to_str().and_then(|p| p.strip_suffix(".json")) {
            Some(stem) if !stem.is_empty() && !stem.ends_with('/') => PathBuf::from(stem),
            _ => path,
        };
        let mut legacy = dir.clone().into_os_string();
        legacy.push(".json");
        Store {
            dir,
            legacy: legacy.into(),
            given: true,
        }
    }

    /// The registry chosen by `--registry`, else `WSREG_REGISTRY`, else the default
    /// `~/.peer-plan/servers/`.
    pub fn locate(explicit: Option<PathBuf>) -> Result<Store> {
        if let Some(path) = explicit {
            return Ok(Store::new(path));
        }
        if let Some(path) = std::env::var_os(ENV_VAR).filter(|p| !p.is_empty()) {
            return Ok(Store::new(path));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or(Error::NoHome)?;
        Ok(Store {
            given: false,
            ..Store::new(Path::new(&home).join(".peer-plan").join("servers"))
        })
    }

    /// The registry directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The legacy file of version 1 beside it (read, never written).
    pub fn legacy_path(&self) -> &Path {
        &self.legacy
    }

    /// The directory that holds the registry directory (and files kept beside it, such
    /// as the auth token).
    pub fn base_dir(&self) -> &Path {
        match self.dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// The file of the entry `id`.
    pub fn entry_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Reads every entry file and the legacy file. A missing directory is an empty
    /// registry (with a warning when the user named it); each file that cannot be used
    /// is in [`Snapshot::skipped`], and logged.
    pub fn read(&self) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        if self.check_dir(false)? {
            let names = fs::read_dir(&self.dir)
                .map_err(Error::io("list", &self.dir))?
                .map(|name| name.map(|n| n.file_name()))
                .collect::<io::Result<Vec<OsString>>>()
                .map_err(Error::io("list", &self.dir))?;
            snapshot = self.read_entries(&names);
        } else if self.given {
            tracing::warn!(
                "{}: no such directory, so no server is registered there",
                self.dir.display()
            );
        }
        let (legacy, skipped) = self.read_legacy();
        snapshot.skipped.extend(skipped);
        merge_legacy(&mut snapshot.entries, legacy);
        snapshot
            .entries
            .sort_by(|a, b| model::order_key(a).cmp(&model::order_key(b)));
        warn_skipped(&snapshot.skipped);
        Ok(snapshot)
    }

    /// Reads and parses the files `names`, on every core when there are many: a cold
    /// read of 10,000 entries is one open, stat, read and parse per file, and one thread
    /// took 116 ms (bench/run.sh).
    fn read_entries(&self, names: &[OsString]) -> Snapshot {
        const PER_THREAD_AT_LEAST: usize = 512;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(names.len() / PER_THREAD_AT_LEAST)
            .max(1);
        let read_part = |part: &[OsString]| {
            let mut snapshot = Snapshot::default();
            for name in part {
                match self.read_entry(name) {
                    FileRead::Entry(entry, _) => snapshot.entries.push(entry),
                    FileRead::Skipped(skipped, _) => snapshot.skipped.push(*skipped),
                    FileRead::NotAnEntry | FileRead::Missing => {}
                }
            }
            snapshot
        };
        if threads == 1 {
            return read_part(names);
        }
        let parts: Vec<Snapshot> = std::thread::scope(|scope| {
            let handles: Vec<_> = names
                .chunks(names.len().div_ceil(threads))
                .map(|part| scope.spawn(move || read_part(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        parts
            .into_iter()
            .fold(Snapshot::default(), |mut all, part| {
                all.entries.extend(part.entries);
                all.skipped.extend(part.skipped);
                all
            })
    }

    /// The live entries, read now.
    pub fn live(&self) -> Result<Vec<Entry>> {
        Ok(self.read()?.live())
    }

    /// Reads the file `name` of the registry directory, as every reader does.
    pub fn read_entry(&self, name: &OsStr) -> FileRead {
        let Some(file_name) = entry_file_name(name) else {
            return FileRead::NotAnEntry;
        };
        let path = self.dir.join(name);
        let (bytes, id) = match read_checked(&path, MAX_ENTRY_FILE_BYTES) {
            Checked::Read(bytes, id) => (bytes, id),
            Checked::Missing => return FileRead::Missing,
            Checked::Refused(reason, id) => {
                return FileRead::Skipped(Box::new(Skipped { path, reason }), id);
            }
        };
        match model::parse_entry_file(&bytes, file_name) {
            Ok(entry) => FileRead::Entry(entry, id),
            Err(e) => FileRead::Skipped(
                Box::new(Skipped {
                    path,
                    reason: SkipReason::Invalid(e),
                }),
                id,
            ),
        }
    }

    /// The entries of the legacy file, and what was skipped in it. A missing file holds
    /// none; one that cannot be read holds none, with its reason. Never written.
    pub fn read_legacy(&self) -> (Vec<Entry>, Vec<Skipped>) {
        let path = &self.legacy;
        let skip = |reason| {
            let skipped = Skipped {
                path: path.clone(),
                reason,
            };
            (Vec::new(), vec![skipped])
        };
        let bytes = match read_checked(path, MAX_FILE_BYTES) {
            Checked::Read(bytes, _) => bytes,
            Checked::Missing => return (Vec::new(), Vec::new()),
            Checked::Refused(SkipReason::TooLarge(len), _) => {
                return skip(SkipReason::Legacy(FormatError::TooLarge(len)));
            }
            Checked::Refused(reason, _) => return skip(reason),
        };
        match model::parse(&bytes) {
            Ok(parsed) => {
                let skipped = parsed
                    .skipped
                    .into_iter()
                    .map(|s| Skipped {
                        path: path.clone(),
                        reason: SkipReason::LegacyEntry(s),
                    })
                    .collect();
                (parsed.entries, skipped)
            }
            Err(e) => skip(SkipReason::Legacy(e)),
        }
    }

    /// Adds an entry; fails if an entry with its id is registered already.
    pub fn register(&self, entry: &Entry) -> Result<FileId> {
        entry.validate()?;
        self.check_dir(true)?;
        let path = self.entry_path(&entry.id);
        if fs::symlink_metadata(&path).is_ok() {
            return Err(Error::DuplicateId {
                path,
                id: entry.id.clone(),
            });
        }
        self.write_file(entry, &path)
    }

    /// Writes (or replaces) the entry's file: a temp file renamed into place.
    pub fn write(&self, entry: &Entry) -> Result<FileId> {
        entry.validate()?;
        self.check_dir(true)?;
        self.write_file(entry, &self.entry_path(&entry.id))
    }

    fn write_file(&self, entry: &Entry, path: &Path) -> Result<FileId> {
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", entry.id))
            .suffix(".tmp")
            .permissions(Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(Error::io("create a temp file in", &self.dir))?;
        let tmp_path = tmp.path().to_owned();
        // Through the plain File: NamedTempFile's own Write adds the path to errors.
        tmp.as_file_mut()
            .write_all(model::entry_file_json(entry).as_bytes())
            .map_err(Error::io("write", &tmp_path))?;
        let meta = tmp
            .as_file()
            .metadata()
            .map_err(Error::io("inspect", &tmp_path))?;
        tmp.persist(path)
            .map_err(|e| Error::io("rename into place", path)(e.error))?;
        Ok(FileId::of(&meta))
    }

    /// Removes the entry `id`; says whether it was there.
    pub fn unregister(&self, id: &str) -> Result<bool> {
        if id.starts_with('.') || id.contains('/') || id.is_empty() {
            return Err(Error::InvalidEntry(EntryError::IdChars));
        }
        let path = self.entry_path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", path)(e)),
        }
    }

    /// Removes the files of dead entries, and invalid files and leftover temp files
    /// older than [`PRUNE_GRACE`]. Never touches the legacy file or another user's file.
    pub fn prune(&self) -> Result<Vec<Pruned>> {
        if !self.check_dir(true)? {
            return Ok(Vec::new());
        }
        let judge = Judge::system();
        let now = SystemTime::now();
        let old = |path: &Path| {
            fs::symlink_metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > PRUNE_GRACE)
        };
        let mut pruned = Vec::new();
        let names = fs::read_dir(&self.dir).map_err(Error::io("list", &self.dir))?;
        for name in names {
            let name = name.map_err(Error::io("list", &self.dir))?.file_name();
            let path = self.dir.join(&name);
            let (id, reason) = match self.read_entry(&name) {
                FileRead::Entry(entry, _) => match judge.check(&entry) {
                    Err(dead) if dead.is_final() => (Some(entry.id), dead.to_string()),
                    _ => continue,
                },
                FileRead::Skipped(s, _) if !matches!(s.reason, SkipReason::ForeignOwner { .. }) => {
                    if !old(&path) {
                        continue;
                    }
                    (None, s.reason.to_string())
                }
                FileRead::NotAnEntry if is_temp_file(&name) && old(&path) => {
                    (None, "a temp file left by an interrupted write".to_owned())
                }
                _ => continue,
            };
            match fs::remove_file(&path) {
                Ok(()) => pruned.push(Pruned { path, id, reason }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", path)(e)),
            }
        }
        Ok(pruned)
    }

    /// Checks the directory as a reader does (not a symlink, ours; only a warning if
    /// others can read it); says whether it exists.
    pub fn check_readable(&self) -> Result<bool> {
        self.check_dir(false)
    }

    /// Creates the registry directory (0700) if needed and checks it as a writer does:
    /// not a symlink, ours, private. For files kept beside it (the auth token).
    pub fn prepare_dir(&self) -> Result<()> {
        self.check_dir(true).map(drop)
    }

    /// Checks the directory: not a symlink, ours, private. A writer creates it (0700) and
    /// repairs its mode; a reader only warns. Returns whether it exists.
    fn check_dir(&self, writer: bool) -> Result<bool> {
        let dir = &self.dir;
        let meta = match fs::symlink_metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound && writer => {
                fs::DirBuilder::new()
                    .recursive(!self.given)
                    .mode(0o700)
                    .create(dir)
                    .or_else(|e| match e.kind() {
                        // Another writer made it a moment ago.
                        io::ErrorKind::AlreadyExists => Ok(()),
                        _ => Err(e),
                    })
                    .map_err(|e| match e.kind() {
                        io::ErrorKind::NotFound => Error::NoParent { path: dir.clone() },
                        _ => Error::io("create directory", dir)(e),
                    })?;
                fs::symlink_metadata(dir).map_err(Error::io("inspect", dir))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("inspect", dir)(e)),
        };
        if meta.file_type().is_symlink() {
            return Err(Error::Symlink { path: dir.clone() });
        }
        if !meta.is_dir() {
            return Err(Error::NotADirectory { path: dir.clone() });
        }
        let me = my_uid();
        if meta.uid() != me {
            return Err(Error::ForeignOwner {
                path: dir.clone(),
                owner: meta.uid(),
                me,
            });
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            if writer {
                tracing::warn!("{}: mode was {mode:o}; setting it to 700", dir.display());
                fs::set_permissions(dir, Permissions::from_mode(0o700))
                    .map_err(Error::io("chmod", dir))?;
            } else {
                tracing::warn!(
                    "{}: mode is {mode:o}; other users can read it",
                    dir.display()
                );
            }
        }
        Ok(true)
    }
}

/// How many skipped files a read names one by one; the rest are counted in one line, so
/// a directory flooded with junk cannot flood the log.
pub const WARN_AT_MOST: usize = 10;

/// Logs what a read passed over: the first [`WARN_AT_MOST`], then a count.
pub fn warn_skipped(skipped: &[Skipped]) {
    for s in skipped.iter().take(WARN_AT_MOST) {
        tracing::warn!("{s}");
    }
    if skipped.len() > WARN_AT_MOST {
        tracing::warn!(
            "… and {} more files skipped (`wsreg prune` removes invalid files after a minute)",
            skipped.len() - WARN_AT_MOST
        );
    }
}

/// The name of an entry file as a `&str`, or `None` for a name that is not one: names
/// starting with `.` (writes in progress), not ending in `.json`, or not UTF-8.
pub fn entry_file_name(name: &OsStr) -> Option<&str> {
    let name = name.to_str()?;
    (!name.starts_with('.') && name.len() > ".json".len() && name.ends_with(".json"))
        .then_some(name)
}

fn is_temp_file(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    bytes.starts_with(b".") && bytes.ends_with(b".tmp")
}

/// The legacy file's entries join those of the directory, except where the directory
/// has the same id (it is the newer word).
pub(crate) fn merge_legacy(entries: &mut Vec<Entry>, legacy: Vec<Entry>) {
    if legacy.is_empty() {
        return;
    }
    let ids: std::collections::HashSet<String> = entries.iter().map(|e| e.id.clone()).collect();
    entries.extend(legacy.into_iter().filter(|e| !ids.contains(&e.id)));
}

/// This process's effective user, asked once.
fn my_uid() -> u32 {
    static UID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UID.get_or_init(|| rustix::process::geteuid().as_raw())
}

/// What [`read_checked`] found.
enum Checked {
    Missing,
    Read(Vec<u8>, FileId),
    Refused(SkipReason, FileId),
}

/// Opens `path` without following a symlink and without blocking on a FIFO, checks it is
/// a regular file of ours of at most `max` bytes, and reads it.
fn read_checked(path: &Path, max: u64) -> Checked {
    let unknown = || {
        FileId::at(path).unwrap_or(FileId {
            dev: 0,
            ino: 0,
            size: 0,
            mtime: (0, 0),
            ctime: (0, 0),
        })
    };
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Checked::Missing,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Checked::Refused(SkipReason::Symlink, unknown());
        }
        Err(e) => return Checked::Refused(SkipReason::Unreadable(e.to_string()), unknown()),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Checked::Refused(SkipReason::Unreadable(e.to_string()), unknown()),
    };
    let id = FileId::of(&meta);
    if !meta.is_file() {
        return Checked::Refused(SkipReason::NotAFile, id);
    }
    if meta.uid() != my_uid() {
        return Checked::Refused(SkipReason::ForeignOwner { owner: meta.uid() }, id);
    }
    if meta.len() > max {
        return Checked::Refused(SkipReason::TooLarge(meta.len()), id);
    }
    // One read of one byte more than the size: a short read is the end of a regular
    // file, so no second read is needed to see it (a cold read of 10,000 entries pays
    // each syscall 10,000 times). A file that grew meanwhile is read to its end.
    let mut bytes = vec![0u8; meta.len() as usize + 1];
    let first = match file.read(&mut bytes) {
        Ok(n) => n,
        Err(e) => return Checked::Refused(SkipReason::Unreadable(e.to_string()), id),
    };
    bytes.truncate(first);
    if first > meta.len() as usize
        && let Err(e) = (&mut file).take(max + 1).read_to_end(&mut bytes)
    {
        return Checked::Refused(SkipReason::Unreadable(e.to_string()), id);
    }
    if bytes.len() as u64 > max {
        return Checked::Refused(SkipReason::TooLarge(bytes.len() as u64), id);
    }
    Checked::Read(bytes, id)
}

/// For the watchers: the legacy file's name and the directory's, in the base directory.
pub(crate) fn names_in_base(store: &Store) -> (OsString, OsString) {
    let name = |p: &Path| p.file_name().map(OsString::from).unwrap_or_default();
    (name(store.dir()), name(store.legacy_path()))
}
