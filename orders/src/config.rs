//! The orders crate's configuration: the payment provider and checkout's deadlines
//! (`[payments]`), and the ticket signing keys (`[tickets]`). The `settings` crate layers them
//! with every other section (defaults, TOML, `SEATS_*`); this crate does not depend on it.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_with::{serde_as, DurationMilliSeconds};

/// Which payment provider checkout charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The embedded sandbox (test tokens; ledger in Postgres).
    Sandbox,
    /// Stripe PaymentIntents (or a stub of it at `stripe_base_url`).
    Stripe,
}

/// Payments and checkout.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payments {
    /// The provider.
    pub provider: ProviderKind,
    /// The webhook signing secret (`whsec_…`) shared with the provider. Without it the webhook
    /// endpoint answers 503: unsigned events are never trusted.
    #[serde(skip_serializing)]
    pub webhook_secret: Option<SecretString>,
    /// Where the sandbox delivers its webhooks (the gateway's `/webhooks/payments`); none when
    /// unset.
    pub sandbox_webhook_url: Option<String>,
    /// Latency the sandbox adds to every answer, ms.
    #[serde(rename = "sandbox_latency_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub sandbox_latency: Duration,
    /// How long a `tok_timeout` charge takes to answer, ms.
    #[serde(rename = "sandbox_slow_answer_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub sandbox_slow_answer: Duration,
    /// Fault injection (`scripts/chaos`): the sandbox delivers every webhook this many times.
    /// 1 in production.
    pub sandbox_webhook_copies: u32,
    /// Fault injection (`scripts/chaos`): each sandbox webhook delivery waits a random time up
    /// to this long first, so deliveries arrive out of order, ms. 0 in production.
    #[serde(rename = "sandbox_webhook_max_delay_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub sandbox_webhook_max_delay: Duration,
    /// Stripe's API base URL.
    pub stripe_base_url: String,
    /// Stripe's secret key (never printed).
    #[serde(skip_serializing)]
    pub stripe_secret_key: Option<SecretString>,
    /// The publishable key browsers tokenize cards with (`pk_…`; public by design).
    pub stripe_publishable_key: Option<String>,
    /// Where browsers reach the provider's card tokenization and 3-D Secure step: the sandbox
    /// provider service's address (`sandbox-provider`). Unset with Stripe itself, whose
    /// Stripe.js knows its own.
    pub stripe_public_url: Option<String>,
    /// How long checkout waits for the provider before answering 202, ms.
    #[serde(rename = "charge_deadline_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub charge_deadline: Duration,
    /// How long checkout waits for the durable writer before answering 202, ms.
    #[serde(rename = "write_deadline_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub write_deadline: Duration,
    /// The commit latency waiting rooms are paced to keep (the gateway slows admission while its
    /// commits take longer, see `gateway::pace`), ms; 0: admission is never slowed.
    #[serde(rename = "pace_target_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub pace_target: Duration,
}

impl Default for Payments {
    fn default() -> Self {
        Self {
            provider: ProviderKind::Sandbox,
            webhook_secret: None,
            sandbox_webhook_url: None,
            sandbox_latency: Duration::ZERO,
            sandbox_slow_answer: Duration::from_secs(30),
            sandbox_webhook_copies: 1,
            sandbox_webhook_max_delay: Duration::ZERO,
            stripe_base_url: "https://api.stripe.com".into(),
            stripe_secret_key: None,
            stripe_publishable_key: None,
            stripe_public_url: None,
            charge_deadline: Duration::from_secs(10),
            write_deadline: Duration::from_secs(5),
            // Half the design's checkout SLO (p99 < 2 s): slowed before it is missed.
            pace_target: Duration::from_secs(1),
        }
    }
}

/// Ticket signatures (`SEATS_TICKETS__SIGNING_KEY`, `SEATS_TICKETS__KEY_ID`). Without them the
/// gateway signs with a key derived from `auth.jwt_secret` (id `jwt-derived`) and says so in its
/// log: fine for development, but a deployment sets its own key so the gates' kit does not
/// change with the token secret.
#[derive(Debug, Clone, Deserialize)]
pub struct Tickets {
    /// The Ed25519 secret seed: base64 of 32 bytes (never printed).
    pub signing_key: SecretString,
    /// Its id, carried in every payload so keys can rotate (`[A-Za-z0-9_.-]{1,32}`).
    pub key_id: String,
    /// Keys rotated out whose tickets are still honoured: key id to base64 of the 32-byte public
    /// key.
    #[serde(default)]
    pub retired_public_keys: std::collections::BTreeMap<String, String>,
}
