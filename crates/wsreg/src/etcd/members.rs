//! The cluster's members, each reached by a client of its own, and requests that move on
//! to the next member when one fails.
//!
//! etcd-client can spread requests over several endpoints itself, but it keeps sending
//! to a member that is down (an endpoint that connects lazily counts as ready), so a
//! killed member fails a third of the requests. Here every request goes to the current
//! member; a failure (refused, timed out, no leader there) sends it, and the ones after
//! it, to the next member, until each has been tried once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use etcd_client::Client;

use super::config::{EtcdConfig, EtcdError, request};

/// A client per member, and which one requests go to.
#[derive(Clone)]
pub struct Members {
    clients: Arc<[Client]>,
    current: Arc<AtomicUsize>,
}

impl Members {
    pub async fn connect(config: &EtcdConfig) -> Result<Members, EtcdError> {
        Ok(Members {
            clients: config.clients().await?.into(),
            current: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `call` on the current member, then on the next ones while it fails; the
    /// last failure is returned when every member failed.
    pub async fn call<T, F>(
        &self,
        op: &'static str,
        mut call: impl FnMut(Client) -> F,
    ) -> Result<T, EtcdError>
    where
        F: Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut failure = None;
        for _ in 0..self.clients.len() {
            let at = self.current.load(Ordering::SeqCst);
            match request(op, call(self.clients[at].clone())).await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    tracing::debug!("etcd member {at}: {op}: {e}; trying the next one");
                    // Only the first of concurrent failures moves on.
                    let next = (at + 1) % self.clients.len();
                    let _ =
                        self.current
                            .compare_exchange(at, next, Ordering::SeqCst, Ordering::SeqCst);
                    failure = Some(e);
                }
            }
        }
        Err(failure.expect("at least one member"))
    }
}
