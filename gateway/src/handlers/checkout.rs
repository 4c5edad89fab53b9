//! Checkout: `POST /reservations/{id}/commit`, `GET /orders/{id}`, `POST /webhooks/payments`.
//!
//! The commit protocol itself (claim, pin, charge, durable write, verdict) is
//! [`orders::checkout`]; this module parses, calls it and maps its typed outcome to HTTP.

use coordinator::{EventId, Hold, HoldId, UserId};
use orders::attempts::OrderView;
use orders::checkout::{Commit, CommitRequest, Refusal};
use orders::settle::EventOutcome;
use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::Rejection;

use super::json_status;
use super::reservations::{detached, hold_id, quoted_total};
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::App;

/// Longest payment token (Stripe's limit for ids and keys).
pub const MAX_KEY_LEN: usize = 255;
/// Longest client idempotency key: the provider's key is `{hold}:{client key}` (37 + 200),
/// which must stay within Stripe's 255.
pub const MAX_CLIENT_KEY_LEN: usize = 200;

/// `POST /reservations/{id}/commit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    idempotency_key: String,
    payment_token: String,
}

fn pending(order: Uuid, status: &str, payment: Option<&str>) -> (StatusCode, serde_json::Value) {
    (
        StatusCode::ACCEPTED,
        serde_json::json!({"order_id": order, "status": status, "payment_id": payment,
            "message": "the outcome is not known yet; GET /orders/{order_id} or replay the same request"}),
    )
}

fn forbidden() -> ApiError {
    ApiError::client(
        StatusCode::FORBIDDEN,
        "not_your_hold",
        "this hold belongs to another buyer",
    )
}

async fn existing_order(app: &App, order: Uuid) -> Result<Option<OrderView>, ApiError> {
    Ok(orders::attempts::order(&app.db, order).await?)
}

/// `POST /reservations/{id}/commit`.
pub async fn commit(
    raw: String,
    principal: Principal,
    body: CommitBody,
    arrived: Option<crate::listener::Arrived>,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let id = hold_id(&raw)?;
    for (field, value, max) in [
        ("idempotency_key", &body.idempotency_key, MAX_CLIENT_KEY_LEN),
        ("payment_token", &body.payment_token, MAX_KEY_LEN),
    ] {
        // Printable ASCII: both travel in HTTP headers to the provider.
        if value.is_empty()
            || value.len() > max
            || !value.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return Err(ApiError::invalid(
                "invalid_field",
                format!("{field} must be 1 to {max} printable ASCII characters"),
            )
            .with_details(serde_json::json!({ "field": field }))
            .into());
        }
    }
    // Once money may move, the request runs to its end even if the client goes away.
    let request = CommitRequest {
        user: principal.user.clone(),
        hold: id,
        key: body.idempotency_key,
        token: body.payment_token,
    };
    let (status, body) = detached(async move {
        // Timed to its end, however it ends: the waiting rooms are paced by it.
        // From its arrival: a wait in line for a place is part of what the buyer saw.
        let _timed = match arrived {
            Some(arrived) => app.pacer.time_from(arrived.0),
            None => app.pacer.time(),
        };
        let price = |hold: Hold| {
            let app = app.clone();
            async move { quoted_total(&app, &hold).await }
        };
        let outcome = app.checkout_flow().commit(&request, price).await?;
        answer(&app, &request, outcome).await
    })
    .await??;
    Ok(json_status(&body, status))
}

/// The HTTP answer for a commit's outcome; a fresh order also ends the buyer's turn in the
/// event's waiting room.
async fn answer(
    app: &App,
    request: &CommitRequest,
    outcome: Commit,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let (user, hold) = (&request.user, request.hold);
    match outcome {
        Commit::Paid {
            order,
            view,
            event,
            fresh,
        } => {
            if let (true, Some(event)) = (fresh, event) {
                app.metrics.orders_total.with_label_values(&["paid"]).inc();
                checkout_done(app, &event, user).await;
            }
            Ok((StatusCode::OK, view.json(order)))
        }
        Commit::Pending {
            order,
            status,
            payment,
        } => Ok(pending(order, status.as_str(), payment.as_deref())),
        Commit::Refused(refusal) => {
            if refusal == Refusal::Oversold {
                app.metrics
                    .orders_total
                    .with_label_values(&["oversold"])
                    .inc();
            }
            Err(refused(refusal, hold))
        }
    }
}

/// A finished checkout ends the buyer's turn in a waiting room (where admission is tied to the
/// inventory, the next buyer gets in sooner). An event without a room (as the event cache has
/// it; a buyer of an open sale has no ticket anyway) is not asked.
async fn checkout_done(app: &App, event: &EventId, user: &UserId) {
    let roomless = matches!(
        app.caches.event(app, event).await,
        Ok(Some(e)) if e.admission_mode == coordinator::queue::AdmissionMode::Open
    );
    if !roomless {
        let pace = app.pacer.pace();
        if let Err(e) = app.coordinator.queue_done(event, user, pace).await {
            tracing::warn!(error = %e, "waiting room not told of a finished checkout");
        }
    }
}

/// 409 for an idempotency key that does not match what it was first used for.
fn key_conflict(message: &str) -> ApiError {
    ApiError::conflict("idempotency_conflict", message)
}

/// A refused commit of `hold` as the one error shape.
fn refused(refusal: Refusal, hold: HoldId) -> ApiError {
    let gone = |message: &str| ApiError::client(StatusCode::GONE, "hold_expired", message);
    match refusal {
        Refusal::NotYourHold => forbidden(),
        Refusal::UnknownHold => ApiError::not_found("unknown_hold", format!("no hold {hold}")),
        Refusal::HoldGone => gone("the hold has expired or was cancelled"),
        Refusal::HoldGoneRefunded => {
            gone("the hold expired before the order could be written; the payment was refunded")
        }
        Refusal::InProgress => ApiError::conflict(
            "request_in_progress",
            "this hold is being placed or committed; retry shortly",
        ),
        Refusal::CommittedWithOtherKey { refunded } => key_conflict(if refunded {
            "this hold was committed with another idempotency_key; this payment was refunded"
        } else {
            "this hold was committed with another idempotency_key"
        }),
        Refusal::KeyUsedElsewhere => {
            key_conflict("this idempotency_key was already used for another hold or payment")
        }
        Refusal::KeyUsedWithOtherPayment => {
            key_conflict("this idempotency_key was used with another payment")
        }
        Refusal::NothingToCharge => ApiError::invalid(
            "nothing_to_charge",
            "this hold costs nothing; checkout sells only paid seats",
        ),
        Refusal::TotalOutOfRange => ApiError::invalid(
            "total_out_of_range",
            "this hold costs more than one payment may be; hold fewer seats",
        )
        .with_details(serde_json::json!({ "max_total_cents": payments::MAX_CHARGE_CENTS })),
        Refusal::Declined { reason } => ApiError::client(
            StatusCode::PAYMENT_REQUIRED,
            "payment_declined",
            "the payment was declined; the hold stays until it expires",
        )
        .with_details(serde_json::json!({ "reason": reason })),
        Refusal::Oversold => ApiError::conflict(
            "seats_unavailable",
            "a seat of this hold was already sold; the payment was refunded",
        ),
    }
}

/// `GET /orders/{id}`: the buyer's own order, or what is known of a commit still in flight.
pub async fn get_order(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let not_found = || ApiError::not_found("unknown_order", format!("no order {raw:?}"));
    let order = Uuid::parse_str(&raw).map_err(|_| not_found())?;
    if let Some(row) = existing_order(&app, order).await? {
        if row.user != principal.user.as_str() {
            return Err(not_found().into());
        }
        return Ok(json_status(&row.json(order), StatusCode::OK));
    }
    let attempt = orders::attempts::latest(&app.db, order, &principal.user)
        .await
        .map_err(ApiError::from)?;
    let Some((status, payment)) = attempt else {
        return Err(not_found().into());
    };
    let shown = match status.as_str() {
        "charging" | "pending" | "paid" => "pending",
        other => other,
    };
    Ok(json_status(
        &serde_json::json!({"order_id": order, "status": shown, "payment_id": payment}),
        StatusCode::OK,
    ))
}

/// A webhook event's outcome as metrics and the answer name it.
fn event_label(outcome: EventOutcome) -> String {
    match outcome {
        EventOutcome::Duplicate => "duplicate".to_owned(),
        EventOutcome::CommitInFlight => "commit_in_flight".to_owned(),
        EventOutcome::UnknownPayment => "unknown_payment".to_owned(),
        EventOutcome::Settled(settled) => format!("{settled:?}").to_lowercase(),
    }
}

/// `POST /webhooks/payments`: the provider tells us a payment changed. The signature is checked
/// on the raw body; the payment is then fetched again from the provider and settled (so a
/// delivery that is late, repeated or out of order acts on the current state), and the event id
/// is recorded so a redelivery changes nothing. An event that arrives while the commit that
/// made the payment is still running is not recorded: a 409, and the provider delivers it
/// again, by when that commit has its order written, or gave up (202) or died, and the event
/// settles the payment. The captured event about a payment this gateway's own commit is
/// settling, or saw written, is answered from memory (`Checkout::on_webhook`).
pub async fn webhook(
    signature: Option<String>,
    raw: bytes::Bytes,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let Some(secret) = app.checkout.webhook_secret.as_ref() else {
        return Err(ApiError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_not_configured",
            "payments.webhook_secret is not set",
        )
        .into());
    };
    let bad_signature =
        |why: String| ApiError::client(StatusCode::BAD_REQUEST, "invalid_signature", why);
    let header =
        signature.ok_or_else(|| bad_signature("Stripe-Signature header missing".into()))?;
    let now = payments::now_unix();
    use secrecy::ExposeSecret;
    payments::signature::verify(
        secret.expose_secret().as_bytes(),
        &header,
        &raw,
        now,
        payments::signature::DEFAULT_TOLERANCE_SECS,
    )
    .map_err(|e| bad_signature(e.to_string()))?;
    let event = match payments::webhook::parse(&raw) {
        Ok(event) => event,
        // A genuine event about something else than a payment (the provider sends many kinds):
        // acknowledged and ignored, so the provider does not retry it forever.
        Err(_)
            if serde_json::from_slice::<serde_json::Value>(&raw)
                .is_ok_and(|v| v["id"].is_string() && v["type"].is_string()) =>
        {
            return Ok(json_status(
                &serde_json::json!({"received": true, "ignored": true}),
                StatusCode::OK,
            ));
        }
        Err(e) => {
            return Err(
                ApiError::client(StatusCode::BAD_REQUEST, "invalid_event", e.to_string()).into(),
            )
        }
    };
    let outcome = detached(async move {
        let outcome = app
            .checkout_flow()
            .on_webhook(&event)
            .await
            .map_err(|e| ApiError::unavailable("settlement", e))?;
        let label = event_label(outcome);
        app.metrics
            .webhooks_total
            .with_label_values(&[&label])
            .inc();
        Ok::<_, ApiError>((outcome, label))
    })
    .await??;
    match outcome {
        (EventOutcome::Duplicate, _) => Ok(json_status(
            &serde_json::json!({"received": true, "duplicate": true}),
            StatusCode::OK,
        )),
        // Not recorded: the provider delivers it again, by when that commit has its order
        // written, or gave up (202) or died, and the event settles the payment.
        (EventOutcome::CommitInFlight, _) => Err(ApiError::conflict(
            "commit_in_flight",
            "the commit that made this payment is still running; deliver the event again",
        )
        .into()),
        (_, label) => Ok(json_status(
            &serde_json::json!({"received": true, "outcome": label}),
            StatusCode::OK,
        )),
    }
}
