//! Settling a payment: the provider says money moved; make sure it ends as an order or a refund.
//!
//! Called for every payment webhook (after the payment is fetched again from the provider, so
//! late, repeated or reordered events all act on the same current state) and by the reconciler
//! for captured payments that have no order (a gateway that crashed after charging, a commit
//! whose queue entry Redis lost). Idempotent: settling a payment twice does what settling it
//! once did.

use std::time::Duration;

use coordinator::extend::ExtendOutcome;
use coordinator::{HoldId, HoldState};
use payments::{Payment, PaymentStatus};
use uuid::Uuid;

use crate::{meta, refund, CommitJob, OrdersError, Services};

/// What settling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The payment's order is written.
    Paid,
    /// The order is on the commit queue (its hold still has the seats, now pinned).
    Queued,
    /// The payment was refunded: its hold lost the seats, or the hold's order was paid with
    /// another payment, or it was refunded at the provider (the order, if any, is refunded too).
    Refunded,
    /// Nothing captured (declined, waiting for the buyer's action): nothing to do.
    NotCaptured,
    /// Its hold is changing right now (being placed or sold): try again later.
    Busy,
    /// Not a payment of ours (no order metadata).
    Foreign,
}

/// Settles one payment.
pub async fn settle(svc: &Services, payment: &Payment) -> Result<Settled, OrdersError> {
    let Some(order) = payment
        .metadata
        .get(meta::ORDER)
        .and_then(|o| Uuid::parse_str(o).ok())
    else {
        return Ok(Settled::Foreign);
    };
    match payment.status {
        PaymentStatus::Succeeded => {}
        PaymentStatus::Refunded => {
            // Refunded at the provider (an admin there, or our own refund whose bookkeeping a
            // crash interrupted): the order, if it was paid with this payment, is refunded too.
            refund::complete_refund(svc, order, &payment.id, "system:reconciler").await?;
            return Ok(Settled::Refunded);
        }
        _ => return Ok(Settled::NotCaptured),
    }
    if let Some(settled) = settle_written(svc, order, payment).await? {
        return Ok(settled);
    }
    let Some(hold) = payment
        .metadata
        .get(meta::HOLD)
        .and_then(|h| HoldId::parse(h).ok())
    else {
        return Ok(Settled::Foreign);
    };
    let pin_for = Duration::from_secs(svc.coordinator.limits().max_pin_secs);
    let hold_now = match svc.coordinator.pin(&hold, pin_for).await? {
        ExtendOutcome::Extended(h) => h,
        ExtendOutcome::WrongState(h) if matches!(h.state, HoldState::Pending | HoldState::Sold) => {
            // Sold: a writer is between its commit and our read; pending: being placed.
            return Ok(Settled::Busy);
        }
        other => {
            // The seats are no longer this hold's. Either its order was written meanwhile: the
            // writer commits the order before it marks the seats sold, so a sale that took the
            // seats from the pinned hold is already in Postgres (read again, not refunded!). Or
            // the hold expired, was released or lost: the seats may be someone else's, and the
            // money goes back.
            if let Some(settled) = settle_written(svc, order, payment).await? {
                return Ok(settled);
            }
            svc.payments.refund(&payment.id).await?;
            tracing::warn!(%order, payment = %payment.id, outcome = ?other,
                "captured payment whose hold lost its seats; refunded");
            mark_attempt(svc, order, "refunded").await?;
            return Ok(Settled::Refunded);
        }
    };
    let job = CommitJob {
        order_id: order,
        hold_id: hold.to_string(),
        event_id: hold_now.event.to_string(),
        user_id: hold_now.user.to_string(),
        seats: hold_now.seats.iter().map(ToString::to_string).collect(),
        total_cents: payment.amount_cents,
        currency: payment.currency.clone(),
        payment_ref: payment.id.clone(),
        idempotency_key: payment
            .metadata
            .get(meta::CLIENT_KEY)
            .cloned()
            .unwrap_or_default(),
    };
    let body = serde_json::to_string(&job).map_err(|e| {
        OrdersError::Payment(payments::PaymentError::Unavailable(format!(
            "job encoding: {e}"
        )))
    })?;
    svc.coordinator.enqueue_commit(&body).await?;
    Ok(Settled::Queued)
}

/// When the order is written: paid with this payment (kept), or with another one (this one is
/// refunded). `None` while the order is not written.
async fn settle_written(
    svc: &Services,
    order: Uuid,
    payment: &Payment,
) -> Result<Option<Settled>, OrdersError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT payment_ref FROM orders WHERE id = $1")
        .bind(order)
        .fetch_optional(&svc.db)
        .await?;
    match row {
        None => Ok(None),
        Some((p,)) if p == payment.id => Ok(Some(Settled::Paid)),
        Some(_) => {
            svc.payments.refund(&payment.id).await?;
            tracing::warn!(%order, payment = %payment.id, "a second payment for a paid order; refunded");
            Ok(Some(Settled::Refunded))
        }
    }
}

async fn mark_attempt(svc: &Services, order: Uuid, status: &str) -> Result<(), OrdersError> {
    sqlx::query(
        "UPDATE commit_attempts SET status = $2::attempt_status, updated_at = now()
         WHERE order_id = $1 AND status IN ('charging', 'pending', 'requires_action')",
    )
    .bind(order)
    .bind(status)
    .execute(&svc.db)
    .await?;
    Ok(())
}

/// What one reconciliation pass over payments did.
#[derive(Debug, Clone, Default)]
pub struct Settlement {
    /// What was done, by payment settled.
    pub done: Vec<Settled>,
    /// When the oldest payment that is not finished yet was created (unix s): queued for its
    /// order, busy, failed, or younger than the grace. The next pass must look back to it.
    pub open_since: i64,
}

/// Reconciliation: every captured payment created since `since_unix` and older than `grace`
/// (commits in flight get that long to finish on their own) is settled.
pub async fn settle_recent(
    svc: &Services,
    since_unix: i64,
    grace: Duration,
) -> Result<Settlement, OrdersError> {
    let now = payments::now_unix();
    let ripe = now - grace.as_secs() as i64;
    let payments = svc.payments.list_succeeded_since(since_unix).await?;
    let ids: Vec<String> = payments.iter().map(|p| p.id.clone()).collect();
    let with_orders: std::collections::HashSet<String> = sqlx::query_as::<_, (String,)>(
        "SELECT payment_ref FROM orders WHERE payment_ref = ANY($1)",
    )
    .bind(&ids)
    .persistent(false)
    .fetch_all(&svc.db)
    .await?
    .into_iter()
    .map(|(p,)| p)
    .collect();
    let mut done = Vec::new();
    let mut open_since = ripe;
    for payment in payments {
        if with_orders.contains(&payment.id) || payment.created > ripe {
            continue;
        }
        // One payment that cannot be settled now must not hold up the others.
        match settle(svc, &payment).await {
            Ok(outcome) => {
                // Queued: its order is not written yet, and the queue is Redis soft state.
                if matches!(outcome, Settled::Queued | Settled::Busy) {
                    open_since = open_since.min(payment.created);
                }
                done.push(outcome);
            }
            Err(e) => {
                open_since = open_since.min(payment.created);
                tracing::error!(payment = %payment.id, error = %e, "payment not settled; retried next pass")
            }
        }
    }
    Ok(Settlement { done, open_since })
}
