//! Where the etcd cluster is, how to reach it, and where wsreg's keys live in it.
//!
//! `etcd://H1:2379,H2:2379,H3:2379` names the members; requests go to one of them and
//! move on to the next when it fails ([`super::members`]). With a CA file the endpoints are
//! reached over TLS (`https://`), and a client certificate and key are passed through
//! when given. The key prefix (`/wsreg/v2` by default) lets several teams share a
//! cluster. Every request carries a timeout, so a member that hangs is left for another
//! rather than hanging a registration.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

/// The scheme of `--backend` for etcd.
pub const SCHEME: &str = "etcd://";
/// The key prefix by default.
pub const DEFAULT_PREFIX: &str = "/wsreg/v2";
/// A lease's time to live by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// How long one request may take before it is given up (and retried elsewhere).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the etcd backend cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("{0:?} is not an etcd backend: expected etcd://HOST:PORT[,HOST:PORT…]")]
    NotEtcd(String),
    #[error("{0:?}: no endpoint after etcd://")]
    NoEndpoints(String),
    #[error("the etcd key prefix {0:?} must start with / and not end with one")]
    Prefix(String),
    #[error("--etcd-cert and --etcd-key go together")]
    HalfIdentity,
    #[error("cannot read {path}")]
    ReadTls {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach etcd at {endpoints}")]
    Connect {
        endpoints: String,
        #[source]
        source: etcd_client::Error,
    },
    #[error("etcd {op} failed")]
    Request {
        op: &'static str,
        #[source]
        source: etcd_client::Error,
    },
    #[error("etcd {op}: the stream ended")]
    StreamEnded { op: &'static str },
    #[error("etcd {op} timed out after {REQUEST_TIMEOUT:?}")]
    Timeout { op: &'static str },
    #[error("cannot start the etcd client's thread")]
    Thread(#[source] std::io::Error),
}

/// TLS material for the connection to etcd, as file paths.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// The CA that signed the members' certificates; its presence turns TLS on.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key, for clusters that ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The etcd backend's settings.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    endpoints: Vec<String>,
    prefix: String,
    ttl: Duration,
    tls: TlsFiles,
}

impl EtcdConfig {
    /// Parses `etcd://H1:2379,H2:2379`; the prefix and TTL are the defaults.
    pub fn parse(url: &str) -> Result<EtcdConfig, EtcdError> {
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| EtcdError::NotEtcd(url.to_owned()))?;
        let endpoints: Vec<String> = rest
            .trim_end_matches('/')
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            return Err(EtcdError::NoEndpoints(url.to_owned()));
        }
        Ok(EtcdConfig {
            endpoints,
            prefix: DEFAULT_PREFIX.to_owned(),
            ttl: DEFAULT_TTL,
            tls: TlsFiles::default(),
        })
    }

    /// Puts wsreg's keys under `prefix` (`/team-a/wsreg`).
    pub fn with_prefix(mut self, prefix: &str) -> Result<EtcdConfig, EtcdError> {
        if !prefix.starts_with('/') || (prefix.len() > 1 && prefix.ends_with('/')) {
            return Err(EtcdError::Prefix(prefix.to_owned()));
        }
        self.prefix = prefix.trim_end_matches('/').to_owned();
        Ok(self)
    }

    /// Leases last `ttl` (at least a second: etcd counts in seconds).
    pub fn with_ttl(mut self, ttl: Duration) -> EtcdConfig {
        self.ttl = ttl.max(Duration::from_secs(1));
        self
    }

    pub fn with_tls(mut self, tls: TlsFiles) -> Result<EtcdConfig, EtcdError> {
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(EtcdError::HalfIdentity);
        }
        self.tls = tls;
        Ok(self)
    }

    /// The members, as given.
    pub fn endpoints(&self) -> String {
        self.endpoints.join(",")
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The prefix every entry key starts with: `<prefix>/servers/`.
    pub fn servers_prefix(&self) -> String {
        format!("{}/servers/", self.prefix)
    }

    /// The key of the entry `id`.
    pub fn key(&self, id: &str) -> String {
        format!("{}{id}", self.servers_prefix())
    }

    /// A client of each member, in the order given. Connections are lazy: a member that
    /// is down now is found out by the first request, which [`Members`] then sends to
    /// the next one.
    ///
    /// [`Members`]: super::members::Members
    pub(super) async fn clients(&self) -> Result<Vec<Client>, EtcdError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            // HTTP/2 pings find a member that stopped answering (a partition, a frozen
            // process), so a watch moves to another member instead of waiting forever.
            // Only while a stream is open (a watch, a lease's renewals): a connection
            // with nothing on it is not pinged.
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_keep_alive_while_idle(false);
        let mut scheme = "";
        if let Some(ca) = &self.tls.ca {
            let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca)?));
            if let (Some(cert), Some(key)) = (&self.tls.cert, &self.tls.key) {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            options = options.with_tls(tls);
            scheme = "https://";
        }
        let mut clients = Vec::with_capacity(self.endpoints.len());
        for endpoint in &self.endpoints {
            let client = Client::connect([format!("{scheme}{endpoint}")], Some(options.clone()))
                .await
                .map_err(|source| EtcdError::Connect {
                    endpoints: endpoint.clone(),
                    source,
                })?;
            clients.push(client);
        }
        Ok(clients)
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::ReadTls {
        path: path.clone(),
        source,
    })
}

/// Runs one request with [`REQUEST_TIMEOUT`]; its error says which request failed.
pub async fn request<T>(
    op: &'static str,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, EtcdError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(result) => result.map_err(|source| EtcdError::Request { op, source }),
        Err(_) => Err(EtcdError::Timeout { op }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_members_prefix_and_rejects_what_is_not_etcd() {
        let c = EtcdConfig::parse("etcd://a:1,b:2,c:3").unwrap();
        assert_eq!(c.endpoints(), "a:1,b:2,c:3");
        assert_eq!(c.key("echo-1"), "/wsreg/v2/servers/echo-1");
        let c = c.with_prefix("/team/wsreg").unwrap();
        assert_eq!(c.servers_prefix(), "/team/wsreg/servers/");
        assert!(EtcdConfig::parse("http://a:1").is_err());
        assert!(EtcdConfig::parse("etcd://").is_err());
        assert!(c.clone().with_prefix("team").is_err());
        assert!(c.with_prefix("/team/").is_err());
    }
}
