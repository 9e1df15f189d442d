//! `GET /api/registry[?project=P&kind=K]`: the live servers as the canonical document
//! `{"version":1,"servers":[…]}`.
//!
//! Each answer is exact at the time of the request (not the watch's list, which may be
//! up to a liveness tick old), so it never lists a server that died or misses one that
//! registered a moment before: the last answer is reused only while the file and every
//! listed process are provably unchanged
//! ([`AnswerCache`](crate::registry::AnswerCache)), else the file is read and
//! judged again. A registry that cannot be read answers 500.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Endpoint;
use super::error::ApiError;
use crate::registry::{Filter, model};

/// Shares the cached document with the response body without copying it.
struct ArcStr(std::sync::Arc<str>);

impl AsRef<[u8]> for ArcStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The handler.
pub async fn registry(
    State(endpoint): State<Endpoint>,
    query: Result<Query<Filter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let filter = super::filter(query)?;
    let answer = match endpoint.answers.fresh() {
        Some(answer) => answer,
        None => {
            let answers = endpoint.answers.clone();
            tokio::task::spawn_blocking(move || answers.refresh())
                .await
                .map_err(|e| {
                    ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                })??
        }
    };
    let body: Bytes = match filter == Filter::default() {
        true => Bytes::from_owner(ArcStr(answer.json.clone())),
        false => model::to_json(filter.apply(&answer.live)).into(),
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
