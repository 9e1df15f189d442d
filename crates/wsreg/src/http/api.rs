//! `GET /api/registry[?project=P&kind=K]`: the live servers as the canonical document
//! `{"version":1,"servers":[…]}`.
//!
//! The answer is the health layer's view of the watch's list, built once per change and
//! shared by every request: the unfiltered one is the same bytes for everybody, with no
//! copy. It is exact at the time of the request
//! ([`LiveWatch::exact`](crate::LiveWatch::exact)): a change still being taken in is
//! waited for, so a server that exited or registered before the request is never shown
//! the wrong way.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Endpoint;
use super::error::ApiError;
use crate::registry::Filter;

/// The handler.
pub async fn registry(
    State(endpoint): State<Endpoint>,
    query: Result<Query<Filter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let filter = super::filter(query)?;
    let view = endpoint.health.exact().await;
    let body: Bytes = match filter == Filter::default() {
        true => Bytes::from_owner(super::ArcStr(view.json.clone())),
        false => view.filtered_json(&filter).into(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
