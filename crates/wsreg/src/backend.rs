//! Which registry a command works on: the local directory (the default, which needs
//! nothing) or an etcd cluster (`--backend etcd://…`, see [`crate::etcd`]). The commands
//! and the HTTP endpoint take a [`Backend`] and a [`Live`] source of answers, and do not
//! otherwise know which one they have.
//!
//! The local directory is located either way: the `--auth token` secret lives beside it,
//! per user and per host, whatever the backend.
//!
//! etcd is a cargo feature (`etcd`, off by default: its client needs `protoc` to build);
//! without it every registry is the directory.

use std::sync::Arc;

use crate::error::Result;
#[cfg(feature = "etcd")]
use crate::etcd::{EtcdConfig, EtcdWatch, keys};
use crate::registration::{Registration, Server};
use crate::registry::{Answer, LiveWatch, Store};

/// The registry the commands use.
#[derive(Debug, Clone)]
pub struct Backend {
    store: Store,
    #[cfg(feature = "etcd")]
    etcd: Option<Arc<EtcdConfig>>,
}

impl Backend {
    /// The local directory `store`.
    pub fn dir(store: Store) -> Backend {
        Backend {
            store,
            #[cfg(feature = "etcd")]
            etcd: None,
        }
    }

    /// The etcd cluster of `config`; `store` still holds the token.
    #[cfg(feature = "etcd")]
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
    #[cfg(feature = "etcd")]
    pub fn etcd_config(&self) -> Option<&EtcdConfig> {
        self.etcd.as_deref()
    }

    /// Whether the registry is etcd rather than the directory.
    pub fn is_etcd(&self) -> bool {
        #[cfg(feature = "etcd")]
        if self.etcd.is_some() {
            return true;
        }
        false
    }

    /// Where the registry is, for messages: a directory or `etcd://members`.
    pub fn describe(&self) -> String {
        #[cfg(feature = "etcd")]
        if let Some(config) = &self.etcd {
            return format!("{}{}", crate::etcd::config::SCHEME, config.endpoints());
        }
        self.store.dir().display().to_string()
    }

    /// Registers `server` and keeps it registered until the guard is dropped.
    pub fn register(&self, server: Server) -> Result<Registration> {
        #[cfg(feature = "etcd")]
        if let Some(config) = &self.etcd {
            return server.register_lease(config.clone());
        }
        server.register(&self.store)
    }

    /// Registers `server` once, for another process (`wsreg register`).
    pub fn register_once(&self, server: Server) -> Result<crate::Entry> {
        #[cfg(feature = "etcd")]
        if let Some(config) = &self.etcd {
            let entry = server.entry().clone();
            block_on(keys::put_once(config, &entry))?;
            return Ok(entry);
        }
        server.register_once(&self.store)
    }

    /// Removes the entry `id`; says whether there was one.
    pub fn unregister(&self, id: &str) -> Result<bool> {
        #[cfg(feature = "etcd")]
        if let Some(config) = &self.etcd {
            return Ok(block_on(keys::delete(config, id))?);
        }
        self.store.unregister(id)
    }

    /// Every entry, live or not, in registration order (`wsreg list` judges them).
    pub fn entries(&self) -> Result<Vec<crate::Entry>> {
        #[cfg(feature = "etcd")]
        if let Some(config) = &self.etcd {
            return Ok(block_on(keys::read_all(config))?);
        }
        Ok(self.store.read()?.entries)
    }

    /// Starts the live list's watch.
    pub fn watch(&self) -> Result<Live> {
        #[cfg(feature = "etcd")]
        if let Some(config) = &self.etcd {
            return Ok(Live::Etcd(Box::new(EtcdWatch::spawn(config.clone())?)));
        }
        Ok(Live::Dir(LiveWatch::spawn(self.store.clone())?))
    }
}

/// Runs a one-off request to completion on a runtime of its own (for commands that have
/// none).
#[cfg(feature = "etcd")]
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
    #[cfg(feature = "etcd")]
    Etcd(Box<EtcdWatch>),
}

impl Live {
    /// A receiver of answers: `borrow()` is the current one, `changed()` awaits the next.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Answer>> {
        match self {
            Live::Dir(w) => w.subscribe(),
            #[cfg(feature = "etcd")]
            Live::Etcd(w) => w.subscribe(),
        }
    }

    /// The last published answer (it may miss a change being taken in right now).
    pub fn current(&self) -> Arc<Answer> {
        self.subscribe().borrow().clone()
    }

    /// Asks for local entries' listening sockets to be checked again (the directory's
    /// watch: [`LiveWatch::recheck_listeners`]; etcd's judges its entries as they come).
    pub fn recheck_listeners(&self) {
        match self {
            Live::Dir(w) => w.recheck_listeners(),
            #[cfg(feature = "etcd")]
            Live::Etcd(_) => {}
        }
    }

    /// The answer, exact at the time of the call.
    pub async fn exact(&self) -> Arc<Answer> {
        match self {
            Live::Dir(w) => w.exact().await,
            #[cfg(feature = "etcd")]
            Live::Etcd(w) => w.exact().await,
        }
    }
}
