//! Route handlers: parse at the edge, call the catalog or the coordinator, map every outcome to a
//! status. One module per area.

pub mod admin;
pub mod checkins;
pub mod checkout;
pub mod events;
pub mod organizer;
pub mod payments;
pub mod queue;
pub mod reservations;
pub mod stream;
pub mod tickets;
pub mod waitlist;

use warp::http::{HeaderValue, StatusCode};
use warp::{Rejection, Reply};

use crate::cache::etag_of;
use crate::errors::ApiError;
use crate::App;

/// Readiness: 200 when Redis and Postgres both answer, else 503 naming the one that does not.
pub async fn readyz(app: App) -> Result<warp::reply::Response, Rejection> {
    app.coordinator
        .ping()
        .await
        .map_err(|e| ApiError::unavailable("redis", e))?;
    sqlx::query("SELECT 1")
        .execute(&app.db)
        .await
        .map_err(|e| ApiError::unavailable("postgres", e))?;
    Ok(warp::reply::json(&serde_json::json!({"status": "ready"})).into_response())
}

/// A cacheable JSON response: `Cache-Control: max-age`, a strong ETag, and 304 when the
/// client's `If-None-Match` matches.
pub fn cacheable(
    body: bytes::Bytes,
    etag: &str,
    max_age_secs: u64,
    if_none_match: Option<String>,
) -> warp::reply::Response {
    let matches = if_none_match.as_deref().is_some_and(|inm| {
        // Weak comparison (RFC 9110 §13.1.2): a proxy may have turned the tag into W/"...".
        inm.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    });
    let mut response = if matches {
        warp::reply::with_status(warp::reply(), StatusCode::NOT_MODIFIED).into_response()
    } else {
        let mut r = warp::reply::Response::new(body.into());
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert("etag", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age_secs}")) {
        headers.insert("cache-control", v);
    }
    response
}

/// [`cacheable`] for a value serialised here.
pub fn cacheable_json(
    value: &impl serde::Serialize,
    max_age_secs: u64,
    if_none_match: Option<String>,
) -> warp::reply::Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let etag = etag_of(&body);
    cacheable(body.into(), &etag, max_age_secs, if_none_match)
}

/// A JSON reply with a status.
pub fn json_status(value: &impl serde::Serialize, status: StatusCode) -> warp::reply::Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}
