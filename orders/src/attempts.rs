//! The commit protocol's bookkeeping in Postgres: the buyer's idempotency keys
//! (`commit_attempts`), what a buyer sees of an order, the writer's verdict as Postgres shows
//! it, and the webhook events already acted on (`webhook_events`). Every statement on these
//! tables from checkout lives here; the gateway's handlers call these functions and map their
//! outcomes to statuses.

use coordinator::{HoldId, UserId};
use sha2::Digest;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Written;

/// A statement's opening that lets its transaction commit without waiting for the disk
/// (`synchronous_commit = off` for that transaction only); the statement must read
/// `async_commit` for it to run. For the commit attempts and webhook records: hints and
/// de-duplication, not the truth about money (the provider is, and orders are written by the
/// durable writer, which waits). A crash may lose the last of them; nothing is inconsistent.
const ASYNC_COMMIT: &str =
    "WITH async_commit AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS v)";

/// An order as its buyer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    /// The idempotency key it was committed with.
    pub key: String,
    /// Its buyer.
    pub user: String,
    /// `paid`, `refunded`, …
    pub status: String,
    /// Its seats, sorted.
    pub seats: Vec<String>,
    /// What was charged, in minor units.
    pub total_cents: i64,
    /// ISO 4217.
    pub currency: String,
}

impl OrderView {
    /// The JSON a buyer gets.
    pub fn json(&self, order: Uuid) -> serde_json::Value {
        serde_json::json!({
            "order_id": order, "status": self.status, "seats": self.seats,
            "total_amount": self.total_cents as f64 / 100.0, "currency": self.currency,
        })
    }
}

/// The order, if it is written.
pub async fn order(db: &PgPool, order: Uuid) -> Result<Option<OrderView>, sqlx::Error> {
    let row: Option<(String, String, String, i64, String)> = sqlx::query_as(
        "SELECT idempotency_key, user_id, status::text, total_cents, currency FROM orders WHERE id = $1",
    )
    .bind(order)
    .fetch_optional(db)
    .await?;
    let Some((key, user, status, total_cents, currency)) = row else {
        return Ok(None);
    };
    let seats: Vec<(String,)> =
        sqlx::query_as("SELECT seat_id FROM sold_seats WHERE order_id = $1 ORDER BY seat_id")
            .bind(order)
            .fetch_all(db)
            .await?;
    Ok(Some(OrderView {
        key,
        user,
        status,
        seats: seats.into_iter().map(|(s,)| s).collect(),
        total_cents,
        currency,
    }))
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Claimed now, or a replay of the same request (same hold, same token).
    Ours,
    /// The key was used for another hold or another payment token.
    Conflict,
}

/// One commit request, as its key is claimed.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The buyer.
    pub user: &'a UserId,
    /// The buyer's idempotency key.
    pub key: &'a str,
    /// The payment token (only its hash is stored).
    pub token: &'a str,
    /// The hold's order.
    pub order: Uuid,
    /// The hold.
    pub hold: &'a HoldId,
    /// Its event.
    pub event: &'a str,
}

/// Claims the buyer's idempotency key for this hold and token (status `charging`).
pub async fn claim(db: &PgPool, attempt: Attempt<'_>) -> Result<Claim, sqlx::Error> {
    let hash = hex::encode(sha2::Sha256::digest(attempt.token.as_bytes()));
    // One statement: the claim, or the claim made before. (A claim committed by a concurrent
    // request after this statement's snapshot is invisible to it: then it is read again.)
    let claimed: Option<(Uuid, String)> = sqlx::query_as(&format!(
        "{ASYNC_COMMIT}, ins AS (
             INSERT INTO commit_attempts (user_id, idempotency_key, order_id, hold_id, event_id, request_hash, status)
             VALUES ($1, $2, $3, $4::uuid, $5, $6, 'charging') ON CONFLICT (user_id, idempotency_key) DO NOTHING
             RETURNING order_id, request_hash)
         SELECT order_id, request_hash FROM ins, async_commit
         UNION ALL
         SELECT order_id, request_hash FROM commit_attempts
         WHERE user_id = $1 AND idempotency_key = $2
         LIMIT 1"
    ))
    .bind(attempt.user.as_str())
    .bind(attempt.key)
    .bind(attempt.order)
    .bind(attempt.hold.to_string())
    .bind(attempt.event)
    .bind(&hash)
    .fetch_optional(db)
    .await?;
    let (claimed_order, claimed_hash) = match claimed {
        Some(c) => c,
        None => {
            sqlx::query_as(
                "SELECT order_id, request_hash FROM commit_attempts WHERE user_id = $1 AND idempotency_key = $2",
            )
            .bind(attempt.user.as_str())
            .bind(attempt.key)
            .fetch_one(db)
            .await?
        }
    };
    Ok(if claimed_order == attempt.order && claimed_hash == hash {
        Claim::Ours
    } else {
        Claim::Conflict
    })
}

/// Forgets a claimed key whose commit stopped before any charge.
pub async fn drop_unused(db: &PgPool, user: &UserId, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM commit_attempts WHERE user_id = $1 AND idempotency_key = $2 AND status = 'charging'",
    )
    .bind(user.as_str())
    .bind(key)
    .execute(db)
    .await?;
    Ok(())
}

/// What became of an attempt, as checkout records it (a hint for `GET /orders/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Charged, or the provider's answer is not known yet.
    Pending,
    /// Declined by the provider.
    Declined,
    /// Waiting for the buyer's 3-D Secure step.
    RequiresAction,
}

impl Status {
    fn as_sql(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Declined => "declined",
            Self::RequiresAction => "requires_action",
        }
    }
}

/// Records what became of an attempt (never over `paid`).
pub async fn set_status(
    db: &PgPool,
    user: &UserId,
    key: &str,
    status: Status,
    payment: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "{ASYNC_COMMIT}
         UPDATE commit_attempts SET status = $3::attempt_status, payment_ref = coalesce($4, payment_ref), updated_at = now()
         FROM async_commit WHERE user_id = $1 AND idempotency_key = $2 AND status <> 'paid'"
    ))
    .bind(user.as_str())
    .bind(key)
    .bind(status.as_sql())
    .bind(payment)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether another commit of this order (another key) may still pay for it, or has: charging,
/// waiting, or paid.
pub async fn others_may_pay(
    db: &PgPool,
    order: Uuid,
    user: &UserId,
    key: &str,
) -> Result<bool, sqlx::Error> {
    let others: Option<(i32,)> = sqlx::query_as(
        "SELECT 1 FROM commit_attempts WHERE order_id = $1
           AND status IN ('charging', 'pending', 'requires_action', 'paid')
           AND NOT (user_id = $2 AND idempotency_key = $3) LIMIT 1",
    )
    .bind(order)
    .bind(user.as_str())
    .bind(key)
    .fetch_optional(db)
    .await?;
    Ok(others.is_some())
}

/// The writer's verdict on `payment`'s order as Postgres shows it, the most decisive fact
/// first: its order, then an oversell, then a refund for an expired hold; `None` while none
/// is written.
pub async fn verdict(
    db: &PgPool,
    order: Uuid,
    payment: &str,
) -> Result<Option<Written>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT v FROM (
             SELECT 0 AS rank, payment_ref AS v FROM orders WHERE id = $1
             UNION ALL SELECT 1, 'oversold:' || payment_ref FROM oversell_incidents WHERE payment_ref = $2
             UNION ALL SELECT 2, 'expired:' FROM commit_attempts
                 WHERE order_id = $1 AND payment_ref = $2 AND status = 'refunded'
         ) x ORDER BY rank LIMIT 1",
    )
    .bind(order)
    .bind(payment)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(v,)| {
        if v == payment {
            Written::Paid
        } else if v.starts_with("oversold:") {
            Written::Oversold
        } else if v.starts_with("expired:") {
            Written::Expired
        } else {
            Written::Superseded
        }
    }))
}

/// The buyer's latest attempt at an order not written yet: its status and payment.
pub async fn latest(
    db: &PgPool,
    order: Uuid,
    user: &UserId,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status::text, payment_ref FROM commit_attempts
         WHERE order_id = $1 AND user_id = $2 ORDER BY updated_at DESC LIMIT 1",
    )
    .bind(order)
    .bind(user.as_str())
    .fetch_optional(db)
    .await
}

/// What is known of a webhook event before acting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventState {
    /// Acted on before (recorded).
    pub seen: bool,
    /// The commit that made the payment is still running (charging, or waiting for its order
    /// with this payment), found by the buyer and key the payment carries.
    pub commit_in_flight: bool,
}

/// Whether an event was acted on, and whether its payment's commit is still running.
pub async fn event_state(
    db: &PgPool,
    event_id: &str,
    user: Option<&str>,
    key: Option<&str>,
    payment: &str,
) -> Result<EventState, sqlx::Error> {
    let (seen, commit_in_flight): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM webhook_events WHERE id = $1),
                EXISTS (SELECT 1 FROM commit_attempts WHERE user_id = $2 AND idempotency_key = $3
                        AND (status = 'charging' OR (status = 'pending' AND payment_ref = $4))
                        AND updated_at > now() - interval '10 seconds')",
    )
    .bind(event_id)
    .bind(user)
    .bind(key)
    .bind(payment)
    .fetch_one(db)
    .await?;
    Ok(EventState {
        seen,
        commit_in_flight,
    })
}

/// Records an event acted on, so its redelivery changes nothing.
pub async fn record_event(
    db: &PgPool,
    event_id: &str,
    kind: &str,
    payment: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "{ASYNC_COMMIT}
         INSERT INTO webhook_events (id, kind, payment_ref)
         SELECT $1, $2, $3 FROM async_commit ON CONFLICT (id) DO NOTHING"
    ))
    .bind(event_id)
    .bind(kind)
    .bind(payment)
    .execute(db)
    .await?;
    Ok(())
}
