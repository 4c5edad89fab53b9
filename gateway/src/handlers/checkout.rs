//! Checkout: `POST /reservations/{id}/commit`, `GET /orders/{id}`, `POST /webhooks/payments`.
//!
//! The order of steps is what keeps the invariants:
//! 1. the buyer's idempotency key is claimed (`commit_attempts`): the same key for another hold
//!    or another payment token is a 409;
//! 2. the hold is pinned: it cannot expire or be cancelled while the payment is in flight;
//! 3. the provider is charged with a key derived from the hold and the client's key, with our
//!    order/hold/event in its metadata (a replay charges once; a payment alone says what it was
//!    for, so reconciliation can finish the job if this process dies);
//! 4. the sale goes on the commit queue, and the reconciler's durable writer writes it to
//!    Postgres in a batch through the live-sale unique index;
//! 5. **200 only once the writer reports the order committed** (or Postgres shows it). An outcome
//!    not known within a deadline is a 202; `GET /orders/{id}`, webhooks and reconciliation
//!    resolve it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use coordinator::extend::ExtendOutcome;
use coordinator::hold::ReadOutcome;
use coordinator::{Caller, HoldId, HoldState, UserId};
use orders::attempts::{OrderView, Status};
use orders::{meta, CommitJob, Done, Written};
use payments::{ChargeOutcome, ChargeRequest, PaymentError};
use serde::Deserialize;
use tokio::sync::oneshot;
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

/// Commits waiting for the durable writer, by order. The writer's announcements (pub/sub) wake
/// them; they also poll Postgres, so a lost announcement costs latency, never correctness.
#[derive(Default)]
pub struct Waiters {
    waiting: Mutex<HashMap<Uuid, Vec<oneshot::Sender<Done>>>>,
}

impl Waiters {
    fn register(&self, order: Uuid) -> oneshot::Receiver<Done> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.entry(order).or_default().push(tx);
        }
        rx
    }

    fn forget(&self, order: Uuid) {
        if let Ok(mut w) = self.waiting.lock() {
            if let Some(list) = w.get_mut(&order) {
                list.retain(|tx| !tx.is_closed());
                if list.is_empty() {
                    w.remove(&order);
                }
            }
        }
    }

    /// Delivers one writer announcement (JSON [`Done`]).
    pub fn notify(&self, payload: &str) {
        let Ok(done) = serde_json::from_str::<Done>(payload) else {
            return;
        };
        let list = self
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&done.order_id));
        for tx in list.into_iter().flatten() {
            let _ = tx.send(done.clone());
        }
    }
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
    let user = principal.user.clone();
    let (status, body) = detached(async move {
        // Timed to its end, however it ends: the waiting rooms are paced by it.
        let _timed = app.pacer.time();
        commit_inner(&app, &user, id, body, 0).await
    })
    .await??;
    Ok(json_status(&body, status))
}

async fn commit_inner(
    app: &App,
    user: &UserId,
    id: HoldId,
    body: CommitBody,
    depth: u8,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let order = orders::order_id(&id);
    let read = app.coordinator.read_hold(&id, Caller::User(user)).await?;
    // A replay: the order exists. Not for a hold still `held`: an order is only written for a
    // pinned hold, and a first commit (the common case) need not ask Postgres. (Were one there
    // anyway, the charge below is a replay of the provider's and the writer finds the order.)
    if !matches!(&read, ReadOutcome::Found(h) if h.state == HoldState::Held) {
        if let Some(row) = existing_order(app, order).await? {
            if row.user != user.as_str() {
                return Err(forbidden());
            }
            if row.key != body.idempotency_key {
                return Err(ApiError::conflict(
                    "idempotency_conflict",
                    "this hold was committed with another idempotency_key",
                ));
            }
            return Ok((StatusCode::OK, row.json(order)));
        }
    }
    let hold = match read {
        ReadOutcome::Found(hold) => hold,
        ReadOutcome::NotOwner => return Err(forbidden()),
        ReadOutcome::NotFound => {
            return Err(ApiError::not_found("unknown_hold", format!("no hold {id}")))
        }
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
    // What will be charged, checked before anything is written: a provider never sees zero, a
    // negative amount or more than one charge may be.
    let (total_cents, currency) = quoted_total(app, &hold).await?;
    if total_cents <= 0 {
        return Err(ApiError::invalid(
            "nothing_to_charge",
            "this hold costs nothing; checkout sells only paid seats",
        ));
    }
    if total_cents > payments::MAX_CHARGE_CENTS {
        return Err(ApiError::invalid(
            "total_out_of_range",
            "this hold costs more than one payment may be; hold fewer seats",
        )
        .with_details(serde_json::json!({ "max_total_cents": payments::MAX_CHARGE_CENTS })));
    }
    claim_key(app, user, &body, order, &id, hold.event.as_str()).await?;
    let pin_for = Duration::from_secs(app.coordinator.limits().max_pin_secs);
    // The pin extends the buyer's ticket count with the hold, in the same step.
    match app.coordinator.pin(&id, pin_for).await? {
        ExtendOutcome::Extended(_) => {}
        ExtendOutcome::NotFound => {
            return Err(ApiError::not_found("unknown_hold", format!("no hold {id}")))
        }
        ExtendOutcome::NotOwner => return Err(forbidden()),
        ExtendOutcome::Invalid(e) => return Err(ApiError::unavailable("coordinator", e)),
        // The hold moved on under us: a concurrent commit may have just sold it (then its
        // order answers), otherwise it expired or is being committed right now.
        other => {
            if depth == 0 && existing_order(app, order).await?.is_some() {
                return Box::pin(commit_inner(app, user, id, body, depth + 1)).await;
            }
            // Nothing was charged: the key's claim goes, so GET /orders does not say "pending".
            drop_unused_attempt(app, user, &body.idempotency_key).await;
            return Err(match other {
                ExtendOutcome::WrongState(h)
                    if matches!(h.state, HoldState::Pending | HoldState::Sold) =>
                {
                    ApiError::conflict(
                        "request_in_progress",
                        "this hold is being committed; retry shortly",
                    )
                }
                ExtendOutcome::WrongState(_) => ApiError::client(
                    StatusCode::GONE,
                    "hold_expired",
                    "the hold was cancelled or has expired",
                ),
                _ => ApiError::client(StatusCode::GONE, "hold_expired", "the hold has expired"),
            });
        }
    }
    let charge = ChargeRequest {
        idempotency_key: format!("{id}:{}", body.idempotency_key),
        amount_cents: total_cents,
        currency: currency.clone(),
        token: body.payment_token.clone(),
        metadata: [
            (meta::ORDER, order.to_string()),
            (meta::HOLD, id.to_string()),
            (meta::EVENT, hold.event.to_string()),
            (meta::USER, user.to_string()),
            (meta::CLIENT_KEY, body.idempotency_key.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    let deadline = app.checkout.charge_deadline;
    let charged = tokio::time::timeout(deadline, app.payments.charge(&charge)).await;
    let outcome = match &charged {
        Err(_) | Ok(Err(PaymentError::Timeout)) => "timeout",
        Ok(Err(PaymentError::TokenRefused(_))) | Ok(Ok(ChargeOutcome::Declined { .. })) => {
            "declined"
        }
        Ok(Err(_)) => "error",
        Ok(Ok(ChargeOutcome::RequiresAction { .. })) => "requires_action",
        Ok(Ok(ChargeOutcome::Succeeded { .. })) => "succeeded",
    };
    app.metrics
        .payments_total
        .with_label_values(&[outcome])
        .inc();
    let payment_id = match charged {
        Err(_) | Ok(Err(PaymentError::Timeout)) => {
            set_attempt(app, user, &body.idempotency_key, Status::Pending, None).await;
            return Ok(pending(order, "pending", None));
        }
        Ok(Err(PaymentError::IdempotencyMismatch)) => {
            return Err(ApiError::conflict(
                "idempotency_conflict",
                "this idempotency_key was used with another payment",
            ))
        }
        Ok(Err(PaymentError::TokenRefused(reason)))
        | Ok(Ok(ChargeOutcome::Declined { reason, .. })) => {
            set_attempt(app, user, &body.idempotency_key, Status::Declined, None).await;
            // The hold stays, unpinned: the buyer may try another card, or cancel, until it
            // expires. Not while another commit of the same hold (another key) is in flight:
            // unpinning would let the hold expire under a payment that succeeds. Nor once one is
            // paid: its order is in Postgres and the writer is about to mark the seats sold; an
            // unpinned hold could expire first and its seats go to another buyer.
            let others =
                orders::attempts::others_may_pay(&app.db, order, user, &body.idempotency_key)
                    .await?;
            if !others {
                if let Err(e) = app.coordinator.unpin(&id).await {
                    tracing::warn!(hold = %id, error = %e, "declined payment: hold stays pinned until the pin ends");
                }
            }
            return Err(ApiError::client(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                "the payment was declined; the hold stays until it expires",
            )
            .with_details(serde_json::json!({ "reason": reason })));
        }
        Ok(Err(e)) => return Err(ApiError::unavailable("payment provider", e)),
        Ok(Ok(ChargeOutcome::RequiresAction { payment_id })) => {
            set_attempt(
                app,
                user,
                &body.idempotency_key,
                Status::RequiresAction,
                Some(&payment_id),
            )
            .await;
            return Ok(pending(order, "requires_action", Some(&payment_id)));
        }
        Ok(Ok(ChargeOutcome::Succeeded { payment_id })) => payment_id,
    };
    set_attempt(
        app,
        user,
        &body.idempotency_key,
        Status::Pending,
        Some(&payment_id),
    )
    .await;

    // The durable write, by the reconciler's writer.
    let seats: Vec<String> = hold.seats.iter().map(ToString::to_string).collect();
    let job = CommitJob {
        order_id: order,
        hold_id: id.to_string(),
        event_id: hold.event.to_string(),
        user_id: user.to_string(),
        seats,
        total_cents,
        currency,
        payment_ref: payment_id.clone(),
        idempotency_key: body.idempotency_key.clone(),
    };
    let waiting = app.waiters.register(order);
    let queued = match serde_json::to_string(&job) {
        Ok(text) => app.coordinator.enqueue_commit(&text).await.map(|_| ()),
        Err(e) => {
            tracing::error!(error = %e, "commit job not encodable");
            Ok(())
        }
    };
    if let Err(e) = queued {
        // Charged but not queued: reconciliation finds the payment (its metadata names the
        // hold, which stays pinned) and writes the order or refunds it.
        tracing::error!(hold = %id, error = %e, "captured payment not queued; reconciliation will settle it");
        app.waiters.forget(order);
        return Ok(pending(order, "pending", Some(&payment_id)));
    }
    let written = wait_written(app, order, &payment_id, waiting).await?;
    if matches!(
        written,
        Some(Written::Superseded | Written::Oversold | Written::Expired)
    ) {
        // The writer refunds these too; refunding here as well (refunds are idempotent) makes
        // "the payment was refunded" true by the time the buyer reads it.
        app.payments
            .refund(&payment_id)
            .await
            .map_err(|e| ApiError::unavailable("payment provider", e))?;
    }
    match written {
        Some(Written::Paid) => {
            app.metrics.orders_total.with_label_values(&["paid"]).inc();
            // A finished checkout ends the buyer's turn in a waiting room (where admission is
            // tied to the inventory, the next buyer gets in sooner). An event without a room (as
            // the event cache has it; a buyer of an open sale has no ticket anyway) is not asked.
            let roomless = matches!(
                app.caches.event(app, &hold.event).await,
                Ok(Some(e)) if e.admission_mode == coordinator::queue::AdmissionMode::Open
            );
            if !roomless {
                let pace = app.pacer.pace();
                if let Err(e) = app.coordinator.queue_done(&hold.event, user, pace).await {
                    tracing::warn!(error = %e, "waiting room not told of a finished checkout");
                }
            }
            // The order the writer just committed for this payment: what it wrote is the job.
            let row = OrderView {
                key: job.idempotency_key,
                user: job.user_id,
                status: "paid".to_owned(),
                seats: job.seats,
                total_cents: job.total_cents,
                currency: job.currency,
            };
            Ok((StatusCode::OK, row.json(order)))
        }
        // Another commit of this hold (another key) won; ours was refunded by the writer.
        Some(Written::Superseded) if depth == 0 => {
            Box::pin(commit_inner(app, user, id, body, depth + 1)).await
        }
        Some(Written::Superseded) => Err(ApiError::conflict(
            "idempotency_conflict",
            "this hold was committed with another idempotency_key; this payment was refunded",
        )),
        Some(Written::Oversold) => {
            app.metrics
                .orders_total
                .with_label_values(&["oversold"])
                .inc();
            Err(ApiError::conflict(
                "seats_unavailable",
                "a seat of this hold was already sold; the payment was refunded",
            ))
        }
        Some(Written::Expired) => Err(ApiError::client(
            StatusCode::GONE,
            "hold_expired",
            "the hold expired before the order could be written; the payment was refunded",
        )),
        None => Ok(pending(order, "pending", Some(&payment_id))),
    }
}

/// Claims the buyer's idempotency key for this hold and token; a key already used for another
/// hold or another token is a conflict. A replay of the same request passes.
async fn claim_key(
    app: &App,
    user: &UserId,
    body: &CommitBody,
    order: Uuid,
    hold: &HoldId,
    event: &str,
) -> Result<(), ApiError> {
    let attempt = orders::attempts::Attempt {
        user,
        key: &body.idempotency_key,
        token: &body.payment_token,
        order,
        hold,
        event,
    };
    match orders::attempts::claim(&app.db, attempt).await? {
        orders::attempts::Claim::Ours => Ok(()),
        orders::attempts::Claim::Conflict => Err(ApiError::conflict(
            "idempotency_conflict",
            "this idempotency_key was already used for another hold or payment",
        )),
    }
}

/// Forgets a claimed key whose commit stopped before any charge (best effort).
async fn drop_unused_attempt(app: &App, user: &UserId, key: &str) {
    if let Err(e) = orders::attempts::drop_unused(&app.db, user, key).await {
        tracing::warn!(error = %e, "unused commit attempt not removed");
    }
}

/// Records what became of an attempt (best effort: a hint for GET /orders/{id}).
async fn set_attempt(app: &App, user: &UserId, key: &str, status: Status, payment: Option<&str>) {
    if let Err(e) = orders::attempts::set_status(&app.db, user, key, status, payment).await {
        tracing::warn!(error = %e, "commit attempt status not recorded");
    }
}

/// Waits for the writer's verdict on this payment's order, up to the write deadline.
async fn wait_written(
    app: &App,
    order: Uuid,
    payment: &str,
    mut waiting: oneshot::Receiver<Done>,
) -> Result<Option<Written>, ApiError> {
    let until = Instant::now() + app.checkout.write_deadline;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        tokio::select! {
            done = &mut waiting => match done {
                Ok(done) if done.payment_ref == payment && done.written == Written::Paid => {
                    return Ok(Some(Written::Paid))
                }
                // Any other verdict is read back from Postgres below, where the most decisive
                // fact wins: the same payment may have been queued twice (the provider's webhook
                // and this request), and the second copy's verdict is not the first's.
                Ok(done) if done.payment_ref == payment => {}
                // Another payment's verdict on this order, or the sender was dropped.
                _ => waiting = app.waiters.register(order),
            },
            _ = tokio::time::sleep(left.min(Duration::from_millis(250))) => {}
        }
        // The announcement may be lost: Postgres is the truth.
        let verdict = orders::attempts::verdict(&app.db, order, payment).await?;
        if verdict.is_some() {
            app.waiters.forget(order);
        }
        match verdict {
            Some(written) => return Ok(Some(written)),
            None if Instant::now() >= until => {
                app.waiters.forget(order);
                return Ok(None);
            }
            None => {}
        }
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

/// `POST /webhooks/payments`: the provider tells us a payment changed. The signature is checked
/// on the raw body; the payment is then fetched again from the provider and settled (so a
/// delivery that is late, repeated or out of order acts on the current state), and the event id
/// is recorded so a redelivery changes nothing. An event that arrives while the commit that
/// made the payment is still running is not recorded: a 409, and the provider delivers it
/// again, by when that commit has its order written, or gave up (202) or died, and the event
/// settles the payment.
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
    let metrics = app.metrics.clone();
    let settled = detached(async move {
        let payment = app
            .payments
            .retrieve(&event.payment_id)
            .await
            .map_err(|e| ApiError::unavailable("payment provider", e))?;
        // Whether it was handled before, and whether the commit that made this payment is still
        // running and will queue its order itself: charging, or waiting for its order with this
        // payment (it is found by the buyer and key the payment carries: the webhook can arrive
        // before the commit has recorded the payment's id). Settling now would only queue the
        // order twice; recording the event would leave the payment to reconciliation should
        // that commit give up (a 202 on the provider's late answer) or die. So the event is not
        // recorded: a 409, and the provider delivers it again. A commit that gave up waiting
        // for the provider (pending, without the payment) queues nothing: the event settles.
        let meta = |k: &str| payment.as_ref().and_then(|p| p.metadata.get(k).cloned());
        let orders::attempts::EventState {
            seen,
            commit_in_flight: in_flight,
        } = orders::attempts::event_state(
            &app.db,
            &event.id,
            meta(orders::meta::USER).as_deref(),
            meta(orders::meta::CLIENT_KEY).as_deref(),
            &event.payment_id,
        )
        .await?;
        if seen {
            return Ok::<_, ApiError>(None);
        }
        if in_flight
            && payment
                .as_ref()
                .is_some_and(|p| p.status == payments::PaymentStatus::Succeeded)
        {
            app.metrics
                .webhooks_total
                .with_label_values(&["commit_in_flight"])
                .inc();
            return Err(ApiError::conflict(
                "commit_in_flight",
                "the commit that made this payment is still running; deliver the event again",
            ));
        }
        let outcome = match &payment {
            Some(payment) => Some(
                orders::settle::settle(&app.services(), payment)
                    .await
                    .map_err(|e| ApiError::unavailable("settlement", e))?,
            ),
            None => None,
        };
        // Recorded only once handled (a failure above is a 503 and the provider redelivers),
        // and only when it acted (queued an order, refunded): an event about an order already
        // written, or about nothing captured, only read; its redelivery reads again, which
        // costs less than a write, and the common case (the commit wrote the order, the event
        // arrives after) writes nothing at all.
        let acted = matches!(
            outcome,
            Some(orders::settle::Settled::Queued | orders::settle::Settled::Refunded)
        );
        if acted {
            orders::attempts::record_event(&app.db, &event.id, &event.kind, &event.payment_id)
                .await?;
        }
        let label = outcome.map_or("unknown_payment".to_owned(), |o| {
            format!("{o:?}").to_lowercase()
        });
        app.metrics
            .webhooks_total
            .with_label_values(&[&label])
            .inc();
        Ok(Some(label))
    })
    .await??;
    let Some(settled) = settled else {
        metrics
            .webhooks_total
            .with_label_values(&["duplicate"])
            .inc();
        return Ok(json_status(
            &serde_json::json!({"received": true, "duplicate": true}),
            StatusCode::OK,
        ));
    };
    Ok(json_status(
        &serde_json::json!({"received": true, "outcome": settled}),
        StatusCode::OK,
    ))
}
