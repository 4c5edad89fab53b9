//! The sandbox provider: behaves like a real one, embedded, for local use and tests.
//!
//! Test tokens (as Stripe's test cards):
//! - `tok_visa`: succeeds.
//! - `tok_chargeDeclined`: declined (`card_declined`).
//! - `tok_timeout`: the charge succeeds at the provider, but the answer comes only after
//!   [`SandboxConfig::slow_answer`] — longer than a caller's deadline — so the caller sees a
//!   timeout and must find out later (replay the key, a webhook, or reconciliation).
//! - `tok_requires_action`: needs the buyer's action; [`Sandbox::complete_action`] finishes it.
//! - anything else: declined (`invalid_token`).
//!
//! Idempotency as Stripe's: the same key with the same parameters answers for the first charge
//! (charged once); the same key with other parameters is [`PaymentError::IdempotencyMismatch`].
//! One difference: a replay reports the payment's state *now* (a completed action replays as
//! succeeded), which is what a caller replaying a key wants to know.
//!
//! The ledger lives in Postgres (`sandbox_payments`), so every process using the sandbox sees
//! one provider, as with a real one. Status changes are sent as signed, Stripe-shaped webhooks
//! to [`SandboxConfig::webhook`] (retried a few times, like a provider's delivery).

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::PgPool;

use crate::{
    ChargeOutcome, ChargeRequest, Payment, PaymentError, PaymentPage, PaymentStatus, RefundOutcome,
};

pub use crate::delivery::{WebhookTarget, MAX_DELIVERIES};

/// Sandbox behaviour.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Added to every answer (0 for benchmarks).
    pub latency: Duration,
    /// How long a `tok_timeout` charge takes to answer.
    pub slow_answer: Duration,
    /// Webhook delivery; `None` sends none.
    pub webhook: Option<WebhookTarget>,
    /// Fault injection (the chaos suite, `scripts/chaos`): every event is delivered this many
    /// times, with the same event id, as a provider does when it did not see the receiver's
    /// answer. 1 in production; 0 is read as 1.
    pub webhook_copies: u32,
    /// Fault injection: each delivery waits a random time up to this long before its first
    /// try, so the events of one payment (and the copies of one event) arrive out of order.
    /// Zero in production.
    pub webhook_max_delay: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            slow_answer: Duration::from_secs(30),
            webhook: None,
            webhook_copies: 1,
            webhook_max_delay: Duration::ZERO,
        }
    }
}

/// The embedded provider.
pub struct Sandbox {
    config: SandboxConfig,
    db: PgPool,
    webhooks: crate::delivery::Deliverer,
}

/// Payments a page of [`Sandbox::list_succeeded_page`] holds (Stripe's largest page).
pub const LIST_PAGE_SIZE: i64 = 100;

type Row = (
    String,
    serde_json::Value,
    String,
    Option<String>,
    i64,
    String,
    serde_json::Value,
    i64,
);
const COLUMNS: &str = "id, request, status, decline_reason, amount_cents, currency, metadata, \
                       extract(epoch from created_at)::bigint";

fn unavailable(e: impl std::fmt::Display) -> PaymentError {
    PaymentError::Unavailable(format!("sandbox: {e}"))
}

fn status_of(text: &str) -> PaymentStatus {
    match text {
        "requires_action" => PaymentStatus::RequiresAction,
        "succeeded" => PaymentStatus::Succeeded,
        "refunded" => PaymentStatus::Refunded,
        "processing" => PaymentStatus::Processing,
        _ => PaymentStatus::Declined,
    }
}

fn payment_of(row: Row) -> Payment {
    let (id, _, status, _, amount_cents, currency, metadata, created) = row;
    Payment {
        id,
        status: status_of(&status),
        amount_cents,
        currency,
        metadata: serde_json::from_value::<BTreeMap<String, String>>(metadata).unwrap_or_default(),
        created,
    }
}

impl Sandbox {
    /// A sandbox keeping its ledger in this database (migrated by `catalog::migrate`).
    pub fn new(db: PgPool, config: SandboxConfig) -> Self {
        Self {
            webhooks: crate::delivery::Deliverer::new(config.webhook.clone())
                .with_faults(config.webhook_copies, config.webhook_max_delay),
            config,
            db,
        }
    }

    /// Charges (or answers for the first charge of) an idempotency key.
    pub async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, PaymentError> {
        let body = serde_json::to_value(request).map_err(unavailable)?;
        let id = format!("pi_sandbox_{}", uuid::Uuid::new_v4().simple());
        let (status, reason) = match request.token.as_str() {
            "tok_visa" | "tok_timeout" => ("succeeded", None),
            "tok_requires_action" => ("requires_action", None),
            "tok_chargeDeclined" => ("declined", Some("card_declined")),
            _ => ("declined", Some("invalid_token")),
        };
        let inserted: Option<(String,)> = sqlx::query_as(
            "INSERT INTO sandbox_payments
                 (id, idempotency_key, request, status, decline_reason, amount_cents, currency, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(&id)
        .bind(&request.idempotency_key)
        .bind(&body)
        .bind(status)
        .bind(reason)
        .bind(request.amount_cents)
        .bind(&request.currency)
        .bind(serde_json::to_value(&request.metadata).map_err(unavailable)?)
        .fetch_optional(&self.db)
        .await
        .map_err(unavailable)?;
        let replay = inserted.is_none();
        let row: Row = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM sandbox_payments WHERE idempotency_key = $1"
        ))
        .bind(&request.idempotency_key)
        .fetch_one(&self.db)
        .await
        .map_err(unavailable)?;
        if row.1 != body {
            return Err(PaymentError::IdempotencyMismatch);
        }
        let reason = row.3.clone().unwrap_or_default();
        let payment = payment_of(row);
        // The charge is recorded before the (possibly slow) answer: like a real provider, the
        // money moves even when the caller stops waiting. Its webhook goes out when the
        // provider is done: after the latency, or at once for a `tok_timeout` charge (done,
        // only its answer is late).
        let slow = request.token == "tok_timeout" && !replay;
        if slow {
            self.notify_new(&payment, replay);
            tokio::time::sleep(self.config.slow_answer).await;
        } else {
            tokio::time::sleep(self.config.latency).await;
            self.notify_new(&payment, replay);
        }
        let payment_id = payment.id;
        Ok(match payment.status {
            PaymentStatus::Succeeded | PaymentStatus::Refunded => {
                ChargeOutcome::Succeeded { payment_id }
            }
            PaymentStatus::RequiresAction | PaymentStatus::Processing => {
                ChargeOutcome::RequiresAction { payment_id }
            }
            PaymentStatus::Declined => ChargeOutcome::Declined { payment_id, reason },
        })
    }

    /// The payment's state now.
    pub async fn retrieve(&self, payment_id: &str) -> Result<Option<Payment>, PaymentError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM sandbox_payments WHERE id = $1"
        ))
        .bind(payment_id)
        .fetch_optional(&self.db)
        .await
        .map_err(unavailable)?;
        Ok(row.map(payment_of))
    }

    /// Refunds a captured payment in full (idempotent).
    pub async fn refund(&self, payment_id: &str) -> Result<RefundOutcome, PaymentError> {
        if self
            .move_status(payment_id, "succeeded", "refunded", "charge.refunded")
            .await?
            .is_some()
        {
            return Ok(RefundOutcome::Refunded);
        }
        Ok(match self.retrieve(payment_id).await? {
            Some(p) if p.status == PaymentStatus::Refunded => RefundOutcome::Refunded,
            _ => RefundOutcome::NotCaptured,
        })
    }

    /// Captured, unrefunded payments created at or after `since_unix`, oldest first: every
    /// page of [`Self::list_succeeded_page`] (a long list is read whole; a silent cap would hide
    /// the newest), up to a day ahead of now (the sandbox dates payments by its own clock).
    pub async fn list_succeeded_since(
        &self,
        since_unix: i64,
    ) -> Result<Vec<Payment>, PaymentError> {
        let until = crate::now_unix() + 86_400;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .list_succeeded_page(since_unix, until, after.as_deref())
                .await?;
            out.extend(page.payments);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// One page of the captured, unrefunded payments created from `since_unix` to `until_unix`
    /// (both included, as `created` reads them), oldest first, after the payment `after`.
    pub async fn list_succeeded_page(
        &self,
        since_unix: i64,
        until_unix: i64,
        after: Option<&str>,
    ) -> Result<PaymentPage, PaymentError> {
        // Keyset pages on (created_at, id): the cursor is the last payment's id, whatever its
        // status now. `created` is created_at rounded to the second, so `until` reaches to half
        // a second past it.
        let mut rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM sandbox_payments
             WHERE status = 'succeeded' AND created_at >= to_timestamp($1)
               AND created_at < to_timestamp($2 + 0.5)
               AND ($3::text IS NULL
                    OR (created_at, id) > (SELECT created_at, id FROM sandbox_payments WHERE id = $3))
             ORDER BY created_at, id LIMIT $4"
        ))
        .bind(since_unix as f64)
        .bind(until_unix as f64)
        .bind(after)
        .bind(LIST_PAGE_SIZE + 1)
        .fetch_all(&self.db)
        .await
        .map_err(unavailable)?;
        let more = rows.len() as i64 > LIST_PAGE_SIZE;
        rows.truncate(LIST_PAGE_SIZE as usize);
        let payments: Vec<Payment> = rows.into_iter().map(payment_of).collect();
        let next = more
            .then(|| payments.last().map(|p| p.id.clone()))
            .flatten();
        Ok(PaymentPage { payments, next })
    }

    /// The buyer completed the action a `tok_requires_action` charge needed: it succeeds (and a
    /// `payment_intent.succeeded` webhook goes out). `None` when there is no such payment.
    pub async fn complete_action(&self, payment_id: &str) -> Result<Option<Payment>, PaymentError> {
        match self
            .move_status(
                payment_id,
                "requires_action",
                "succeeded",
                "payment_intent.succeeded",
            )
            .await?
        {
            Some(payment) => Ok(Some(payment)),
            None => self.retrieve(payment_id).await,
        }
    }

    /// Moves a payment from one status to another (only from `from`: a repeat changes nothing)
    /// and sends the webhook `event` when it moved. `None` when it was not in `from`.
    async fn move_status(
        &self,
        payment_id: &str,
        from: &str,
        to: &str,
        event: &str,
    ) -> Result<Option<Payment>, PaymentError> {
        let changed: Option<Row> = sqlx::query_as(&format!(
            "UPDATE sandbox_payments SET status = $3
             WHERE id = $1 AND status = $2 RETURNING {COLUMNS}"
        ))
        .bind(payment_id)
        .bind(from)
        .bind(to)
        .fetch_optional(&self.db)
        .await
        .map_err(unavailable)?;
        let moved = changed.map(payment_of);
        if let Some(payment) = &moved {
            self.notify(event, payment);
        }
        Ok(moved)
    }

    /// Payments captured and not refunded, by id: the money the sandbox holds.
    pub async fn kept_payments(&self) -> Result<Vec<String>, PaymentError> {
        Ok(self
            .list_succeeded_since(0)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect())
    }

    /// How many payments exist for an idempotency key (at most one: a replay charges once).
    pub async fn payments_for_key(&self, idempotency_key: &str) -> Result<i64, PaymentError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM sandbox_payments WHERE idempotency_key = $1")
                .bind(idempotency_key)
                .fetch_one(&self.db)
                .await
                .map_err(unavailable)?;
        Ok(n)
    }

    fn notify_new(&self, payment: &Payment, replay: bool) {
        if replay {
            return;
        }
        match payment.status {
            PaymentStatus::Succeeded => self.notify("payment_intent.succeeded", payment),
            PaymentStatus::Declined => self.notify("payment_intent.payment_failed", payment),
            _ => {}
        }
    }

    /// Sends a signed event about `payment` in the background, retried with backoff (as many
    /// times, and after as random a delay, as the fault knobs say).
    fn notify(&self, kind: &str, payment: &Payment) {
        self.webhooks.send(kind, payment);
    }
}
