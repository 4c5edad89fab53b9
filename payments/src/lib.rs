//! Payments: the provider interface checkout talks to, an embedded **sandbox** provider that
//! behaves like a real one, and the `Stripe-Signature` webhook scheme.
//!
//! # Layout
//!
//! - [`ChargeRequest`], [`ChargeOutcome`], [`PaymentError`]: the interface. Business outcomes
//!   (declined, needs an action) are outcomes; a provider that cannot answer in time is an error.
//! - [`sandbox`]: test tokens, configurable latency, Stripe-like idempotency keys.
//! - [`signature`]: `t=<unix>,v1=<hex>[,v1=…]`, HMAC-SHA256 over `"{t}.{raw body}"`, with a
//!   tolerance window; several `v1` values accepted (secret rotation).
//!
//! Not here yet (the checkout issue): the Stripe PaymentIntents HTTP client and its local stub,
//! refunds driven by reconciliation, and a sandbox whose idempotency store outlives the process.

pub mod sandbox;
pub mod signature;

use serde::{Deserialize, Serialize};

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
    /// Transport or provider failure.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}
