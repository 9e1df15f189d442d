//! The registry as an MCP server, so that agents find local servers: the tools
//! `list_servers` and `wait_for_server`, and the resource `wsreg://servers` (the live
//! list), whose changes are announced to the clients that subscribed to it.
//!
//! - **The same push as the HTTP API.** One [`LiveWatch`] feeds everything:
//!   `list_servers` and reads of the resource take its exact answer (the bytes
//!   `GET /api/registry` serves, so the fields are the same); `wait_for_server` and the
//!   subscription await its change stream. Nothing polls; an idle session does not run.
//! - **A wait cannot miss its server.** The change stream is taken *before* the first
//!   look, so a server that registers between the look and the wait is a change that
//!   wakes it. The wait is bounded: 10 s by default, 5 min at most.
//! - **Failures an agent can act on are tool results.** A wait that runs out returns
//!   `isError: true` with a sentence saying what was awaited and for how long, which a
//!   model reads; protocol errors (which clients show opaquely) are kept for requests
//!   that cannot be routed: an unknown resource, arguments of the wrong shape (unknown
//!   fields are refused, so a typo does not widen a filter to everything).
//! - **Notifications only to subscribers, only for changes.** A session that called
//!   `resources/subscribe` gets one task that forwards the watch's changes as
//!   `notifications/resources/updated`; the task is aborted on `resources/unsubscribe`
//!   and when the session ends. An answer whose document equals the last one sent (a
//!   change outside the live list, e.g. a dead entry's file removed) is not announced.
//! - **Protocol versions up to 2025-11-25.** There `resources/subscribe` is the way to
//!   subscribe; 2026-07-28 replaces it with `subscriptions/listen`, not implemented
//!   here, so this server does not offer 2026-07-28 and such clients negotiate down.
//! - **stdout is the protocol.** Nothing else is printed there; logs go to stderr (the
//!   command line's logging), a wait that starts is logged at debug level.

use std::sync::Mutex;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    Implementation, ListResourcesResult, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler};
use serde::Deserialize;

use crate::registry::model::{self, Entry};
use crate::{LiveWatch, Store};

/// The URI of the live list.
pub const SERVERS_URI: &str = "wsreg://servers";
/// How long `wait_for_server` waits when the caller does not say.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// The longest `wait_for_server` waits, whatever the caller asks.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// Why the MCP server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry cannot be watched (a refused directory, no epoll, no thread).
    #[error("cannot watch the registry")]
    Watch(#[source] crate::Error),
    /// The client's `initialize` did not complete.
    #[error("the MCP session did not start")]
    Start(#[source] Box<rmcp::service::ServerInitializeError>),
    /// The task that ran the session failed.
    #[error("the MCP session ended abnormally")]
    Session(#[source] tokio::task::JoinError),
}

/// Why `wait_for_server` returned no server: shown to the agent as the tool's error.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// No live server matched before the time ran out.
    #[error("no live server matching {query} appeared within {} ms", waited.as_millis())]
    Timeout { query: Query, waited: Duration },
    /// The registry watch stopped (the process is shutting down).
    #[error("the registry watch stopped while waiting for a server matching {query}")]
    Stopped { query: Query },
}

/// A selection of live servers: each given field must equal the entry's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub project: Option<String>,
    pub session: Option<String>,
}

impl Query {
    /// Whether the entry is selected.
    pub fn matches(&self, entry: &Entry) -> bool {
        let same = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        same(&self.kind, Some(&entry.kind))
            && same(&self.name, entry.name.as_deref())
            && same(&self.project, entry.project.as_deref())
            && same(&self.session, entry.session.as_deref())
    }
}

impl std::fmt::Display for Query {
    /// `kind="echo" project="demo"`, or `any criteria` for the empty query.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields = [
            ("kind", &self.kind),
            ("name", &self.name),
            ("project", &self.project),
            ("session", &self.session),
        ];
        let mut any = false;
        for (label, value) in fields {
            if let Some(value) = value {
                write!(f, "{}{label}={value:?}", if any { " " } else { "" })?;
                any = true;
            }
        }
        if !any {
            f.write_str("any criteria")?;
        }
        Ok(())
    }
}

/// The first live server that matches `query`, now or within `timeout`.
pub async fn wait_for(
    watch: &LiveWatch,
    query: &Query,
    timeout: Duration,
) -> Result<Entry, WaitError> {
    let deadline = tokio::time::Instant::now() + timeout;
    // Subscribed before the first look: a change after it wakes the loop below.
    let mut changes = watch.subscribe();
    changes.borrow_and_update();
    if let Some(entry) = watch.exact().await.live.iter().find(|e| query.matches(e)) {
        return Ok(Entry::clone(entry));
    }
    tracing::debug!(
        "waiting up to {} ms for a server matching {query}",
        timeout.as_millis()
    );
    loop {
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Err(_) => {
                return Err(WaitError::Timeout {
                    query: query.clone(),
                    waited: timeout,
                });
            }
            Ok(Err(_)) => {
                return Err(WaitError::Stopped {
                    query: query.clone(),
                });
            }
            Ok(Ok(())) => {
                let answer = changes.borrow_and_update().clone();
                if let Some(entry) = answer.live.iter().find(|e| query.matches(e)) {
                    return Ok(Entry::clone(entry));
                }
            }
        }
    }
}

/// Arguments of `list_servers`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only servers of this kind (`echo`, `yjs`, `mcp`, …)
    pub kind: Option<String>,
    /// Only servers of this project
    pub project: Option<String>,
    /// Only servers of this session
    pub session: Option<String>,
}

/// Arguments of `wait_for_server`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitArgs {
    /// Wait for a server of this kind (`echo`, `yjs`, `mcp`, …)
    pub kind: Option<String>,
    /// Wait for a server with this name
    pub name: Option<String>,
    /// Wait for a server of this project
    pub project: Option<String>,
    /// How long to wait, in milliseconds: 10000 if absent, 300000 at most
    pub timeout_ms: Option<u64>,
}

/// Forwards the watch's changes to one subscribed client while it lives.
struct Subscription(tokio::task::AbortHandle);

impl Drop for Subscription {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One MCP session over the registry.
pub struct McpServer {
    watch: LiveWatch,
    subscription: Mutex<Option<Subscription>>,
    tool_router: ToolRouter<McpServer>,
}

impl McpServer {
    /// A session that answers from `watch`.
    pub fn new(watch: LiveWatch) -> McpServer {
        McpServer {
            watch,
            subscription: Mutex::new(None),
            tool_router: Self::tool_router(),
        }
    }
}

/// Serves one MCP session on stdin/stdout until the client closes it.
pub async fn serve_stdio(store: Store) -> Result<(), Error> {
    let watch = LiveWatch::spawn(store).map_err(Error::Watch)?;
    let session = McpServer::new(watch)
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| Error::Start(Box::new(e)))?;
    let reason = session.waiting().await.map_err(Error::Session)?;
    tracing::debug!("MCP session ended: {reason:?}");
    Ok(())
}

fn check_uri(uri: &str) -> Result<(), ErrorData> {
    match uri == SERVERS_URI {
        true => Ok(()),
        false => Err(ErrorData::resource_not_found(
            format!("no resource {uri:?}: the only one is {SERVERS_URI}"),
            None,
        )),
    }
}

#[rmcp::tool_router]
impl McpServer {
    /// The live servers as the registry API's document.
    #[tool(
        description = "List the live WebSocket servers on this machine, as the registry API's JSON document {\"version\":1,\"servers\":[…]}: each server's id, kind, name, project, session, url, port, pid and startedAt. Optional filters: kind, project, session."
    )]
    async fn list_servers(&self, Parameters(args): Parameters<ListArgs>) -> String {
        let query = Query {
            kind: args.kind,
            name: None,
            project: args.project,
            session: args.session,
        };
        let answer = self.watch.exact().await;
        model::to_json(
            answer
                .live
                .iter()
                .filter(|e| query.matches(e))
                .map(|e| &**e),
        )
    }

    /// The first matching live server, now or when it registers.
    #[tool(
        description = "Wait until a live WebSocket server matching kind / name / project is registered (returns at once if one is), and return it as JSON: its id, kind, name, project, url, port, pid, startedAt. timeoutMs: 10000 by default, 300000 at most; on timeout the result is an error."
    )]
    async fn wait_for_server(
        &self,
        Parameters(args): Parameters<WaitArgs>,
    ) -> Result<String, String> {
        let timeout = args
            .timeout_ms
            .map_or(DEFAULT_WAIT, Duration::from_millis)
            .min(MAX_WAIT);
        let query = Query {
            kind: args.kind,
            name: args.name,
            project: args.project,
            session: None,
        };
        match wait_for(&self.watch, &query, timeout).await {
            Ok(entry) => Ok(model::entry_json(&entry)),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
        .with_server_info(Implementation::new("wsreg", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Finds the WebSocket servers running on this machine (echo, Yjs sync, MCP, …) \
             from the per-user wsreg registry. list_servers gives the live ones; \
             wait_for_server waits for one to start; the resource wsreg://servers is the \
             live list, and subscribers are told when it changes.",
        )
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25).into()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let servers = Resource::new(SERVERS_URI, "servers")
            .with_title("Live WebSocket servers")
            .with_description(
                "The live servers as the registry API's document {\"version\":1,\"servers\":[…]}; subscribe to be told when it changes",
            )
            .with_mime_type("application/json");
        Ok(ListResourcesResult::with_all_items(vec![servers]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        check_uri(&request.uri)?;
        let answer = self.watch.exact().await;
        let contents =
            ResourceContents::text(&*answer.json, SERVERS_URI).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    #[allow(deprecated)] // legacy in 2026-07-28, the way to subscribe up to 2025-11-25
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        check_uri(&request.uri)?;
        let mut slot = self.subscription.lock().expect("never poisoned");
        if slot.is_none() {
            let mut changes = self.watch.subscribe();
            let mut sent = changes.borrow_and_update().json.clone();
            let peer = context.peer;
            let task = tokio::spawn(async move {
                while changes.changed().await.is_ok() {
                    let json = changes.borrow_and_update().json.clone();
                    if json == sent {
                        continue;
                    }
                    sent = json;
                    let updated = ResourceUpdatedNotificationParam::new(SERVERS_URI);
                    if let Err(e) = peer.notify_resource_updated(updated).await {
                        tracing::debug!("resource update not sent, the session is closed: {e}");
                        return;
                    }
                }
            });
            *slot = Some(Subscription(task.abort_handle()));
        }
        Ok(())
    }

    #[allow(deprecated)] // see `subscribe`
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        check_uri(&request.uri)?;
        self.subscription.lock().expect("never poisoned").take();
        Ok(())
    }
}
