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
    /// Pages of the provider's listing read.
    pub pages: usize,
    /// Whether the pass read a listing's last page (otherwise the next pass resumes it).
    pub listing_done: bool,
}

/// The listing [`settle_pages`] reads: one row of `payment_scans`.
const SCAN: &str = "captured";

/// Where that listing stands (the migration documents each column).
#[derive(sqlx::FromRow)]
struct Scan {
    window_from: i64,
    window_to: Option<i64>,
    after_payment: Option<String>,
    open_since: Option<i64>,
}

/// How far a new listing starts before the oldest payment the last one left unfinished (or
/// before its end): for the provider's clock, and payments created as that listing began.
const LISTING_OVERLAP_SECS: i64 = 60;

/// Reconciliation: every captured payment older than `grace` (commits in flight get that long
/// to finish on their own) that has no order is settled. The provider's listing is read at most
/// `max_pages` pages a pass, each page settled and the cursor moved in one transaction on the
/// listing's row (another reconciler holding it skips its turn), so a listing of any length
/// finishes over passes, and a crash costs one page read again. A listing covers the payments
/// created from where the last one left a payment unfinished (queued for its order, busy,
/// failed, younger than the grace) to its own start, however old: none is left out for its age.
pub async fn settle_pages(
    svc: &Services,
    grace: Duration,
    max_pages: usize,
) -> Result<Settlement, OrdersError> {
    let mut settlement = Settlement::default();
    while settlement.pages < max_pages && !settlement.listing_done {
        let mut tx = svc.db.begin().await?;
        sqlx::query("INSERT INTO payment_scans (scan) VALUES ($1) ON CONFLICT (scan) DO NOTHING")
            .bind(SCAN)
            .execute(&mut *tx)
            .await?;
        let scan: Option<Scan> = sqlx::query_as(
            "SELECT window_from, window_to, after_payment, open_since FROM payment_scans
             WHERE scan = $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(SCAN)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(scan) = scan else {
            // Another reconciler is reading the listing now.
            break;
        };
        let now = payments::now_unix();
        let to = scan.window_to.unwrap_or(now);
        let page = svc
            .payments
            .list_succeeded_page(scan.window_from, to, scan.after_payment.as_deref())
            .await?;
        let (done, open) = settle_page(svc, page.payments, now - grace.as_secs() as i64).await?;
        let open_since = scan.open_since.into_iter().chain(open).min();
        match &page.next {
            Some(next) => sqlx::query(
                "UPDATE payment_scans SET window_to = $2, after_payment = $3, open_since = $4,
                         updated_at = now() WHERE scan = $1",
            )
            .bind(SCAN)
            .bind(to)
            .bind(next)
            .bind(open_since),
            None => {
                let from = open_since.unwrap_or(to).min(to) - LISTING_OVERLAP_SECS;
                sqlx::query(
                    "UPDATE payment_scans SET window_from = $2, window_to = NULL,
                         after_payment = NULL, open_since = NULL, updated_at = now()
                     WHERE scan = $1",
                )
                .bind(SCAN)
                .bind(from)
            }
        }
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        settlement.pages += 1;
        settlement.listing_done = page.next.is_none();
        settlement.done.extend(done);
    }
    Ok(settlement)
}

/// Settles one page's payments created at or before `ripe` that have no order. Returns what was
/// done, and when the oldest payment left unfinished was created.
async fn settle_page(
    svc: &Services,
    payments: Vec<Payment>,
    ripe: i64,
) -> Result<(Vec<Settled>, Option<i64>), OrdersError> {
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
    let mut open: Option<i64> = None;
    let mut left_open = |created: i64| open = Some(open.map_or(created, |o| o.min(created)));
    for payment in payments {
        if with_orders.contains(&payment.id) {
            continue;
        }
        if payment.created > ripe {
            left_open(payment.created);
            continue;
        }
        // One payment that cannot be settled now must not hold up the others.
        match settle(svc, &payment).await {
            Ok(outcome) => {
                // Queued: its order is not written yet, and the queue is Redis soft state.
                if matches!(outcome, Settled::Queued | Settled::Busy) {
                    left_open(payment.created);
                }
                done.push(outcome);
            }
            Err(e) => {
                left_open(payment.created);
                tracing::error!(payment = %payment.id, error = %e, "payment not settled; retried next listing")
            }
        }
    }
    Ok((done, open))
}

/// What a provider's webhook event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Acted on before: nothing done.
    Duplicate,
    /// The commit that made this payment is still running and will queue its order itself: the
    /// event is not recorded, and the provider should deliver it again.
    CommitInFlight,
    /// The payment is unknown to the provider.
    UnknownPayment,
    /// Settled now.
    Settled(Settled),
}

/// Acts on a provider's webhook `event` (its signature already checked): the payment is fetched
/// again from the provider and settled, so a delivery that is late, repeated or out of order
/// acts on the current state. The event is recorded only when it acted (queued an order,
/// refunded), so a redelivery of one that did changes nothing; an event about an order already
/// written, or about nothing captured, only reads, and its redelivery reads again, which costs
/// less than a write (the common case, the commit wrote the order and the event arrives after,
/// writes nothing at all).
pub async fn on_event(
    svc: &Services,
    event: &payments::webhook::WebhookEvent,
) -> Result<EventOutcome, OrdersError> {
    let payment = svc.payments.retrieve(&event.payment_id).await?;
    // Whether it was handled before, and whether the commit that made this payment is still
    // running and will queue its order itself: charging, or waiting for its order with this
    // payment (found by the buyer and key the payment carries: the webhook can arrive before
    // the commit has recorded the payment's id). Settling now would only queue the order twice;
    // recording the event would leave the payment to reconciliation should that commit give up
    // (a 202 on the provider's late answer) or die. A commit that gave up waiting for the
    // provider (pending, without the payment) queues nothing: the event settles.
    let meta = |k: &str| payment.as_ref().and_then(|p| p.metadata.get(k).cloned());
    let state = crate::attempts::event_state(
        &svc.db,
        &event.id,
        meta(meta::USER).as_deref(),
        meta(meta::CLIENT_KEY).as_deref(),
        &event.payment_id,
    )
    .await?;
    if state.seen {
        return Ok(EventOutcome::Duplicate);
    }
    let Some(payment) = payment else {
        return Ok(EventOutcome::UnknownPayment);
    };
    if state.commit_in_flight && payment.status == payments::PaymentStatus::Succeeded {
        return Ok(EventOutcome::CommitInFlight);
    }
    let settled = settle(svc, &payment).await?;
    if matches!(settled, Settled::Queued | Settled::Refunded) {
        crate::attempts::record_event(&svc.db, &event.id, &event.kind, &event.payment_id).await?;
    }
    Ok(EventOutcome::Settled(settled))
}
