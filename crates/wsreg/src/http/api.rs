//! `GET /api/registry[?project=P&kind=K]`: the live servers as the canonical document
//! `{"version":1,"servers":[…]}`.
//!
//! Each request reads the file and judges liveness then and there (not the watch's
//! cached list), so an answer never lists a server that died or misses one that
//! registered a moment before. A registry that cannot be read answers 500.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Endpoint;
use super::error::ApiError;
use crate::registry::{Filter, model};

/// The handler.
pub async fn registry(
    State(endpoint): State<Endpoint>,
    query: Result<Query<Filter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let filter = super::filter(query)?;
    let store = endpoint.store.clone();
    let live = tokio::task::spawn_blocking(move || store.live())
        .await
        .map_err(|e| {
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        })??;
    let body = model::to_json(filter.apply(&live));
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
