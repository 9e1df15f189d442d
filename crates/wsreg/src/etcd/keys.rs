//! One-off requests for the short-lived commands (`register`, `unregister`, `list`):
//! put an entry under a lease nobody renews, delete a key, read the prefix once.

use etcd_client::GetOptions;

use super::config::{EtcdConfig, EtcdError};
use super::lease::put_under_lease;
use super::members::Members;
use crate::registry::model::{self, Entry, entry_file_json};

/// Puts `entry` under a lease of the backend's TTL that nobody renews: it lives that long
/// unless put again (`wsreg run` keeps one alive instead).
pub async fn put_once(config: &EtcdConfig, entry: &Entry) -> Result<(), EtcdError> {
    let members = Members::connect(config).await?;
    let key = config.key(&entry.id);
    put_under_lease(&members, config, &key, &entry_file_json(entry))
        .await
        .map(drop)
}

/// Deletes the entry `id`; says whether there was one.
pub async fn delete(config: &EtcdConfig, id: &str) -> Result<bool, EtcdError> {
    let key = config.key(id);
    let deleted = Members::connect(config)
        .await?
        .call("delete", |mut c| {
            let key = key.clone();
            async move { c.delete(key, None).await }
        })
        .await?;
    Ok(deleted.deleted() > 0)
}

/// Every valid entry under the prefix (an invalid value is passed over with a warning).
pub async fn read_all(config: &EtcdConfig) -> Result<Vec<Entry>, EtcdError> {
    let prefix = config.servers_prefix();
    let answer = Members::connect(config)
        .await?
        .call("get", |mut c| {
            let prefix = prefix.clone();
            async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await }
        })
        .await?;
    let mut entries: Vec<Entry> = answer
        .kvs()
        .iter()
        .filter_map(|kv| {
            let id = kv.key_str().ok()?.strip_prefix(&prefix)?;
            model::parse_entry_file(kv.value(), &format!("{id}.json"))
                .inspect_err(|e| tracing::warn!("{prefix}{id}: {e}; skipped"))
                .ok()
        })
        .collect();
    entries.sort_by(|a, b| model::order_key(a).cmp(&model::order_key(b)));
    Ok(entries)
}
