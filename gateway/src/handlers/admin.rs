//! Admin routes (admin listener, admin role): order refunds and the seat audit log.

use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::Rejection;

use super::events::event_id;
use super::json_status;
use super::reservations::detached;
use crate::auth::{Principal, Role};
use crate::errors::ApiError;
use crate::App;

/// `POST /admin/orders/{id}/refund`: refunds the order through the provider (idempotently) and
/// returns its seats to sale.
pub async fn refund(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    principal.require(Role::Admin)?;
    let not_found = || ApiError::not_found("unknown_order", format!("no order {raw:?}"));
    let order = Uuid::parse_str(&raw).map_err(|_| not_found())?;
    let actor = format!("admin:{}", principal.user);
    let result = detached(async move {
        orders::refund::refund_order(&app.services(), order, &actor)
            .await
            .map_err(|e| ApiError::unavailable("refund", e))
    })
    .await??;
    match result {
        orders::refund::RefundResult::Refunded { seats } => Ok(json_status(
            &serde_json::json!({"order_id": order, "status": "refunded", "seats_released": seats}),
            StatusCode::OK,
        )),
        orders::refund::RefundResult::AlreadyRefunded => Ok(json_status(
            &serde_json::json!({"order_id": order, "status": "refunded", "seats_released": []}),
            StatusCode::OK,
        )),
        orders::refund::RefundResult::NotFound => Err(not_found().into()),
        orders::refund::RefundResult::NotCaptured => Err(ApiError::conflict(
            "payment_not_captured",
            "the provider holds no captured payment for this order",
        )
        .into()),
    }
}

/// `GET /admin/events/{id}/audit` query. An empty parameter is an absent one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    seat: Option<String>,
    limit: Option<String>,
}

/// `GET /admin/events/{id}/audit?seat=&limit=`: the event's seat changes, newest first.
pub async fn audit(
    raw: String,
    query: AuditQuery,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    principal.require(Role::Admin)?;
    let event = event_id(&raw)?;
    let limit = match query.limit.as_deref().filter(|l| !l.is_empty()) {
        None => 100,
        Some(raw) => raw.parse::<i64>().map_err(|_| {
            ApiError::client(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "limit must be an integer",
            )
        })?,
    };
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::invalid("invalid_field", "limit must be 1 to 1000")
                .with_details(serde_json::json!({"field": "limit"}))
                .into(),
        );
    }
    let seat = match query.seat.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            coordinator::SeatId::parse(s)
                .map_err(|e| {
                    ApiError::invalid("invalid_field", format!("seat: {e}"))
                        .with_details(serde_json::json!({"field": "seat"}))
                })?
                .to_string(),
        ),
        None => None,
    };
    type Row = (
        String,
        String,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
        String,
        Option<String>,
        Option<Uuid>,
        Option<Uuid>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT seat_id, action::text, at, recorded_at, actor, hold_id, order_id, ticket_id FROM seat_audit
         WHERE event_id = $1 AND ($2::text IS NULL OR seat_id = $2)
         ORDER BY at DESC, id DESC LIMIT $3",
    )
    .bind(event.as_str())
    .bind(&seat)
    .bind(limit)
    .fetch_all(&app.db)
    .await
    .map_err(ApiError::from)?;
    let entries: Vec<serde_json::Value> = rows
        .into_iter()
        .map(
            |(seat_id, action, at, recorded_at, actor, hold_id, order_id, ticket_id)| {
                serde_json::json!({"seat_id": seat_id, "action": action, "at": at,
                "recorded_at": recorded_at, "actor": actor,
                "hold_id": hold_id.filter(|h| !h.is_empty()), "order_id": order_id,
                "ticket_id": ticket_id})
            },
        )
        .collect();
    Ok(json_status(
        &serde_json::json!({"event_id": event, "seat": seat, "entries": entries}),
        StatusCode::OK,
    ))
}
