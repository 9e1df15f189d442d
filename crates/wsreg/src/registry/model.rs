//! The registry's formats: an entry file of version 2 (one server, `<id>.json`), the
//! legacy single file (version 1 and the prototype's), their validation with limits, and
//! the canonical document every reader prints (see `docs/registry-format.md`).
//!
//! Parsing goes through `serde_json::Value` first, and each entry is then validated on
//! its own: one bad entry is skipped with a warning instead of taking the rest down, and
//! versions can be told apart before anything is interpreted. Both formats share one
//! entry reader (`RawEntry`), so an entry means the same in a file of its own and in
//! the legacy file.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// The largest legacy registry file a reader reads; a larger one counts as corrupt.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The largest entry file (version 2) a reader reads; a larger one is skipped unread.
pub const MAX_ENTRY_FILE_BYTES: u64 = 64 * 1024;
/// The format version of an entry file.
pub const ENTRY_FILE_VERSION: u64 = 2;
/// The most entries a registry holds.
pub const MAX_ENTRIES: usize = 65_536;
/// The longest `id`, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// The longest `kind`, in bytes.
pub const MAX_KIND_BYTES: usize = 32;
/// The longest `name`, `project` or `session`, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// The longest `host`, in bytes.
pub const MAX_HOST_BYTES: usize = 255;
/// The longest `url`, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The largest `meta`, serialised, in bytes.
pub const MAX_META_BYTES: usize = 4096;
/// The largest `pid` (Linux's `pid_max` ceiling).
pub const MAX_PID: u64 = 4_194_304;
/// The longest lease, in seconds (a year).
pub const MAX_TTL_SECS: u64 = 365 * 24 * 3600;
/// The latest time a timestamp may name, 9999-12-31T23:59:59.999Z, in milliseconds since
/// the epoch: RFC 3339 has four-digit years, so nothing later can be printed (found by
/// fuzzing: a `startedAt` number past it made every writer panic).
pub const MAX_TIMESTAMP_MILLIS: u64 = 253_402_300_799_999;

/// One registered server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: String,
    pub kind: String,
    pub name: Option<String>,
    pub project: Option<String>,
    pub session: Option<String>,
    pub host: Option<String>,
    pub port: u16,
    pub url: String,
    pub pid: u32,
    pub pid_start_time: Option<u64>,
    pub started_at: Timestamp,
    pub ttl_secs: Option<u64>,
    pub heartbeat_at: Option<Timestamp>,
    pub meta: Map<String, Value>,
    /// An HTTP URL whose 2xx answer means healthy, probed instead of a WebSocket
    /// handshake to `url`. Printed only when set, like `health`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_url: Option<String>,
    /// Whether endpoints probe this server; printed only as `"health":"none"`, last, so
    /// that an endpoint can put its probe result in its place.
    #[serde(skip_serializing_if = "HealthCheck::is_probe")]
    pub health: HealthCheck,
}

/// Whether a server wants its health probed (the entry's optional `"health": "none"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheck {
    /// Probed (the default): a WebSocket handshake to `url`, or a GET of `healthUrl`.
    #[default]
    Probe,
    /// Never probed: the server does not answer probes (its health shows as `none`).
    None,
}

impl HealthCheck {
    fn is_probe(&self) -> bool {
        *self == HealthCheck::Probe
    }
}

impl Entry {
    /// Checks every rule of the format; `parse` and every writer call it.
    pub fn validate(&self) -> Result<(), EntryError> {
        let kind = self.kind.as_bytes();
        let kind_ok = !kind.is_empty()
            && kind.len() <= MAX_KIND_BYTES
            && kind[0].is_ascii_lowercase()
            && kind
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if !kind_ok {
            return Err(EntryError::Kind);
        }
        let id = &self.id;
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(EntryError::IdLength(id.len()));
        }
        // Not starting with a dot: the entry file `.x.json` would be a hidden file, the
        // name writers give their temp files.
        if id.starts_with('.')
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        {
            return Err(EntryError::IdChars);
        }
        for (field, value, max) in [
            ("name", &self.name, MAX_LABEL_BYTES),
            ("project", &self.project, MAX_LABEL_BYTES),
            ("session", &self.session, MAX_LABEL_BYTES),
            ("host", &self.host, MAX_HOST_BYTES),
        ] {
            if let Some(v) = value.as_ref().filter(|v| v.len() > max) {
                return Err(EntryError::TooLong {
                    field,
                    len: v.len(),
                    max,
                });
            }
        }
        if self.port == 0 {
            return Err(EntryError::Range {
                field: "port",
                value: 0,
            });
        }
        if self.url.len() > MAX_URL_BYTES {
            return Err(EntryError::TooLong {
                field: "url",
                len: self.url.len(),
                max: MAX_URL_BYTES,
            });
        }
        if !(self.url.starts_with("ws://") || self.url.starts_with("wss://")) {
            return Err(EntryError::Url);
        }
        if let Some(url) = &self.health_url {
            if url.len() > MAX_URL_BYTES {
                return Err(EntryError::TooLong {
                    field: "healthUrl",
                    len: url.len(),
                    max: MAX_URL_BYTES,
                });
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(EntryError::HealthUrl);
            }
        }
        if self.pid == 0 || u64::from(self.pid) > MAX_PID {
            return Err(EntryError::Range {
                field: "pid",
                value: self.pid.into(),
            });
        }
        if let Some(ttl) = self.ttl_secs.filter(|t| *t == 0 || *t > MAX_TTL_SECS) {
            return Err(EntryError::Range {
                field: "ttlSecs",
                value: ttl,
            });
        }
        for (field, time) in [
            ("startedAt", Some(self.started_at)),
            ("heartbeatAt", self.heartbeat_at),
        ] {
            if time.is_some_and(|t| millis_since_epoch(t.0) > MAX_TIMESTAMP_MILLIS) {
                return Err(EntryError::Timestamp { field });
            }
        }
        let meta_len = serde_json::to_string(&self.meta).map_or(usize::MAX, |s| s.len());
        if meta_len > MAX_META_BYTES {
            return Err(EntryError::TooLong {
                field: "meta",
                len: meta_len,
                max: MAX_META_BYTES,
            });
        }
        Ok(())
    }

    /// When the lease of this entry ends, if it has one.
    pub fn lease_expiry(&self) -> Option<SystemTime> {
        let ttl = self.ttl_secs?;
        let base = self.heartbeat_at.unwrap_or(self.started_at);
        Some(base.0 + Duration::from_secs(ttl))
    }
}

/// Why an entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("id must be 1 to {MAX_ID_BYTES} bytes (got {0})")]
    IdLength(usize),
    #[error("id may hold only A-Z a-z 0-9 - _ . ~, and may not start with .")]
    IdChars,
    #[error("kind must be a lowercase word of at most {MAX_KIND_BYTES} bytes ([a-z][a-z0-9-]*)")]
    Kind,
    #[error("{field} is {len} bytes, over the limit of {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} {value} is out of range")]
    Range { field: &'static str, value: u64 },
    #[error("url must start with ws:// or wss://")]
    Url,
    #[error("healthUrl must start with http:// or https://")]
    HealthUrl,
    #[error("health must be \"none\" when given")]
    Health,
    #[error("{field} is not a UTC timestamp like 2026-11-25T12:00:00.000Z")]
    Timestamp { field: &'static str },
    #[error("{0}")]
    Shape(String),
    #[error("duplicate id")]
    DuplicateId,
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("the file holds {0}, not an object")]
    NotObject(&'static str),
    #[error("format version {0} is not supported (entry files are version 2)")]
    Version(String),
    #[error("the entry's id {id:?} does not match its file name {file:?}")]
    IdNotFileName { id: String, file: String },
}

/// A point in time, written as RFC 3339 UTC with milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// Now, truncated to the millisecond (the precision the file keeps).
    pub fn now() -> Timestamp {
        Timestamp::from_millis(millis_since_epoch(SystemTime::now()))
    }

    fn from_millis(ms: u64) -> Timestamp {
        Timestamp(UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// The timestamp for a file name: `20261125T120000.000Z` (no `-` or `:`).
    pub fn for_file_name(&self) -> String {
        self.to_string()
            .chars()
            .filter(|c| !"-:".contains(*c))
            .collect()
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, truncating to milliseconds.
    pub fn parse(s: &str) -> Option<Timestamp> {
        // The shape first (humantime alone would also take `…:00.Z` or a space for `T`).
        let b = s.as_bytes();
        let shape_ok = b.len() >= 20
            && b.iter().take(19).enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                _ => c.is_ascii_digit(),
            })
            && b[b.len() - 1] == b'Z'
            && match &b[19..b.len() - 1] {
                [] => true,
                [b'.', digits @ ..] => {
                    (1..=9).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
                }
                _ => false,
            };
        if !shape_ok {
            return None;
        }
        let t = humantime::parse_rfc3339(s).ok()?;
        Some(Timestamp::from_millis(millis_since_epoch(t)))
    }
}

fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An entry as it stands in the file, before validation. Numbers are read wide so that an
/// out-of-range value gets a message about its range, not about Rust's integer types.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    id: String,
    kind: Option<String>,
    name: Option<String>,
    project: Option<String>,
    session: Option<String>,
    host: Option<String>,
    port: u64,
    url: Option<String>,
    pid: u64,
    pid_start_time: Option<u64>,
    started_at: Option<Value>,
    ttl_secs: Option<u64>,
    heartbeat_at: Option<String>,
    meta: Option<Map<String, Value>>,
    health_url: Option<String>,
    health: Option<Value>,
}

impl RawEntry {
    fn into_entry(self) -> Result<Entry, EntryError> {
        let port = u16::try_from(self.port).map_err(|_| EntryError::Range {
            field: "port",
            value: self.port,
        })?;
        let pid = u32::try_from(self.pid)
            .ok()
            .filter(|p| u64::from(*p) <= MAX_PID)
            .ok_or(EntryError::Range {
                field: "pid",
                value: self.pid,
            })?;
        let started_at = match self.started_at {
            None | Some(Value::Null) => Timestamp(UNIX_EPOCH),
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|ms| *ms <= MAX_TIMESTAMP_MILLIS)
                .map(Timestamp::from_millis)
                .ok_or(EntryError::Timestamp { field: "startedAt" })?,
            Some(Value::String(s)) => {
                Timestamp::parse(&s).ok_or(EntryError::Timestamp { field: "startedAt" })?
            }
            Some(_) => return Err(EntryError::Timestamp { field: "startedAt" }),
        };
        let heartbeat_at = match self.heartbeat_at {
            None => None,
            Some(s) => Some(Timestamp::parse(&s).ok_or(EntryError::Timestamp {
                field: "heartbeatAt",
            })?),
        };
        let health = match self.health {
            None | Some(Value::Null) => HealthCheck::Probe,
            Some(Value::String(s)) if s == "none" => HealthCheck::None,
            Some(_) => return Err(EntryError::Health),
        };
        let entry = Entry {
            url: self
                .url
                .unwrap_or_else(|| format!("ws://127.0.0.1:{port}/")),
            id: self.id,
            kind: self.kind.unwrap_or_else(|| "unknown".to_owned()),
            name: self.name,
            project: self.project,
            session: self.session,
            host: self.host,
            port,
            pid,
            pid_start_time: self.pid_start_time,
            started_at,
            ttl_secs: self.ttl_secs,
            heartbeat_at,
            meta: self.meta.unwrap_or_default(),
            health_url: self.health_url,
            health,
        };
        entry.validate()?;
        Ok(entry)
    }
}

/// An entry that was read but not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its position in the `servers` array.
    pub index: usize,
    /// Its id, when it had a string one.
    pub id: Option<String>,
    pub reason: EntryError,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(
                f,
                "entry {} (id {id:?}) skipped: {}",
                self.index, self.reason
            ),
            None => write!(f, "entry {} skipped: {}", self.index, self.reason),
        }
    }
}

/// What a registry file held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// The valid entries, in file order.
    pub entries: Vec<Entry>,
    /// The invalid ones, each with its reason.
    pub skipped: Vec<Skipped>,
}

/// Why a whole file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the file is {0} bytes, over the limit of {MAX_FILE_BYTES}")]
    TooLarge(u64),
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("the document is {0}, not an object")]
    NotObject(&'static str),
    #[error("\"servers\" is not an array")]
    ServersNotArray,
    #[error("{0} entries, over the limit of {MAX_ENTRIES}")]
    TooManyEntries(usize),
    #[error("format version {0} is not supported")]
    UnsupportedVersion(String),
}

impl FormatError {
    /// A corrupt file is moved aside by the next writer; an unsupported version is left alone.
    pub fn is_corrupt(&self) -> bool {
        !matches!(self, FormatError::UnsupportedVersion(_))
    }
}

/// Parses a registry file's bytes (see the reading rules in `docs/registry-format.md`).
pub fn parse(bytes: &[u8]) -> Result<Parsed, FormatError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FormatError::TooLarge(bytes.len() as u64));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Parsed::default());
    }
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| FormatError::NotJson(e.to_string()))?;
    let Value::Object(mut doc) = doc else {
        return Err(FormatError::NotObject(json_type(&doc)));
    };
    match doc.get("version") {
        None => {}
        Some(v) if v.as_u64() == Some(1) => {}
        Some(v) => return Err(FormatError::UnsupportedVersion(v.to_string())),
    }
    let servers = match doc.remove("servers") {
        None | Some(Value::Null) => return Ok(Parsed::default()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(FormatError::ServersNotArray),
    };
    if servers.len() > MAX_ENTRIES {
        return Err(FormatError::TooManyEntries(servers.len()));
    }
    let mut parsed = Parsed::default();
    // Ids seen so far: a set, not a scan of the entries, which made a read quadratic in
    // the number of entries (a third of `list` with 1,000 entries, under callgrind).
    let mut ids = HashSet::with_capacity(servers.len());
    for (index, raw) in servers.into_iter().enumerate() {
        let id = raw.get("id").and_then(Value::as_str).map(str::to_owned);
        let result = serde_json::from_value::<RawEntry>(raw)
            .map_err(|e| EntryError::Shape(e.to_string()))
            .and_then(RawEntry::into_entry)
            .and_then(|e| match ids.insert(e.id.clone()) {
                true => Ok(e),
                false => Err(EntryError::DuplicateId),
            });
        match result {
            Ok(entry) => parsed.entries.push(entry),
            Err(reason) => parsed.skipped.push(Skipped { index, id, reason }),
        }
    }
    Ok(parsed)
}

/// Parses an entry file (version 2) named `file_name` (`<id>.json`): the entry, or why
/// the file is skipped. The caller has checked the size ([`MAX_ENTRY_FILE_BYTES`]).
pub fn parse_entry_file(bytes: &[u8], file_name: &str) -> Result<Entry, EntryError> {
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| EntryError::NotJson(e.to_string()))?;
    if !doc.is_object() {
        return Err(EntryError::NotObject(json_type(&doc)));
    }
    match doc.get("version") {
        Some(v) if v.as_u64() == Some(ENTRY_FILE_VERSION) => {}
        Some(v) => return Err(EntryError::Version(v.to_string())),
        None => return Err(EntryError::Version("(none)".into())),
    }
    let entry = serde_json::from_value::<RawEntry>(doc)
        .map_err(|e| EntryError::Shape(e.to_string()))
        .and_then(RawEntry::into_entry)?;
    if file_name.strip_suffix(".json") != Some(entry.id.as_str()) {
        return Err(EntryError::IdNotFileName {
            id: entry.id,
            file: file_name.to_owned(),
        });
    }
    Ok(entry)
}

/// An entry file's content: `{"version":2, …the entry's fields…}` and a newline.
pub fn entry_file_json(entry: &Entry) -> String {
    #[derive(Serialize)]
    struct EntryFile<'a> {
        version: u64,
        #[serde(flatten)]
        entry: &'a Entry,
    }
    let mut json = serde_json::to_string(&EntryFile {
        version: ENTRY_FILE_VERSION,
        entry,
    })
    .expect("entries always serialise");
    json.push('\n');
    json
}

/// The order every reader lists entries in: registration order (`startedAt`), then id.
pub fn order_key(entry: &Entry) -> (Timestamp, &str) {
    (entry.started_at, &entry.id)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The canonical document: what the file holds and what every reader prints.
#[derive(Serialize)]
struct Document<'a, I: Serialize> {
    version: u32,
    servers: &'a I,
}

/// One entry as it stands in the canonical document's `servers` array.
pub fn entry_json(entry: &Entry) -> String {
    serde_json::to_string(entry).expect("entries always serialise")
}

/// The canonical document from entries already serialised by [`entry_json`]: joining
/// them costs a copy, not a serialisation, so a change to one entry of 10,000 costs one.
pub fn document_from_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut json = String::from(r#"{"version":1,"servers":["#);
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(part);
    }
    json.push_str("]}");
    json
}

/// Serialises entries as the canonical document `{"version":1,"servers":[…]}`.
pub fn to_json<E: std::borrow::Borrow<Entry>>(entries: impl IntoIterator<Item = E>) -> String {
    let entries: Vec<E> = entries.into_iter().collect();
    let servers: Vec<&Entry> = entries.iter().map(|e| e.borrow()).collect();
    serde_json::to_string(&Document {
        version: 1,
        servers: &servers,
    })
    .expect("entries always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "id": "echo-abc", "kind": "echo", "name": "n", "project": "p", "session": null,
            "host": "devbox", "port": 4000, "url": "ws://127.0.0.1:4000/", "pid": 42,
            "pidStartTime": 7, "startedAt": "2026-11-25T12:00:00.000Z", "ttlSecs": null,
            "heartbeatAt": null, "meta": {"a": 1}
        })
    }

    fn parse_one(entry: Value) -> Result<Entry, EntryError> {
        let doc = json!({"version": 1, "servers": [entry]}).to_string();
        let mut p = parse(doc.as_bytes()).unwrap();
        match p.skipped.pop() {
            Some(s) => Err(s.reason),
            None => Ok(p.entries.remove(0)),
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let doc = json!({"version": 1, "servers": [sample()]});
        let parsed = parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.skipped, vec![]);
        let out: Value = serde_json::from_str(&to_json(&parsed.entries)).unwrap();
        assert_eq!(out, doc);
        assert_eq!(parse(to_json(&parsed.entries).as_bytes()).unwrap(), parsed);
    }

    #[test]
    fn reads_the_prototype_format() {
        let doc = r#"{"servers":[{"id":"server-1732530000000","port":5001,"pid":77,"startedAt":1732530000123}]}"#;
        let e = parse(doc.as_bytes()).unwrap().entries.remove(0);
        assert_eq!(e.kind, "unknown");
        assert_eq!(e.url, "ws://127.0.0.1:5001/");
        assert_eq!(e.pid_start_time, None);
        assert_eq!(e.started_at.to_string(), "2024-11-25T10:20:00.123Z");
        let iso = r#"{"servers":[{"id":"a","port":5001,"pid":77,"startedAt":"2024-11-25T10:20:00.123456Z"}]}"#;
        let e = parse(iso.as_bytes()).unwrap().entries.remove(0);
        assert_eq!(e.started_at.to_string(), "2024-11-25T10:20:00.123Z");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut e = sample();
        e["future"] = json!({"x": [1, 2]});
        let doc = json!({"version": 1, "servers": [e], "writer": "wsreg 9"});
        let parsed = parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.entries.len(), 1);
        assert!(!to_json(&parsed.entries).contains("future"));
    }

    #[test]
    fn each_limit_is_rejected_with_a_clear_reason() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "id",
                json!("a".repeat(129)),
                "id must be 1 to 128 bytes (got 129)",
            ),
            ("id", json!(""), "id must be 1 to 128 bytes (got 0)"),
            ("id", json!("a/b"), "id may hold only"),
            ("kind", json!("Echo"), "kind must be a lowercase word"),
            (
                "kind",
                json!("k".repeat(33)),
                "kind must be a lowercase word",
            ),
            (
                "name",
                json!("n".repeat(257)),
                "name is 257 bytes, over the limit of 256",
            ),
            ("project", json!("p".repeat(257)), "project is 257 bytes"),
            ("host", json!("h".repeat(256)), "host is 256 bytes"),
            ("port", json!(0), "port 0 is out of range"),
            ("port", json!(70000), "port 70000 is out of range"),
            ("pid", json!(0), "pid 0 is out of range"),
            ("pid", json!(5_000_000), "pid 5000000 is out of range"),
            ("url", json!("http://x/"), "url must start with ws://"),
            (
                "url",
                json!(format!("ws://{}", "u".repeat(2048))),
                "url is 2053 bytes",
            ),
            ("ttlSecs", json!(0), "ttlSecs 0 is out of range"),
            (
                "startedAt",
                json!("yesterday"),
                "startedAt is not a UTC timestamp",
            ),
            (
                "startedAt",
                json!("2026-11-25T12:00:00+02:00"),
                "startedAt is not a UTC",
            ),
            (
                "heartbeatAt",
                json!("2026-11-25 12:00:00"),
                "heartbeatAt is not a UTC",
            ),
            (
                "meta",
                json!({"x": "m".repeat(4100)}),
                "meta is 4108 bytes, over the limit of 4096",
            ),
            ("port", json!("80"), "invalid type"),
        ];
        for (field, value, expected) in cases {
            let mut e = sample();
            e[field] = value;
            let err = parse_one(e).expect_err(field).to_string();
            assert!(
                err.contains(expected),
                "{field}: {err:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn an_invalid_entry_does_not_take_the_others_down() {
        let mut bad = sample();
        bad["port"] = json!(0);
        let mut dup = sample();
        dup["port"] = json!(4001);
        let mut other = sample();
        other["id"] = json!("echo-def");
        let doc = json!({"version": 1, "servers": [sample(), bad, 5, dup, other]});
        let p = parse(doc.to_string().as_bytes()).unwrap();
        let ids: Vec<_> = p.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["echo-abc", "echo-def"]);
        let skipped: Vec<_> = p
            .skipped
            .iter()
            .map(|s| (s.index, s.reason.clone()))
            .collect();
        assert_eq!(
            skipped[0],
            (
                1,
                EntryError::Range {
                    field: "port",
                    value: 0
                }
            )
        );
        assert_eq!(skipped[2], (3, EntryError::DuplicateId));
        assert!(
            p.skipped[0]
                .to_string()
                .starts_with("entry 1 (id \"echo-abc\") skipped: port 0")
        );
    }

    #[test]
    fn times_past_year_9999_are_invalid_and_never_reach_a_writer() {
        let mut e = sample();
        e["startedAt"] = json!(MAX_TIMESTAMP_MILLIS + 1);
        assert_eq!(
            parse_one(e.clone()),
            Err(EntryError::Timestamp { field: "startedAt" })
        );
        e["startedAt"] = json!(MAX_TIMESTAMP_MILLIS);
        let mut entry = parse_one(e).unwrap();
        assert_eq!(entry.started_at.to_string(), "9999-12-31T23:59:59.999Z");
        entry.heartbeat_at = Some(Timestamp(
            UNIX_EPOCH + Duration::from_millis(MAX_TIMESTAMP_MILLIS + 1),
        ));
        assert_eq!(
            entry.validate(),
            Err(EntryError::Timestamp {
                field: "heartbeatAt"
            })
        );
    }

    #[test]
    fn meta_numbers_survive_a_rewrite_exactly() {
        // Found by fuzzing: without exact float parsing, a writer rewriting the file
        // changed the last digits of a long number in another server's meta.
        let big = "184467440368540000000040000044654407370955000000000000000446544000000775808";
        let doc = format!(r#"{{"servers":[{{"id":"a","port":1,"pid":1,"meta":{{"x":{big}}}}}]}}"#);
        let first = parse(doc.as_bytes()).unwrap().entries;
        let again = parse(to_json(&first).as_bytes()).unwrap().entries;
        assert_eq!(first, again);
        assert_eq!(again[0].meta["x"].as_f64(), big.parse::<f64>().ok());
    }

    #[test]
    fn whole_file_errors() {
        assert_eq!(parse(b"").unwrap(), Parsed::default());
        assert_eq!(parse(b" \n").unwrap(), Parsed::default());
        assert_eq!(parse(b"{}").unwrap(), Parsed::default());
        assert_eq!(parse(b"[]"), Err(FormatError::NotObject("an array")));
        assert_eq!(parse(b"null"), Err(FormatError::NotObject("null")));
        assert!(matches!(
            parse(b"{\"servers\": [1,"),
            Err(FormatError::NotJson(_))
        ));
        assert_eq!(
            parse(b"{\"servers\": {}}"),
            Err(FormatError::ServersNotArray)
        );
        assert_eq!(
            parse(b"{\"version\": 2, \"servers\": []}"),
            Err(FormatError::UnsupportedVersion("2".into()))
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(FormatError::NotJson(_))
        ));
        let big = vec![b' '; MAX_FILE_BYTES as usize + 1];
        assert_eq!(parse(&big), Err(FormatError::TooLarge(MAX_FILE_BYTES + 1)));
    }
}
