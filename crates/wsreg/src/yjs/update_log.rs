//! A document's file: an append-only log of Yjs updates that survives `kill -9`.
//!
//! Layout: the 8-byte magic `WSREGYL1`, then records `[len: u32 LE][crc: u32 LE][update]`,
//! where `crc` is the CRC-32 of the length bytes and the update together.
//!
//! - **Append** writes one record with a single `write`; it is stored once a later
//!   [`UpdateLog::syncer`]'s `fdatasync` has returned. Syncing apart from appending is
//!   what makes group commit possible: every record appended before one `fdatasync`
//!   starts is made durable by it, and the sync runs without the room's lock (see
//!   `docs/yjs.md`, "acknowledged"). A failed append truncates the file back to its last
//!   good length, so a later append never lands after a half-written record.
//! - **Read** returns every intact record in order and stops at the first one that is
//!   incomplete or fails its checksum. After a crash only the last record can be torn —
//!   the one whose append had not returned, so no client was told about it — and it is
//!   dropped. Anything worse (a bad checksum with more data after it, a wrong magic) is
//!   kept: the original file is copied aside as `<file>.damaged-<time>` first.
//! - **Compaction** replaces the log by a new one holding a single record, the whole
//!   document state, through temp file + fsync + rename ([`crate::atomic_file`]), so a
//!   crash during compaction leaves the old log or the new one, both complete.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::atomic_file::{self, FileError, fail};
use crate::registry::Timestamp;

/// The first bytes of every log.
pub const MAGIC: &[u8; 8] = b"WSREGYL1";
/// Bytes before each record's update: length and checksum.
pub const HEADER: usize = 8;
/// The largest update a record may hold (the length field is a u32).
pub const MAX_RECORD: usize = u32::MAX as usize;

/// What [`UpdateLog::read`] could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where the unusable bytes begin.
    pub offset: u64,
    /// How many bytes from there to the end of the file are dropped.
    pub dropped: u64,
    /// What was wrong.
    pub reason: DamageKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// The last record ends early: an append interrupted by a crash. Expected.
    TornTail,
    /// A record fails its checksum.
    BadChecksum,
    /// The file does not start with [`MAGIC`].
    NotALog,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.reason {
            DamageKind::TornTail => "a torn last record (an append cut short by a crash)",
            DamageKind::BadChecksum => "a record that fails its checksum",
            DamageKind::NotALog => "no log header",
        };
        write!(
            f,
            "{what} at byte {}; {} bytes dropped",
            self.offset, self.dropped
        )
    }
}

/// The records of a log, as read.
#[derive(Debug, Default)]
pub struct Recovered {
    pub updates: Vec<Vec<u8>>,
    pub damage: Option<Damage>,
}

/// An open log, ready for appends. The file is created by the first append.
#[derive(Debug)]
pub struct UpdateLog {
    path: PathBuf,
    file: Option<Arc<File>>,
    len: u64,
    records: u64,
}

fn record(update: &[u8]) -> Vec<u8> {
    let len = (update.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(update);
    let mut bytes = Vec::with_capacity(HEADER + update.len());
    bytes.extend_from_slice(&len);
    bytes.extend_from_slice(&crc.finalize().to_le_bytes());
    bytes.extend_from_slice(update);
    bytes
}

/// Splits a log's bytes into its intact records.
pub fn parse(bytes: &[u8]) -> Recovered {
    let damage = |offset: usize, reason| Damage {
        offset: offset as u64,
        dropped: (bytes.len() - offset) as u64,
        reason,
    };
    if bytes.len() < MAGIC.len() {
        // An empty or short file: a creation cut short (or a stranger's file).
        let reason = match MAGIC.starts_with(bytes) {
            true => DamageKind::TornTail,
            false => DamageKind::NotALog,
        };
        let damage = (!bytes.is_empty()).then(|| damage(0, reason));
        return Recovered {
            updates: Vec::new(),
            damage,
        };
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Recovered {
            updates: Vec::new(),
            damage: Some(damage(0, DamageKind::NotALog)),
        };
    }
    let mut updates = Vec::new();
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER {
            return Recovered {
                updates,
                damage: Some(damage(at, DamageKind::TornTail)),
            };
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if rest.len() - HEADER < len {
            return Recovered {
                updates,
                damage: Some(damage(at, DamageKind::TornTail)),
            };
        }
        let update = &rest[HEADER..HEADER + len];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&rest[..4]);
        hasher.update(update);
        if hasher.finalize() != crc {
            // A torn append that happens to reach the end of the file is a torn tail too.
            let reason = match at + HEADER + len == bytes.len() {
                true => DamageKind::TornTail,
                false => DamageKind::BadChecksum,
            };
            return Recovered {
                updates,
                damage: Some(damage(at, reason)),
            };
        }
        updates.push(update.to_vec());
        at += HEADER + len;
    }
    Recovered {
        updates,
        damage: None,
    }
}

impl UpdateLog {
    /// Reads the log at `path` (a missing file is an empty log). Damage other than a torn
    /// tail is preserved by copying the file aside before anyone rewrites it.
    pub fn read(path: &Path) -> Result<Recovered, FileError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recovered::default()),
            Err(e) => return Err(fail("read", path)(e)),
        };
        let recovered = parse(&bytes);
        if let Some(damage) = &recovered.damage {
            if damage.reason == DamageKind::TornTail {
                tracing::info!("{}: {damage}", path.display());
            } else {
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".damaged-{}", Timestamp::now().for_file_name()));
                let aside = PathBuf::from(aside);
                atomic_file::replace(&aside, &bytes, 0o600)?;
                tracing::warn!(
                    "{}: {damage}; the original is kept as {}",
                    path.display(),
                    aside.display()
                );
            }
        }
        Ok(recovered)
    }

    /// A log at `path` holding exactly `state` (or nothing, and no file yet, when `state`
    /// is `None`): the compaction of whatever was there.
    pub fn compact(path: &Path, state: Option<&[u8]>) -> Result<UpdateLog, FileError> {
        let Some(state) = state else {
            if std::fs::symlink_metadata(path).is_ok() {
                std::fs::remove_file(path).map_err(fail("remove", path))?;
                atomic_file::sync_dir(parent(path))?;
            }
            return Ok(UpdateLog {
                path: path.to_owned(),
                file: None,
                len: 0,
                records: 0,
            });
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&record(state));
        atomic_file::replace(path, &bytes, 0o600)?;
        let file = open_append(path)?;
        Ok(UpdateLog {
            path: path.to_owned(),
            file: Some(Arc::new(file)),
            len: bytes.len() as u64,
            records: 1,
        })
    }

    /// Appends one update, not yet synced: it survives a crash of the process or the
    /// machine once a [`Syncer::sync`] that started after this returned has returned.
    pub fn append(&mut self, update: &[u8]) -> Result<(), FileError> {
        assert!(update.len() <= MAX_RECORD, "update over the record limit");
        if self.file.is_none() {
            atomic_file::replace(&self.path, MAGIC, 0o600)?;
            self.file = Some(Arc::new(open_append(&self.path)?));
            self.len = MAGIC.len() as u64;
        }
        let file: &File = self.file.as_ref().expect("opened above");
        let mut writer = file;
        if let Err(e) = writer.write_all(&record(update)) {
            // Cut a partial record off, so that the next append follows a good one.
            let _ = file.set_len(self.len);
            return Err(fail("append to", &self.path)(e));
        }
        self.len += (HEADER + update.len()) as u64;
        self.records += 1;
        Ok(())
    }

    /// Records in the file (1 right after a compaction with content).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What makes the appends so far durable, usable without holding this log (and so
    /// without the room's lock). `None` while the log has no file (nothing appended).
    pub fn syncer(&self) -> Option<Syncer> {
        let file = self.file.clone()?;
        Some(Syncer {
            file,
            path: self.path.clone(),
        })
    }
}

/// The log's file, for an `fdatasync` that runs while appends go on.
pub struct Syncer {
    file: Arc<File>,
    path: PathBuf,
}

impl Syncer {
    /// Makes every record appended before this call durable.
    pub fn sync(&self) -> Result<(), FileError> {
        self.file.sync_data().map_err(fail("sync", &self.path))
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn open_append(path: &Path) -> Result<File, FileError> {
    OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(fail("open", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_bytes(updates: &[&[u8]]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        for u in updates {
            bytes.extend_from_slice(&record(u));
        }
        bytes
    }

    #[test]
    fn every_truncation_keeps_the_complete_records_and_drops_the_tail() {
        let bytes = log_bytes(&[b"first", b"second update", b"third"]);
        let ends = [8, 8 + 13, 8 + 13 + 21, bytes.len()];
        for cut in 0..=bytes.len() {
            let r = parse(&bytes[..cut]);
            let complete = ends.iter().filter(|&&e| e <= cut).count().saturating_sub(1);
            assert_eq!(r.updates.len(), complete, "cut at {cut}");
            let at_boundary = cut == 0 || ends.contains(&cut);
            assert_eq!(r.damage.is_some(), !at_boundary, "cut at {cut}");
            if let Some(d) = r.damage {
                assert_eq!(d.reason, DamageKind::TornTail, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_flipped_bit_stops_the_read_and_is_called_what_it_is() {
        let mut bytes = log_bytes(&[b"first", b"second"]);
        bytes[8 + HEADER] ^= 1;
        let r = parse(&bytes);
        assert!(r.updates.is_empty());
        assert_eq!(r.damage.unwrap().reason, DamageKind::BadChecksum);
        let mut last = log_bytes(&[b"first", b"second"]);
        *last.last_mut().unwrap() ^= 1;
        let r = parse(&last);
        assert_eq!(r.updates, vec![b"first".to_vec()]);
        assert_eq!(r.damage.unwrap().reason, DamageKind::TornTail);
        assert_eq!(
            parse(b"something else entirely").damage.unwrap().reason,
            DamageKind::NotALog
        );
    }

    #[test]
    fn appends_and_compaction_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.ylog");
        let mut log = UpdateLog::compact(&path, None).unwrap();
        assert!(!path.exists(), "no file before the first append");
        log.append(b"one").unwrap();
        log.append(b"two").unwrap();
        assert_eq!(log.records(), 2);
        assert_eq!(log.len(), std::fs::metadata(&path).unwrap().len());
        let r = UpdateLog::read(&path).unwrap();
        assert_eq!(r.updates, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(r.damage, None);
        let mut log = UpdateLog::compact(&path, Some(b"onetwo")).unwrap();
        log.append(b"three").unwrap();
        let r = UpdateLog::read(&path).unwrap();
        assert_eq!(r.updates, vec![b"onetwo".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn damage_beyond_a_torn_tail_is_copied_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.ylog");
        let mut bytes = log_bytes(&[b"first", b"second"]);
        bytes[8 + HEADER] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        UpdateLog::read(&path).unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("doc.ylog.damaged-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(std::fs::read(dir.path().join(&aside[0])).unwrap(), bytes);
    }
}
