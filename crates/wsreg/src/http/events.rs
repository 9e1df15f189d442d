//! `GET /api/registry/events[?project=P&kind=K]`: the live list as Server-Sent Events.
//!
//! The stream sends `retry: 1000` (EventSource reconnects after a second, not the
//! default three), then an event `servers` holding the canonical document at once and
//! after every change of the *filtered* list — a change elsewhere in the registry sends
//! nothing — and a keep-alive comment after 15 s of silence, so proxies and idle timers
//! keep it open. The stream ends when the server shuts down.
//!
//! Changes come from the process's one [`LiveWatch`](crate::LiveWatch) through the health
//! layer ([`crate::health`]), whose view is built once per change of the list or of a
//! server's health. While a stream is open, its [`Subscription`] keeps the servers probed. An unfiltered stream sends that answer's ready-made frame —
//! the same bytes, shared (`Bytes`), to every subscriber — so one change to 1,000
//! subscribers costs one serialisation, not 1,000. The stream is written by hand rather
//! than through axum's `Sse`, whose events copy their data per subscriber.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::Endpoint;
use super::error::ApiError;
use crate::health::{Subscription, View};
use crate::registry::Filter;
use crate::shutdown::Shutdown;

/// How long an idle stream waits before a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The reconnection delay the stream asks EventSource for.
pub const RETRY: Duration = Duration::from_secs(1);

/// An SSE `servers` event holding `json`.
fn servers_frame(json: &str) -> String {
    let mut frame = String::with_capacity(json.len() + 32);
    frame.push_str("event: servers\ndata: ");
    frame.push_str(json);
    frame.push_str("\n\n");
    frame
}

/// One subscriber's stream.
struct Subscriber {
    answers: tokio::sync::watch::Receiver<Arc<View>>,
    /// Keeps the servers probed while this stream is open.
    _probing: Subscription,
    filter: Filter,
    /// The filtered list last sent, as printed (unused for an unfiltered stream).
    sent: Option<Vec<Arc<str>>>,
    first: bool,
    shutdown: Shutdown,
}

impl Subscriber {
    /// The next frame to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        if std::mem::take(&mut self.first) {
            return Some(Bytes::from(format!("retry: {}\n\n", RETRY.as_millis())));
        }
        if self.sent.is_none() {
            // The current answer first: it is unseen on connect.
            let answer = self.answers.borrow_and_update().clone();
            if let Some(frame) = self.frame(&answer) {
                return Some(frame);
            }
        }
        loop {
            tokio::select! {
                changed = self.answers.changed() => {
                    changed.ok()?;
                    let answer = self.answers.borrow_and_update().clone();
                    if let Some(frame) = self.frame(&answer) {
                        return Some(frame);
                    }
                }
                () = tokio::time::sleep(KEEP_ALIVE) => return Some(Bytes::from_static(b": keep-alive\n\n")),
                () = self.shutdown.requested() => return None,
            }
        }
    }

    /// The frame for this answer, or `None` when this subscriber's list did not change.
    fn frame(&mut self, answer: &View) -> Option<Bytes> {
        if self.filter == Filter::default() {
            self.sent = Some(Vec::new());
            return Some(Bytes::from_owner(super::ArcStr(
                answer.framed(servers_frame),
            )));
        }
        let list = answer.selected(&self.filter);
        if self.sent.as_ref() == Some(&list) {
            return None;
        }
        let json = crate::registry::model::document_from_parts(list.iter().map(|p| &**p));
        let frame = servers_frame(&json).into();
        self.sent = Some(list);
        Some(frame)
    }
}

/// The handler.
pub async fn events(
    State(endpoint): State<Endpoint>,
    shutdown: Shutdown,
    query: Result<Query<crate::registry::Filter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let filter = super::filter(query)?;
    let (answers, probing) = endpoint.health.subscribe();
    let subscriber = Subscriber {
        answers,
        _probing: probing,
        filter,
        sent: None,
        first: true,
        shutdown,
    };
    let body = stream::unfold(subscriber, |mut s| async move {
        let frame = s.next().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), s))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
