//! `GET /api/registry/events[?project=P&kind=K]`: the live list as Server-Sent Events.
//!
//! The stream sends `retry: 1000` (EventSource reconnects after a second, not the
//! default three), then an event `servers` holding the canonical document at once and
//! after every change of the *filtered* list — a change elsewhere in the registry sends
//! nothing — and a keep-alive comment every 15 s so proxies and idle timers keep it open.
//! Changes come from the process's one [`LiveWatch`](crate::LiveWatch) (a directory
//! watch: milliseconds, not polling). Entries are judged alive again as each event is
//! built, so a server that died since the watch last looked is not sent. The stream ends
//! when the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt, stream};
use tokio_stream::wrappers::WatchStream;

use super::Endpoint;
use super::error::ApiError;
use crate::registry::{Entry, Filter, Judge, model};
use crate::servers::Shutdown;

/// How long an idle stream waits before a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The reconnection delay the stream asks EventSource for.
pub const RETRY: Duration = Duration::from_secs(1);

/// The handler.
pub async fn events(
    State(endpoint): State<Endpoint>,
    shutdown: Shutdown,
    query: Result<Query<Filter>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = super::filter(query)?;
    let mut sent: Option<Vec<Entry>> = None;
    let lists = WatchStream::new(endpoint.watch.subscribe()).filter_map(move |live| {
        let judge = Judge::system();
        let list: Vec<Entry> = filter
            .apply(&live)
            .filter(|e| judge.is_live(e))
            .cloned()
            .collect();
        let event = match sent.as_ref() == Some(&list) {
            true => None,
            false => {
                let event = Event::default()
                    .event("servers")
                    .data(model::to_json(&list));
                sent = Some(list);
                Some(Ok(event))
            }
        };
        std::future::ready(event)
    });
    let stream = stream::once(std::future::ready(Ok(Event::default().retry(RETRY))))
        .chain(lists)
        .take_until(async move { shutdown.requested().await });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}
