//! Orders: what happens to a sale once the payment is captured.
//!
//! - [`CommitJob`]: a captured sale as checkout (or settlement) puts it on the commit queue.
//! - [`writer`]: the durable writer the reconciler runs: it reads the queue in batches and writes
//!   each batch to Postgres in one transaction (group commit, multi-row inserts) through the
//!   live-sale unique index, then marks Redis sold and announces every outcome.
//! - [`checkout`]: the commit protocol (claim, pin, charge, durable write, verdict) behind
//!   `POST /reservations/{id}/commit`, with typed outcomes the gateway maps to HTTP.
//! - [`settle`]: what to do with a captured payment found by a webhook or by reconciliation:
//!   write its order if its hold still has the seats, otherwise refund it. Never money without
//!   seats.
//! - [`attempts`]: checkout's bookkeeping (idempotency keys in `commit_attempts`, the order as
//!   its buyer sees it, the writer's verdict as Postgres shows it, webhook events acted on):
//!   every statement checkout makes on these tables.
//! - [`refund`]: an order refunded (by an admin, or at the provider): the money goes back and
//!   the seats return to sale.
//! - [`repair`]: live sales Redis lost (a failover, a wipe), marked sold again, with the
//!   buyers' ticket counts; a refund that lands meanwhile gets its seats back.
//!
//! - [`tickets`]: one signed ticket per sold seat (issued by the writer, revoked by a refund,
//!   replaced by a transfer) and the payload a gate scans.
//! - [`checkin`]: a scanned payload's verdict, each ticket admitted once; offline gates'
//!   uploads and the doubles they reveal.
//! - [`waitlist`]: the waiting list of a sold-out event, and the offers of seats that come
//!   back, made in list order as holds for the next waiting buyer.
//! - [`config`]: this crate's configuration sections (`[payments]`, `[tickets]`), which the
//!   `settings` crate layers with the others; [`provider`] builds the provider they name.
//!
//! Business outcomes are enums ([`Written`], [`settle::Settled`], [`refund::RefundResult`]);
//! [`OrdersError`] is infrastructure only (Postgres, Redis, the provider did not answer).

pub mod attempts;
pub mod checkin;
pub mod checkout;
pub mod config;
pub mod refund;
pub mod repair;
pub mod settle;
pub mod tickets;
pub mod waitlist;
pub mod writer;

use std::sync::Arc;

use coordinator::{Coordinator, CoordinatorError, HoldId};
use payments::{PaymentError, Provider};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// Orders are one per hold: their id is derived from it, so every path (checkout, webhook,
/// reconciliation) names the same order.
const ORDER_NAMESPACE: Uuid = Uuid::from_u128(0x3c1d_9e2a_7b4f_4d81_a0e6_5f2b_8c7d_1e90);

/// The order id of a hold.
pub fn order_id(hold: &HoldId) -> Uuid {
    Uuid::new_v5(&ORDER_NAMESPACE, hold.to_string().as_bytes())
}

/// Metadata keys every charge carries, so a payment alone says what it was for.
pub mod meta {
    /// Our order id.
    pub const ORDER: &str = "order_id";
    /// The hold being bought.
    pub const HOLD: &str = "hold_id";
    /// Its event.
    pub const EVENT: &str = "event_id";
    /// The buyer.
    pub const USER: &str = "user_id";
    /// The client's idempotency key of the commit.
    pub const CLIENT_KEY: &str = "client_key";
}

/// A captured sale waiting to be written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitJob {
    /// The order (derived from the hold).
    pub order_id: Uuid,
    /// The hold being bought.
    pub hold_id: String,
    /// Its event.
    pub event_id: String,
    /// The buyer.
    pub user_id: String,
    /// The seats.
    pub seats: Vec<String>,
    /// What was captured, minor units.
    pub total_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// The provider's payment reference.
    pub payment_ref: String,
    /// The client's idempotency key.
    pub idempotency_key: String,
}

/// What the writer made of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Written {
    /// The order is in Postgres, paid with this job's payment (now, or already before).
    Paid,
    /// The hold's order was already paid with another payment: this one is refunded.
    Superseded,
    /// Postgres refused a seat already sold live to someone else: an oversell caught by the
    /// last guard. The payment is refunded and the event frozen.
    Oversold,
    /// The hold had lost its seats (expired, released) before the order could be written: the
    /// payment is refunded, nothing is written.
    Expired,
}

/// The writer's announcement of one job (JSON on the order channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The order.
    pub order_id: Uuid,
    /// The payment the job carried.
    pub payment_ref: String,
    /// What became of it.
    pub written: Written,
}

/// What settling, writing and refunding need.
#[derive(Clone)]
pub struct Services {
    /// Postgres.
    pub db: PgPool,
    /// Redis.
    pub coordinator: Arc<Coordinator>,
    /// The payment provider.
    pub payments: Provider,
}

/// Infrastructure failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrdersError {
    /// Postgres.
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    /// Redis.
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    /// The payment provider.
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

/// The provider `[payments]` names. The sandbox keeps its ledger in `db`.
pub fn provider(settings: &config::Payments, db: &PgPool) -> Result<Provider, PaymentError> {
    Ok(match settings.provider {
        config::ProviderKind::Sandbox => {
            let webhook = match (&settings.sandbox_webhook_url, &settings.webhook_secret) {
                (Some(url), Some(secret)) => Some(payments::sandbox::WebhookTarget {
                    url: url.clone(),
                    secret: secret.clone(),
                }),
                _ => None,
            };
            Provider::Sandbox(Arc::new(payments::sandbox::Sandbox::new(
                db.clone(),
                payments::sandbox::SandboxConfig {
                    latency: settings.sandbox_latency,
                    slow_answer: settings.sandbox_slow_answer,
                    webhook,
                    webhook_copies: settings.sandbox_webhook_copies,
                    webhook_max_delay: settings.sandbox_webhook_max_delay,
                },
            )))
        }
        config::ProviderKind::Stripe => {
            let key = settings.stripe_secret_key.clone().ok_or_else(|| {
                PaymentError::Unavailable("payments.stripe_secret_key is not set".into())
            })?;
            let mut config = payments::stripe::StripeConfig::new(key);
            config.base_url = settings.stripe_base_url.clone();
            Provider::Stripe(Arc::new(payments::stripe::Stripe::new(config)?))
        }
    })
}

/// The name of a violated constraint, if the error is one.
pub(crate) fn constraint(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.constraint().map(str::to_owned))
}
