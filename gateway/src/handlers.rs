//! Route handlers: parse at the edge, call the coordinator or the catalog, map outcomes.

use coordinator::EventId;
use warp::http::StatusCode;
use warp::{Rejection, Reply};

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

/// Per-section availability of an open event.
pub async fn availability(event: String, app: App) -> Result<warp::reply::Response, Rejection> {
    let event = EventId::parse(&event).map_err(|e| {
        ApiError::client(StatusCode::BAD_REQUEST, "invalid_event_id", e.to_string())
    })?;
    let Some(sections) = app
        .coordinator
        .availability(&event)
        .await
        .map_err(ApiError::from)?
    else {
        return Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "unknown_event",
            format!("event {event} is not on sale"),
        )
        .into());
    };
    let totals = sections.iter().fold([0u64; 5], |t, s| {
        [
            t[0] + s.capacity,
            t[1] + s.free,
            t[2] + s.held,
            t[3] + s.sold,
            t[4] + s.blocked,
        ]
    });
    let body = serde_json::json!({
        "event_id": event,
        "capacity": totals[0], "free": totals[1], "held": totals[2], "sold": totals[3], "blocked": totals[4],
        "sections": sections,
    });
    Ok(
        warp::reply::with_header(warp::reply::json(&body), "cache-control", "max-age=5")
            .into_response(),
    )
}
