//! The global options that choose the registry backend: the local directory (default)
//! or an etcd cluster, with its key prefix, lease TTL and TLS files passed through. A
//! wsreg built without the `etcd` feature refuses `--backend` with how to get it.

#[cfg(feature = "etcd")]
use std::path::PathBuf;
#[cfg(feature = "etcd")]
use std::time::Duration;

#[cfg(feature = "etcd")]
use anyhow::Context;
#[cfg(feature = "etcd")]
use wsreg::etcd::EtcdConfig;
#[cfg(feature = "etcd")]
use wsreg::etcd::config::{DEFAULT_PREFIX, TlsFiles};
use wsreg::{Backend, Store};

#[derive(Debug, clap::Args)]
pub struct BackendArgs {
    /// The registry backend: the local directory (default), or an etcd cluster,
    /// etcd://HOST:PORT[,HOST:PORT…] (docs/etcd.md)
    #[arg(long, global = true, env = "WSREG_BACKEND", value_name = "URL")]
    backend: Option<String>,
    #[cfg(feature = "etcd")]
    /// With etcd: the prefix of wsreg's keys (entries are <prefix>/servers/<id>)
    #[arg(long, global = true, env = "WSREG_ETCD_PREFIX", value_name = "P", default_value = DEFAULT_PREFIX)]
    etcd_prefix: String,
    #[cfg(feature = "etcd")]
    /// With etcd: the TTL of a server's lease, in seconds (a server that stops renewing
    /// it is gone that much later)
    #[arg(
        long,
        global = true,
        env = "WSREG_ETCD_TTL",
        value_name = "SECS",
        default_value_t = 10
    )]
    etcd_ttl: u64,
    #[cfg(feature = "etcd")]
    /// With etcd: the CA certificate (PEM) of the members; turns TLS on
    #[arg(long, global = true, value_name = "FILE")]
    etcd_ca: Option<PathBuf>,
    #[cfg(feature = "etcd")]
    /// With etcd: a client certificate (PEM), with --etcd-key
    #[arg(long, global = true, value_name = "FILE")]
    etcd_cert: Option<PathBuf>,
    #[cfg(feature = "etcd")]
    /// With etcd: the client certificate's key (PEM)
    #[arg(long, global = true, value_name = "FILE")]
    etcd_key: Option<PathBuf>,
}

impl BackendArgs {
    /// The backend these options name; `store` is the local directory.
    pub fn backend(self, store: Store) -> anyhow::Result<Backend> {
        let Some(url) = self.backend.filter(|b| !b.is_empty()) else {
            return Ok(Backend::dir(store));
        };
        #[cfg(not(feature = "etcd"))]
        anyhow::bail!(
            "--backend {url}: this wsreg was built without the etcd backend; build it with: cargo install --path crates/wsreg --features etcd (it needs protoc: apt-get install protobuf-compiler)"
        );
        #[cfg(feature = "etcd")]
        {
            let config = EtcdConfig::parse(&url)
                .and_then(|c| c.with_prefix(&self.etcd_prefix))
                .and_then(|c| {
                    c.with_ttl(Duration::from_secs(self.etcd_ttl))
                        .with_tls(TlsFiles {
                            ca: self.etcd_ca,
                            cert: self.etcd_cert,
                            key: self.etcd_key,
                        })
                })
                .context("--backend")?;
            Ok(Backend::etcd(store, config))
        }
    }
}
