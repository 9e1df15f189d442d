//! The library's error types.
//!
//! Every variant that concerns a file carries its path, so that the one line the
//! command line prints (`wsreg: <error>`) always names the file and the problem.
//!
//! A message says what failed; its cause is the `source`, never also in the message, so
//! that walking the chain (`{err:#}` at the edge, [`Chain`] in logs) says each cause once.

use std::io;
use std::path::PathBuf;

use crate::registry::model::EntryError;

/// Everything that can go wrong when reading or writing the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither `--registry`, `WSREG_REGISTRY` nor `$HOME` says where the registry is.
    #[error("cannot find the registry: HOME is not set (use --registry or WSREG_REGISTRY)")]
    NoHome,

    /// The user named a registry whose parent directory does not exist: a typo, most
    /// likely, so nothing is created (the default location is created with its parents).
    #[error(
        "cannot create the registry directory {path}: its parent does not exist (create it first, or leave out --registry and WSREG_REGISTRY to use the default)"
    )]
    NoParent { path: PathBuf },

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

    /// The etcd backend failed (its message names the request and the members).
    #[error(transparent)]
    #[cfg(feature = "etcd")]
    Etcd(#[from] crate::etcd::EtcdError),

    /// An operating-system call on a registry path failed.
    #[error("cannot {op} {path}")]
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

/// An error and its causes on one line, `a: b: c`: for logs, where there is no `{:#}`.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
