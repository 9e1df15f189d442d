//! Which registry a command works on: the local directory (the default, which needs
//! nothing) or an etcd cluster (`--backend etcd://…`, see [`crate::etcd`]). The commands
//! and the HTTP endpoint take a [`Backend`] and a [`Live`] source of answers, and do not
//! otherwise know which one they have.
//!
//! The local directory is located either way: the `--auth token` secret lives beside it,
//! per user and per host, whatever the backend.

use std::sync::Arc;

use crate::error::Result;
use crate::etcd::{EtcdConfig, EtcdWatch, keys};
use crate::registration::{Registration, Server};
use crate::registry::{Answer, LiveWatch, Store};

/// The registry the commands use.
#[derive(Debug, Clone)]
pub struct Backend {
    store: Store,
    etcd: Option<Arc<EtcdConfig>>,
}

impl Backend {
    /// The local directory `store`.
    pub fn dir(store: Store) -> Backend {
        Backend { store, etcd: None }
    }

    /// The etcd cluster of `config`; `store` still holds the token.
    pub fn etcd(store: Store, config: EtcdConfig) -> Backend {
        Backend {
            store,
            etcd: Some(Arc::new(config)),
        }
    }

    /// The local directory (the registry itself unless the backend is etcd).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The etcd settings, when the backend is etcd.
    pub fn etcd_config(&self) -> Option<&EtcdConfig> {
        self.etcd.as_deref()
    }

    /// Where the registry is, for messages: a directory or `etcd://members`.
    pub fn describe(&self) -> String {
        match &self.etcd {
            None => self.store.dir().display().to_string(),
            Some(config) => format!("{}{}", crate::etcd::config::SCHEME, config.endpoints()),
        }
    }

    /// Registers `server` and keeps it registered until the guard is dropped.
    pub fn register(&self, server: Server) -> Result<Registration> {
        match &self.etcd {
            None => server.register(&self.store),
            Some(config) => server.register_lease(config.clone()),
        }
    }

    /// Registers `server` once, for another process (`wsreg register`).
    pub fn register_once(&self, server: Server) -> Result<crate::Entry> {
        match &self.etcd {
            None => server.register_once(&self.store),
            Some(config) => {
                let entry = server.entry().clone();
                block_on(keys::put_once(config, &entry))?;
                Ok(entry)
            }
        }
    }

    /// Removes the entry `id`; says whether there was one.
    pub fn unregister(&self, id: &str) -> Result<bool> {
        match &self.etcd {
            None => self.store.unregister(id),
            Some(config) => Ok(block_on(keys::delete(config, id))?),
        }
    }

    /// Every entry, live or not, in registration order (`wsreg list` judges them).
    pub fn entries(&self) -> Result<Vec<crate::Entry>> {
        match &self.etcd {
            None => Ok(self.store.read()?.entries),
            Some(config) => Ok(block_on(keys::read_all(config))?),
        }
    }

    /// Starts the live list's watch.
    pub fn watch(&self) -> Result<Live> {
        match &self.etcd {
            None => Ok(Live::Dir(LiveWatch::spawn(self.store.clone())?)),
            Some(config) => Ok(Live::Etcd(Box::new(EtcdWatch::spawn(config.clone())?))),
        }
    }
}

/// Runs a one-off request to completion on a runtime of its own (for commands that have
/// none).
fn block_on<T>(
    call: impl Future<Output = Result<T, crate::etcd::EtcdError>>,
) -> Result<T, crate::etcd::EtcdError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::etcd::EtcdError::Thread)?
        .block_on(call)
}

/// The live list, kept current by push, from either backend.
pub enum Live {
    Dir(LiveWatch),
    Etcd(Box<EtcdWatch>),
}

impl Live {
    /// A receiver of answers: `borrow()` is the current one, `changed()` awaits the next.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Answer>> {
        match self {
            Live::Dir(w) => w.subscribe(),
            Live::Etcd(w) => w.subscribe(),
        }
    }

    /// The last published answer (it may miss a change being taken in right now).
    pub fn current(&self) -> Arc<Answer> {
        self.subscribe().borrow().clone()
    }

    /// The answer, exact at the time of the call.
    pub async fn exact(&self) -> Arc<Answer> {
        match self {
            Live::Dir(w) => w.exact().await,
            Live::Etcd(w) => w.exact().await,
        }
    }
}
