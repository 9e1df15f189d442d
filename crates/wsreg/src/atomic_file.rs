//! Replacing a file so that a reader, or a crash, sees the old content or the new one,
//! never a mix: write a temp file in the same directory, fsync it, rename it over the
//! target, fsync the directory (so the rename itself survives a crash).
//!
//! Used by the registry file and by the Yjs document logs ([`crate::yjs::update_log`]).

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A file operation that failed: what it was, on which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}", path.display())]
pub struct FileError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Maps an `io::Error` to a [`FileError`] for `op` on `path`.
pub fn fail(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FileError {
    let path = path.to_owned();
    move |source| FileError { op, path, source }
}

/// Atomically replaces (or creates) `path` with `bytes`, with permissions `mode`. The
/// temp file is `.<name>.<random>.tmp` beside it and is removed if a step fails.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(fail("create a temp file in", dir))?;
    // Through the plain File: NamedTempFile's own Write appends the path to errors.
    let tmp_path = tmp.path().to_owned();
    tmp.as_file_mut()
        .write_all(bytes)
        .map_err(fail("write", &tmp_path))?;
    tmp.as_file().sync_all().map_err(fail("fsync", &tmp_path))?;
    tmp.persist(path)
        .map_err(|e| fail("replace", path)(e.error))?;
    sync_dir(dir)
}

/// Fsyncs a directory, so that the names created, renamed or removed in it persist.
pub fn sync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail("fsync", dir))
}
