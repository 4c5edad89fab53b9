//! Browsing: the event list, one event, its seat map and availability.

use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use coordinator::EventId;
use serde::Deserialize;
use warp::http::StatusCode;
use warp::Rejection;

use super::{cacheable, cacheable_json};
use crate::cache::SEATMAP_MAX_AGE;
use crate::errors::ApiError;
use crate::App;

/// Default and largest page sizes of the event list.
pub const DEFAULT_PAGE: i64 = 20;
/// Largest page size.
pub const MAX_PAGE: i64 = 100;
/// The event list may be cached this long (design document §9: catalog 30 s).
pub const LIST_MAX_AGE_SECS: u64 = 30;

/// Query of `GET /events` (all optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    venue: Option<String>,
    category: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

impl ListQuery {
    /// An empty parameter (`cursor=`, as a client that fills a template sends for the first
    /// page) is an absent one.
    fn without_empty_values(self) -> Self {
        let present = |v: Option<String>| v.filter(|v| !v.is_empty());
        Self {
            from: present(self.from),
            to: present(self.to),
            q: present(self.q),
            venue: present(self.venue),
            category: present(self.category),
            cursor: present(self.cursor),
            limit: present(self.limit),
        }
    }
}

fn bad_query(message: impl Into<String>) -> ApiError {
    ApiError::client(StatusCode::BAD_REQUEST, "invalid_query", message)
}

fn parse_time(name: &str, raw: Option<&String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|r| {
        DateTime::parse_from_rfc3339(r)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                bad_query(format!(
                    "{name} must be an RFC 3339 time such as 2026-12-01T20:00:00Z"
                ))
            })
    })
    .transpose()
}

fn encode_cursor(after: &(DateTime<Utc>, String)) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        after.0.to_rfc3339(),
        after.1
    ))
}

fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    let bad = || bad_query("cursor is not one this API issued");
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (at, id) = text.split_once('|').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(at)
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    Ok((at, id.to_owned()))
}

/// `GET /events`.
pub async fn list(
    query: HashMap<String, String>,
    if_none_match: Option<String>,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    // Unknown parameters are refused rather than ignored: a typo must not silently widen a search.
    let query = serde_json::to_value(&query)
        .and_then(serde_json::from_value::<ListQuery>)
        .map_err(|e| bad_query(e.to_string()))?
        .without_empty_values();
    let limit = match &query.limit {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| bad_query(format!("limit must be 1 to {MAX_PAGE}")))?,
    };
    let filter = catalog::events::EventFilter {
        from: parse_time("from", query.from.as_ref())?,
        to: parse_time("to", query.to.as_ref())?,
        q: query.q,
        venue: query.venue,
        category: query.category,
        after: query.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    };
    let page = catalog::events::list_events(&app.db, &filter)
        .await
        .map_err(ApiError::from)?;
    let body = serde_json::json!({
        "events": page.events,
        "next_cursor": page.next.as_ref().map(encode_cursor),
    });
    Ok(cacheable_json(&body, LIST_MAX_AGE_SECS, if_none_match))
}

/// Parses an event id from the path; a malformed one cannot exist: 404.
pub fn event_id(raw: &str) -> Result<EventId, ApiError> {
    EventId::parse(raw)
        .map_err(|_| ApiError::not_found("unknown_event", format!("no event {raw:?}")))
}

/// The event if buyers may see it (drafts are invisible).
pub async fn visible_event(
    app: &App,
    raw: &str,
) -> Result<(EventId, std::sync::Arc<catalog::events::Event>), ApiError> {
    let id = event_id(raw)?;
    match app.caches.event(app, &id).await? {
        Some(e) if e.status != catalog::events::EventStatus::Draft => Ok((id, e)),
        _ => Err(ApiError::not_found(
            "unknown_event",
            format!("no event {id}"),
        )),
    }
}

/// `GET /events/{id}`.
pub async fn get(
    raw: String,
    if_none_match: Option<String>,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let (_, event) = visible_event(&app, &raw).await?;
    Ok(cacheable_json(&*event, LIST_MAX_AGE_SECS, if_none_match))
}

/// The answer for a visible event whose inventory Redis does not have ([`ApiError::no_inventory`]).
pub(crate) async fn no_inventory(app: &App, event: &catalog::events::Event) -> ApiError {
    match app.caches.venue(app, &event.venue_id).await {
        Ok(layout) => ApiError::no_inventory(event, !layout.seats.is_empty()),
        Err(e) => e,
    }
}

/// `GET /events/{id}/seatmap`: layout and availability, from the per-process cache.
pub async fn seatmap(
    raw: String,
    if_none_match: Option<String>,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let (id, event) = visible_event(&app, &raw).await?;
    // The catalog has the event (visible_event); without a map its inventory is not in Redis.
    let Some(map) = app.caches.seatmap(&app, &event, &id, false).await? else {
        return Err(no_inventory(&app, &event).await.into());
    };
    Ok(cacheable(
        map.body.clone(),
        &map.etag,
        SEATMAP_MAX_AGE.as_secs(),
        if_none_match,
    ))
}

/// `GET /events/{id}/availability`: counts per section, from a Redis read that began after the
/// request arrived (concurrent requests share one read: [`crate::cache::Caches::availability`]).
pub async fn availability(raw: String, app: App) -> Result<warp::reply::Response, Rejection> {
    let (id, event) = visible_event(&app, &raw).await?;
    let Some(body) = app.caches.availability(&app, &id).await? else {
        return Err(no_inventory(&app, &event).await.into());
    };
    Ok(cacheable_json(&*body, 1, None))
}
