//! The registry file on disk: where it is, who may touch it, and how it changes without
//! losing an update.
//!
//! Writers serialise on an advisory lock of a sibling `.lock` file rather than of the
//! registry itself, because the registry is replaced by `rename` on every write and a lock
//! on a replaced inode protects nothing. The new content goes to a temp file in the same
//! directory, is fsynced and renamed over the old one, so readers take no lock and still
//! never see a torn or empty file. A corrupt file is moved aside, never overwritten.

use std::ffi::OsString;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::liveness::{DeadReason, Judge};
use super::model::{self, Entry, FormatError, MAX_FILE_BYTES, Skipped, Timestamp};
use crate::atomic_file;
use crate::error::{Error, Result};

/// The environment variable that overrides the default registry path.
pub const ENV_VAR: &str = "WSREG_REGISTRY";

/// One read of the registry file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The valid entries, live or dead, in file order.
    pub entries: Vec<Entry>,
    /// Entries that were skipped as invalid.
    pub skipped: Vec<Skipped>,
    /// Why the whole file was unreadable, when it was (it then holds no entries).
    pub corrupt: Option<FormatError>,
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

/// A handle on one registry file. Cheap to clone; holds no open file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    path: PathBuf,
    dir: PathBuf,
    /// Whether the user named this path. The default location is created with all its
    /// parents on first use; a path the user gave is not, since a typo there would
    /// otherwise silently start a registry no reader looks at.
    given: bool,
}

impl Store {
    /// A store at a path the user gave (the file, not its directory).
    pub fn new(path: impl Into<PathBuf>) -> Store {
        let path = path.into();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Store {
            path,
            dir,
            given: true,
        }
    }

    /// The store chosen by `--registry`, else `WSREG_REGISTRY`, else the default path.
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
            ..Store::new(Path::new(&home).join(".peer-plan").join("servers.json"))
        })
    }

    /// The registry file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory that holds it (and is watched).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn file_name(&self) -> OsString {
        self.path
            .file_name()
            .map(OsString::from)
            .unwrap_or_default()
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.file_name();
        name.push(suffix);
        self.dir.join(name)
    }

    /// Reads the file without locking. A missing file is an empty registry; a corrupt one
    /// is reported in [`Snapshot::corrupt`] (with a warning), not as an error.
    pub fn read(&self) -> Result<Snapshot> {
        if !self.check_dir(false)? {
            if self.given {
                tracing::warn!(
                    "{}: no such directory, so no server is registered there",
                    self.dir.display()
                );
            }
            return Ok(Snapshot::default());
        }
        let snapshot = self.read_file(false)?;
        if let Some(err) = &snapshot.corrupt {
            tracing::warn!(
                "{}: registry is corrupt ({err}); showing no servers",
                self.path.display()
            );
        }
        Ok(snapshot)
    }

    /// The live entries, read now.
    pub fn live(&self) -> Result<Vec<Entry>> {
        Ok(self.read()?.live())
    }

    /// Changes the registry under the writers' lock: reads it, drops dead and invalid
    /// entries, lets `change` edit the rest, and writes the result if anything changed.
    pub fn update<R>(&self, change: impl FnOnce(&mut Vec<Entry>) -> Result<R>) -> Result<R> {
        self.update_pruning(|entries, _dead| change(entries))
    }

    /// [`Store::update`], also telling `change` which dead entries were dropped.
    fn update_pruning<R>(
        &self,
        change: impl FnOnce(&mut Vec<Entry>, Vec<(Entry, DeadReason)>) -> Result<R>,
    ) -> Result<R> {
        self.check_dir(true)?;
        let lock_path = self.sibling(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| symlink_or(e, "open", &lock_path))?;
        lock.lock().map_err(Error::io("lock", &lock_path))?;

        let snapshot = self.read_file(true)?;
        let mut dirty = !snapshot.skipped.is_empty();
        if let Some(err) = &snapshot.corrupt {
            self.move_aside(err)?;
            dirty = true;
        }
        for skipped in &snapshot.skipped {
            tracing::warn!("{}: {skipped}; dropping it", self.path.display());
        }
        let judge = Judge::system();
        let (mut entries, mut dead) = (Vec::new(), Vec::new());
        for entry in snapshot.entries {
            match judge.check(&entry) {
                Ok(()) => entries.push(entry),
                Err(reason) => dead.push((entry, reason)),
            }
        }
        dirty |= !dead.is_empty();
        let original = entries.clone();
        let result = change(&mut entries, dead)?;
        if dirty || entries != original {
            for e in &entries {
                e.validate()?;
            }
            self.write_file(&entries)?;
        }
        drop(lock);
        Ok(result)
    }

    /// Adds an entry (after dropping dead ones); fails if its id is taken.
    pub fn register(&self, entry: Entry) -> Result<()> {
        entry.validate()?;
        self.update(|entries| {
            if entries.iter().any(|e| e.id == entry.id) {
                return Err(Error::DuplicateId {
                    path: self.path.clone(),
                    id: entry.id.clone(),
                });
            }
            if entries.len() >= model::MAX_ENTRIES {
                return Err(Error::Full {
                    path: self.path.clone(),
                    max: model::MAX_ENTRIES,
                });
            }
            entries.push(entry);
            Ok(())
        })
    }

    /// Removes the entry with this id; says whether it was there.
    pub fn unregister(&self, id: &str) -> Result<bool> {
        self.update(|entries| {
            let before = entries.len();
            entries.retain(|e| e.id != id);
            Ok(entries.len() != before)
        })
    }

    /// Drops every dead entry; returns those dropped, each with its reason.
    pub fn prune(&self) -> Result<Vec<(Entry, DeadReason)>> {
        self.update_pruning(|_entries, dead| Ok(dead))
    }

    /// Creates the directory (0700) if needed and checks it as a writer does: not a
    /// symlink, ours, private. For files kept beside the registry (the auth token).
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
        check_private(dir, &meta, writer, 0o700, |p| fs::set_permissions(dir, p))?;
        Ok(true)
    }

    fn read_file(&self, writer: bool) -> Result<Snapshot> {
        let path = &self.path;
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Snapshot::default()),
            Err(e) => return Err(symlink_or(e, "open", path)),
        };
        let meta = file.metadata().map_err(Error::io("inspect", path))?;
        check_private(path, &meta, writer, 0o600, |p| file.set_permissions(p))?;
        if !meta.is_file() {
            return Err(Error::Io {
                op: "read",
                path: path.clone(),
                source: io::Error::other("not a regular file"),
            });
        }
        if meta.len() > MAX_FILE_BYTES {
            return Ok(corrupt(FormatError::TooLarge(meta.len())));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        (&mut file)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(Error::io("read", path))?;
        match model::parse(&bytes) {
            Ok(parsed) => Ok(Snapshot {
                entries: parsed.entries,
                skipped: parsed.skipped,
                corrupt: None,
            }),
            Err(FormatError::UnsupportedVersion(version)) => Err(Error::UnsupportedVersion {
                path: path.clone(),
                version,
            }),
            Err(err) => Ok(corrupt(err)),
        }
    }

    fn move_aside(&self, err: &FormatError) -> Result<()> {
        let stamp = Timestamp::now().for_file_name();
        let mut aside = self.sibling(&format!(".corrupt-{stamp}"));
        for n in 1.. {
            if fs::symlink_metadata(&aside).is_err() {
                break;
            }
            aside = self.sibling(&format!(".corrupt-{stamp}-{n}"));
        }
        fs::rename(&self.path, &aside).map_err(Error::io("move aside", &self.path))?;
        tracing::warn!(
            "{}: registry was corrupt ({err}); moved it to {} and started a fresh one",
            self.path.display(),
            aside.display()
        );
        Ok(())
    }

    fn write_file(&self, entries: &[Entry]) -> Result<()> {
        let mut json = model::to_json(entries);
        json.push('\n');
        atomic_file::replace(&self.path, json.as_bytes(), 0o600).map_err(|e| Error::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        })
    }
}

fn corrupt(err: FormatError) -> Snapshot {
    Snapshot {
        corrupt: Some(err),
        ..Snapshot::default()
    }
}

/// Checks that a registry path belongs to this user and is private to it. A writer
/// repairs a mode open to others (to `private`); a reader only warns.
fn check_private(
    path: &Path,
    meta: &fs::Metadata,
    writer: bool,
    private: u32,
    chmod: impl FnOnce(Permissions) -> io::Result<()>,
) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(Error::ForeignOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    if writer {
        tracing::warn!(
            "{}: mode was {mode:o}; setting it to {private:o}",
            path.display()
        );
        chmod(Permissions::from_mode(private)).map_err(Error::io("chmod", path))
    } else {
        tracing::warn!(
            "{}: mode is {mode:o}; other users can read it",
            path.display()
        );
        Ok(())
    }
}

/// `O_NOFOLLOW` on a symlink fails with `ELOOP`: say so plainly.
fn symlink_or(e: io::Error, op: &'static str, path: &Path) -> Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) => Error::Symlink {
            path: path.to_owned(),
        },
        _ => Error::Io {
            op,
            path: path.to_owned(),
            source: e,
        },
    }
}
