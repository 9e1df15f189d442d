//! The library's error types.
//!
//! Every variant that concerns a file carries its path, so that the one line the
//! command line prints (`wsreg: <error>`) always names the file and the problem.

use std::io;
use std::path::PathBuf;

use crate::registry::model::EntryError;

/// Everything that can go wrong when reading or writing the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither `--registry`, `WSREG_REGISTRY` nor `$HOME` says where the registry is.
    #[error("cannot find the registry: HOME is not set (use --registry or WSREG_REGISTRY)")]
    NoHome,

    /// The registry file or its directory is a symbolic link (it could point anywhere).
    #[error("refusing {path}: it is a symbolic link")]
    Symlink { path: PathBuf },

    /// The registry file or directory belongs to another user.
    #[error("refusing {path}: it is owned by uid {owner}, not by this user (uid {me})")]
    ForeignOwner { path: PathBuf, owner: u32, me: u32 },

    /// The registry directory exists but is not a directory.
    #[error("refusing {path}: it is not a directory")]
    NotADirectory { path: PathBuf },

    /// The file was written by a newer wsreg; it is left alone.
    #[error(
        "{path}: registry format version {version} is not supported (this wsreg reads version 1)"
    )]
    UnsupportedVersion { path: PathBuf, version: String },

    /// An entry given to a writer breaks a rule of the format. (Not a `source`: the
    /// message already says it, and a chain would print it twice.)
    #[error("invalid entry: {0}")]
    InvalidEntry(EntryError),

    /// An entry with this id is already registered.
    #[error("{path}: an entry with id {id:?} is already registered")]
    DuplicateId { path: PathBuf, id: String },

    /// The file already holds the most entries the format allows.
    #[error("{path}: the registry is full ({max} entries)")]
    Full { path: PathBuf, max: usize },

    /// An operating-system call on a registry path failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl From<EntryError> for Error {
    fn from(e: EntryError) -> Error {
        Error::InvalidEntry(e)
    }
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
