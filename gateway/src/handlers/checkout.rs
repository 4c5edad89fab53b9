//! Checkout: `POST /reservations/{id}/commit` and `GET /orders/{id}`.
//!
//! The order of steps is what keeps the invariants: the hold is pinned (it cannot expire or be
//! cancelled while the payment is in flight), the provider is charged with an idempotency key
//! derived from the hold and the client's key (a replay charges once), the order and its seats
//! are written in one Postgres transaction through the live-sale unique index (the last guard
//! against overselling), and only then is 200 returned and Redis told the seats are sold. A
//! payment that succeeds for seats Postgres refuses is refunded at once: never money without
//! seats. An outcome not known in time is a 202; replaying the same request resolves it.

use std::time::Duration;

use coordinator::extend::ExtendOutcome;
use coordinator::hold::ReadOutcome;
use coordinator::{Caller, HoldId, HoldState, UserId};
use payments::{ChargeOutcome, ChargeRequest, PaymentError};
use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::Rejection;

use super::json_status;
use super::reservations::{detached, hold_id, quoted_total};
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::App;

/// How long checkout waits for the payment provider before answering 202.
pub const PAYMENT_DEADLINE: Duration = Duration::from_secs(10);
/// Longest idempotency key and payment token (Stripe's key limit).
pub const MAX_KEY_LEN: usize = 255;

/// Orders are one per hold: their id is derived from it.
const ORDER_NAMESPACE: Uuid = Uuid::from_u128(0x3c1d_9e2a_7b4f_4d81_a0e6_5f2b_8c7d_1e90);

/// `POST /reservations/{id}/commit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    idempotency_key: String,
    payment_token: String,
}

fn order_id(hold: &HoldId) -> Uuid {
    Uuid::new_v5(&ORDER_NAMESPACE, hold.to_string().as_bytes())
}

fn paid(order: Uuid, seats: &[String], total_cents: i64, currency: &str) -> serde_json::Value {
    serde_json::json!({
        "order_id": order, "status": "paid", "seats": seats,
        "total_amount": total_cents as f64 / 100.0, "currency": currency,
    })
}

fn pending(order: Uuid, status: &str) -> (StatusCode, serde_json::Value) {
    (
        StatusCode::ACCEPTED,
        serde_json::json!({"order_id": order, "status": status,
            "message": "the payment outcome is not known yet; replay the same request to resolve it"}),
    )
}

/// The order written for a hold, if any: (client key, seats, total, currency, user).
async fn existing_order(
    app: &App,
    order: Uuid,
) -> Result<Option<(String, Vec<String>, i64, String, String)>, ApiError> {
    let row: Option<(String, i64, String, String)> = sqlx::query_as(
        "SELECT idempotency_key, total_cents, currency, user_id FROM orders WHERE id = $1",
    )
    .bind(order)
    .fetch_optional(&app.db)
    .await?;
    let Some((key, total, currency, user)) = row else {
        return Ok(None);
    };
    let seats: Vec<(String,)> =
        sqlx::query_as("SELECT seat_id FROM sold_seats WHERE order_id = $1 ORDER BY seat_id")
            .bind(order)
            .fetch_all(&app.db)
            .await?;
    Ok(Some((
        key,
        seats.into_iter().map(|(s,)| s).collect(),
        total,
        currency,
        user,
    )))
}

/// `POST /reservations/{id}/commit`.
pub async fn commit(
    raw: String,
    principal: Principal,
    body: CommitBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let id = hold_id(&raw)?;
    for (field, value) in [
        ("idempotency_key", &body.idempotency_key),
        ("payment_token", &body.payment_token),
    ] {
        if value.is_empty() || value.len() > MAX_KEY_LEN {
            return Err(ApiError::invalid(
                "invalid_field",
                format!("{field} must be 1 to {MAX_KEY_LEN} characters"),
            )
            .into());
        }
    }
    // Once money may move, the request runs to its end even if the client goes away.
    let user = principal.user.clone();
    let (status, body) =
        detached(async move { commit_inner(&app, &user, id, body).await }).await??;
    Ok(json_status(&body, status))
}

async fn commit_inner(
    app: &App,
    user: &UserId,
    id: HoldId,
    body: CommitBody,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let order = order_id(&id);
    // A replay: the order exists.
    if let Some((key, seats, total, currency, owner)) = existing_order(app, order).await? {
        if owner != user.as_str() {
            return Err(ApiError::not_found("unknown_hold", format!("no hold {id}")));
        }
        if key != body.idempotency_key {
            return Err(ApiError::conflict(
                "idempotency_conflict",
                "this hold was committed with another idempotency_key",
            ));
        }
        return Ok((StatusCode::OK, paid(order, &seats, total, &currency)));
    }
    let hold = match app.coordinator.read_hold(&id, Caller::User(user)).await? {
        ReadOutcome::Found(hold) => hold,
        _ => return Err(ApiError::not_found("unknown_hold", format!("no hold {id}"))),
    };
    match hold.state {
        HoldState::Held | HoldState::Pinned => {}
        HoldState::Expired | HoldState::Released => {
            return Err(ApiError::client(
                StatusCode::GONE,
                "hold_expired",
                "the hold has expired or was cancelled",
            ))
        }
        HoldState::Pending | HoldState::Sold => {
            return Err(ApiError::conflict(
                "request_in_progress",
                "this hold is being placed or committed; retry shortly",
            ))
        }
    }
    let pin_for = Duration::from_secs(app.coordinator.limits().max_pin_secs);
    match app.coordinator.pin(&id, pin_for).await? {
        ExtendOutcome::Extended(_) => {}
        ExtendOutcome::NotFound | ExtendOutcome::NotOwner => {
            return Err(ApiError::not_found("unknown_hold", format!("no hold {id}")))
        }
        ExtendOutcome::Invalid(e) => return Err(ApiError::unavailable("coordinator", e)),
        // The hold moved on under us: a concurrent commit may have just sold it (then its
        // order answers), otherwise it expired or is being committed right now.
        other => {
            if existing_order(app, order).await?.is_some() {
                return Box::pin(commit_inner(app, user, id, body)).await;
            }
            return Err(match other {
                ExtendOutcome::WrongState(_) => ApiError::conflict(
                    "request_in_progress",
                    "this hold is being committed; retry shortly",
                ),
                _ => ApiError::client(StatusCode::GONE, "hold_expired", "the hold has expired"),
            });
        }
    }
    let (total_cents, currency) = quoted_total(app, &hold).await?;
    let charge = ChargeRequest {
        idempotency_key: format!("{id}:{}", body.idempotency_key),
        amount_cents: total_cents,
        currency: currency.clone(),
        token: body.payment_token.clone(),
    };
    let payment_id = match tokio::time::timeout(PAYMENT_DEADLINE, app.payments.charge(&charge))
        .await
    {
        Err(_) | Ok(Err(PaymentError::Timeout)) => return Ok(pending(order, "pending")),
        Ok(Err(PaymentError::IdempotencyMismatch)) => {
            return Err(ApiError::conflict(
                "idempotency_conflict",
                "this idempotency_key was used with another payment",
            ))
        }
        Ok(Err(e)) => return Err(ApiError::unavailable("payment provider", e)),
        Ok(Ok(ChargeOutcome::Declined { reason, .. })) => {
            // The hold stays, unpinned: the buyer may try another card, or cancel, until
            // it expires.
            if let Err(e) = app.coordinator.unpin(&id).await {
                tracing::warn!(hold = %id, error = %e, "declined payment: hold stays pinned until the pin ends");
            }
            return Err(ApiError::client(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                "the payment was declined",
            )
            .with_details(serde_json::json!({ "reason": reason })));
        }
        Ok(Ok(ChargeOutcome::RequiresAction { .. })) => {
            return Ok(pending(order, "requires_action"))
        }
        Ok(Ok(ChargeOutcome::Succeeded { payment_id })) => payment_id,
    };

    // The durable write: order and seats in one transaction, through the live-sale index.
    let seats: Vec<String> = hold.seats.iter().map(ToString::to_string).collect();
    let written: Result<(), sqlx::Error> = async {
        let mut tx = app.db.begin().await?;
        sqlx::query(
            "INSERT INTO orders (id, event_id, hold_id, user_id, status, total_cents, currency, payment_ref, idempotency_key)
             VALUES ($1, $2, $3, $4, 'paid', $5, $6, $7, $8)",
        )
        .bind(order)
        .bind(hold.event.as_str())
        .bind(Uuid::parse_str(&id.to_string()).unwrap_or_default())
        .bind(user.as_str())
        .bind(total_cents)
        .bind(&currency)
        .bind(&payment_id)
        .bind(&body.idempotency_key)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO sold_seats (order_id, event_id, seat_id) SELECT $1, $2, * FROM UNNEST($3::text[])")
            .bind(order)
            .bind(hold.event.as_str())
            .bind(&seats)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
    .await;
    match written {
        Ok(()) => {}
        Err(e) => {
            let constraint = e
                .as_database_error()
                .and_then(|d| d.constraint().map(str::to_owned));
            match constraint.as_deref() {
                Some("sold_seats_live_unique") => {
                    // Postgres says a seat is already sold (Redis had lost it): no order, and the
                    // money goes back.
                    app.payments
                        .refund(&payment_id)
                        .map_err(|e| ApiError::unavailable("payment provider", e))?;
                    tracing::error!(hold = %id, "oversell refused by Postgres; payment refunded");
                    return Err(ApiError::conflict(
                        "seats_unavailable",
                        "a seat of this hold was already sold; the payment was refunded",
                    ));
                }
                // A concurrent commit of this hold wrote the order first. If it was paid with
                // another payment (another idempotency key), ours took money for nothing:
                // refund it before answering as that order's replay (or its conflict).
                Some("orders_hold_unique")
                | Some("orders_pkey")
                | Some("orders_payment_ref_unique") => {
                    let winner: Option<(String,)> =
                        sqlx::query_as("SELECT payment_ref FROM orders WHERE id = $1")
                            .bind(order)
                            .fetch_optional(&app.db)
                            .await?;
                    if winner
                        .as_ref()
                        .is_some_and(|(paid_with,)| *paid_with != payment_id)
                    {
                        app.payments
                            .refund(&payment_id)
                            .map_err(|e| ApiError::unavailable("payment provider", e))?;
                        tracing::warn!(hold = %id, "concurrent commit with another key lost; its payment refunded");
                    }
                    return Box::pin(commit_inner(app, user, id, body)).await;
                }
                // Postgres did not answer: the outcome is not known (the commit may have landed).
                _ => {
                    tracing::error!(hold = %id, error = %e, "order write failed after a captured payment");
                    return Ok(pending(order, "pending"));
                }
            }
        }
    }
    // Postgres is the truth; Redis follows (the reconciler repairs it if this fails).
    match app.coordinator.mark_sold(&id).await {
        Ok(coordinator::sell::SellOutcome::Sold { .. }) => {}
        Ok(other) => tracing::warn!(hold = %id, ?other, "order written but Redis not marked sold"),
        Err(e) => tracing::warn!(hold = %id, error = %e, "order written but Redis not marked sold"),
    }
    Ok((StatusCode::OK, paid(order, &seats, total_cents, &currency)))
}

/// `GET /orders/{id}`: the buyer's own order.
pub async fn get_order(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let not_found = || ApiError::not_found("unknown_order", format!("no order {raw:?}"));
    let order = Uuid::parse_str(&raw).map_err(|_| not_found())?;
    match existing_order(&app, order).await? {
        Some((_, seats, total, currency, owner)) if owner == principal.user.as_str() => Ok(
            json_status(&paid(order, &seats, total, &currency), StatusCode::OK),
        ),
        _ => Err(not_found().into()),
    }
}
