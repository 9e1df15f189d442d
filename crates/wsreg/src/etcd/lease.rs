//! A registered server's lease: the entry's key is put under a lease of the backend's
//! TTL, renewed every third of it, and revoked when the server leaves (which deletes the
//! key at once, for every watcher).
//!
//! The lease is held by a thread of its own with a one-thread runtime, so that a
//! registration works the same from synchronous code and from inside a server's runtime,
//! and its renewals never wait behind the server's work. [`HeldLease::start`] returns
//! once the entry is in etcd (or with the reason it is not). A renewal that fails (the
//! member it went to died) is tried again at the next one, through whichever member
//! answers; a lease found expired (the server was cut off for longer than the TTL) is
//! granted anew and the entry put again: the registry is soft state, and a live server
//! puts itself back.

use std::sync::Arc;
use std::thread::JoinHandle;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper, PutOptions};
use tokio::sync::oneshot;

use super::config::{EtcdConfig, EtcdError, request};
use super::members::Members;
use crate::error::Chain;
use crate::registry::model::{Entry, entry_file_json};

/// A lease kept alive until dropped or revoked.
pub struct HeldLease {
    id: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), EtcdError>>>,
}

impl HeldLease {
    /// Grants a lease, puts `entry` under it and keeps it alive until the guard goes.
    pub fn start(config: Arc<EtcdConfig>, entry: &Entry) -> Result<HeldLease, EtcdError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let key = config.key(&entry.id);
        let value = entry_file_json(entry);
        let thread = std::thread::Builder::new()
            .name("wsreg-lease".into())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(EtcdError::Thread)?
                    .block_on(keep(config, key, value, ready_tx, stop_rx))
            })
            .map_err(EtcdError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(HeldLease {
                id: entry.id.clone(),
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            // The thread ended before it said anything: its runtime could not start.
            Err(_) => Err(thread
                .join()
                .ok()
                .and_then(Result::err)
                .unwrap_or(EtcdError::StreamEnded { op: "lease" })),
        }
    }

    /// Stops renewing and revokes the lease, which deletes the entry.
    pub fn revoke(mut self) -> Result<(), EtcdError> {
        self.leave()
    }

    fn leave(&mut self) -> Result<(), EtcdError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Ok(()),
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if let Err(e) = self.leave() {
            tracing::warn!(
                "cannot revoke the lease of {} (it expires by itself): {}",
                self.id,
                Chain(&e)
            );
        }
    }
}

/// Grants a lease of the backend's TTL and puts `value` at `key` under it: what a
/// registration does (and what the benchmark times).
pub async fn put_under_lease(
    members: &Members,
    config: &EtcdConfig,
    key: &str,
    value: &str,
) -> Result<i64, EtcdError> {
    let ttl = config.ttl().as_secs() as i64;
    let lease = members
        .call("lease grant", |mut c| async move {
            c.lease_grant(ttl, None).await
        })
        .await?
        .id();
    let options = PutOptions::new().with_lease(lease);
    members
        .call("put", |mut c| {
            let options = options.clone();
            async move { c.put(key, value, Some(options)).await }
        })
        .await?;
    Ok(lease)
}

/// The lease thread's work: register, say so, renew until told to stop, revoke.
async fn keep(
    config: Arc<EtcdConfig>,
    key: String,
    value: String,
    ready: std::sync::mpsc::Sender<Result<(), EtcdError>>,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), EtcdError> {
    let registered = async {
        let members = Members::connect(&config).await?;
        let lease = put_under_lease(&members, &config, &key, &value).await?;
        Ok((members, lease))
    };
    let (members, mut lease) = match registered.await {
        Ok(held) => {
            let _ = ready.send(Ok(()));
            held
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(());
        }
    };
    let every = config.ttl() / 3;
    let mut renewals: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(every) => {}
        }
        match renew(&members, lease, &mut renewals).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("the lease of {key} had expired; putting the entry back");
                renewals = None;
                match put_under_lease(&members, &config, &key, &value).await {
                    Ok(id) => lease = id,
                    Err(e) => tracing::warn!("cannot put {key} back: {}", Chain(&e)),
                }
            }
            Err(e) => {
                tracing::warn!("renewing the lease of {key}: {}", Chain(&e));
                renewals = None;
            }
        }
    }
    members
        .call("lease revoke", |mut c| async move {
            c.lease_revoke(lease).await
        })
        .await
        .map(drop)
}

/// Renews `lease` once; says whether it was still alive.
async fn renew(
    members: &Members,
    lease: i64,
    renewals: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
) -> Result<bool, EtcdError> {
    const OP: &str = "lease keep-alive";
    let (keeper, stream) = match renewals {
        Some(open) => open,
        None => {
            let open = members
                .call(OP, |mut c| async move {
                    match c.lease_keep_alive(lease).await {
                        // How the client says that the lease is gone (its TTL is 0).
                        Err(etcd_client::Error::LeaseKeepAliveError(_)) => Ok(None),
                        open => open.map(Some),
                    }
                })
                .await?;
            match open {
                Some(open) => renewals.insert(open),
                None => return Ok(false),
            }
        }
    };
    request(OP, keeper.keep_alive()).await?;
    match request(OP, stream.message()).await? {
        Some(answer) => Ok(answer.ttl() > 0),
        None => Err(EtcdError::StreamEnded { op: OP }),
    }
}
