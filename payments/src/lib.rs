//! Payments: the provider interface checkout talks to, an embedded **sandbox** provider that
//! behaves like a real one, a **Stripe** PaymentIntents client, and the `Stripe-Signature`
//! webhook scheme.
//!
//! # Layout
//!
//! - [`ChargeRequest`], [`ChargeOutcome`], [`Payment`], [`PaymentError`]: the interface.
//!   Business outcomes (declined, needs an action) are outcomes; a provider that cannot answer in
//!   time is an error.
//! - [`Provider`]: the provider chosen by configuration; every caller goes through it.
//! - [`sandbox`]: test tokens, configurable latency, Stripe-like idempotency keys, a ledger in
//!   Postgres (shared by every process, as a real provider's is), signed webhooks.
//! - [`stripe`]: PaymentIntents over HTTPS with `Idempotency-Key`.
//! - [`signature`]: `t=<unix>,v1=<hex>[,v1=…]`, HMAC-SHA256 over `"{t}.{raw body}"`, with a
//!   tolerance window; several `v1` values accepted (secret rotation).
//! - [`webhook`]: the Stripe-shaped event envelope both providers send.
//! - [`delivery`]: signed webhook delivery, retried, bounded in flight (both sandboxes).

pub mod delivery;
pub mod sandbox;
pub mod signature;
pub mod stripe;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Now, in unix seconds: the unit of payments' `created`, of webhook signatures' timestamps and
/// of reconciliation's windows.
pub fn now_unix() -> i64 {
    i64::try_from(runtime::clock::unix_secs()).unwrap_or(i64::MAX)
}

/// The largest single charge, in minor units: Stripe's limit (99,999,999 for most currencies).
/// A charge is always of 1 to this many minor units: a provider never sees zero, a negative
/// amount or a wrapped sum.
pub const MAX_CHARGE_CENTS: i64 = 99_999_999;

/// A charge, as checkout asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRequest {
    /// Derived from the hold and the client's key: a replay must reach the same charge.
    pub idempotency_key: String,
    /// Amount in the currency's minor unit.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// The client-side payment token (never card data: PCI stays with the provider).
    pub token: String,
    /// Our references (order, hold, event), stored with the payment so reconciliation can find
    /// what a payment was for without any state of ours.
    pub metadata: BTreeMap<String, String>,
}

/// What the provider says about a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChargeOutcome {
    /// Money captured.
    Succeeded {
        /// The provider's reference (dedupe webhooks on it).
        payment_id: String,
    },
    /// Refused by the issuer; nothing captured.
    Declined {
        /// The provider's reference.
        payment_id: String,
        /// Why, as the provider says.
        reason: String,
    },
    /// The buyer must act (3-D Secure); the charge completes later, reported by webhook.
    RequiresAction {
        /// The provider's reference.
        payment_id: String,
    },
}

/// A payment's state at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for the buyer (3-D Secure).
    RequiresAction,
    /// Accepted, not settled yet.
    Processing,
    /// Captured.
    Succeeded,
    /// Refused; nothing captured.
    Declined,
    /// Captured, then given back in full.
    Refunded,
}

/// A payment as the provider reports it (retrieve, list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The provider's reference.
    pub id: String,
    /// Its state now.
    pub status: PaymentStatus,
    /// Amount in minor units.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// The metadata the charge carried.
    pub metadata: BTreeMap<String, String>,
    /// When it was created (unix seconds).
    pub created: i64,
}

/// One page of a listing of captured payments ([`Provider::list_succeeded_page`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentPage {
    /// The page's captured (succeeded, not refunded) payments, in the provider's order.
    pub payments: Vec<Payment>,
    /// Where the next page starts (the `after` of the next call); `None`: this was the last.
    pub next: Option<String>,
}

/// What a refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The money is back with the buyer (now, or already before: refunds are idempotent).
    Refunded,
    /// Nothing was captured under this reference: nothing to give back.
    NotCaptured,
}

/// The provider could not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// No answer within the deadline: the charge may or may not have happened. Retry with the
    /// same idempotency key, or let reconciliation resolve it.
    #[error("the payment provider did not answer in time")]
    Timeout,
    /// The idempotency key was used before with other parameters (a bug on our side).
    #[error("idempotency key reused with other parameters")]
    IdempotencyMismatch,
    /// The provider refused the payment token itself (unknown, or already used), before any
    /// charge: the buyer's mistake, answered as a decline. Carries the provider's code.
    #[error("the payment token was refused: {0}")]
    TokenRefused(String),
    /// Transport or provider failure.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// An amount outside 1..=[`MAX_CHARGE_CENTS`] (a bug on our side: callers check first).
    /// Refused before the provider is asked.
    #[error("a charge of {0} minor units is outside 1..={MAX_CHARGE_CENTS}")]
    InvalidAmount(i64),
}

/// The provider chosen by configuration. Cheap to clone.
#[derive(Clone)]
pub enum Provider {
    /// The embedded sandbox.
    Sandbox(Arc<sandbox::Sandbox>),
    /// Stripe (or its local stub).
    Stripe(Arc<stripe::Stripe>),
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sandbox(_) => "Provider::Sandbox",
            Self::Stripe(_) => "Provider::Stripe",
        })
    }
}

impl Provider {
    /// Charges (or replays the first result of) an idempotency key.
    pub async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, PaymentError> {
        if !(1..=MAX_CHARGE_CENTS).contains(&request.amount_cents) {
            return Err(PaymentError::InvalidAmount(request.amount_cents));
        }
        match self {
            Self::Sandbox(p) => p.charge(request).await,
            Self::Stripe(p) => p.charge(request).await,
        }
    }

    /// The payment's state now; `None` when the provider does not know it.
    pub async fn retrieve(&self, payment_id: &str) -> Result<Option<Payment>, PaymentError> {
        match self {
            Self::Sandbox(p) => p.retrieve(payment_id).await,
            Self::Stripe(p) => p.retrieve(payment_id).await,
        }
    }

    /// Refunds a captured payment in full, idempotently.
    pub async fn refund(&self, payment_id: &str) -> Result<RefundOutcome, PaymentError> {
        match self {
            Self::Sandbox(p) => p.refund(payment_id).await,
            Self::Stripe(p) => p.refund(payment_id).await,
        }
    }

    /// One page of the captured (succeeded, not refunded) payments created from `since_unix`
    /// to `until_unix`, both included: what reconciliation matches with orders. `after` is
    /// `None` for the first page, then the previous page's [`PaymentPage::next`]. A listing of
    /// any length is read a page at a time, and may be resumed from any page (by another
    /// process, after a restart): the cursor is all it needs.
    pub async fn list_succeeded_page(
        &self,
        since_unix: i64,
        until_unix: i64,
        after: Option<&str>,
    ) -> Result<PaymentPage, PaymentError> {
        match self {
            Self::Sandbox(p) => p.list_succeeded_page(since_unix, until_unix, after).await,
            Self::Stripe(p) => {
                p.list_succeeded_page(since_unix, Some(until_unix), after)
                    .await
            }
        }
    }
}
