//! Webhook delivery as a provider does it, shared by both sandboxes (the embedded one and the
//! provider service in [`crate::stripe::stub`]): Stripe-shaped events, signed with
//! `Stripe-Signature`, sent in the background, retried with backoff, a bounded number in flight.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::Payment;

/// Where a provider delivers its webhooks.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// The gateway's `POST /webhooks/payments` URL.
    pub url: String,
    /// The signing secret shared with the gateway (never printed).
    pub secret: SecretString,
}

/// Webhook deliveries in flight at once, and idle connections kept for them. Unbounded, a
/// checkout burst held one connection per payment open to the gateway it notifies: in a flash
/// sale (250 checkouts/s) several thousand, two file descriptors each in a gateway that is its
/// own webhook target, until the gateway's accept loop failed with "too many open files".
/// Deliveries past this wait their turn, as a provider's would.
pub const MAX_DELIVERIES: usize = 32;

/// Deliveries of one event before it is given up (the first and five retries, 0.2 s doubling).
const ATTEMPTS: usize = 6;

/// Sends events to one target. Cheap to clone.
#[derive(Clone)]
pub struct Deliverer {
    target: Option<WebhookTarget>,
    http: reqwest::Client,
    turns: Arc<tokio::sync::Semaphore>,
    /// Fault injection (the chaos suite): each event is delivered this many times, with the
    /// same event id, as a provider does when it did not see the receiver's answer. 1 in
    /// production.
    copies: u32,
    /// Fault injection: each delivery first waits a random time up to this long, so events of
    /// one payment (and copies of one event) arrive out of order. Zero in production.
    max_delay: Duration,
}

impl Deliverer {
    /// A deliverer to `target`; `None` sends nothing.
    pub fn new(target: Option<WebhookTarget>) -> Self {
        Self {
            target,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .pool_max_idle_per_host(MAX_DELIVERIES)
                .build()
                .unwrap_or_default(),
            turns: Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES)),
            copies: 1,
            max_delay: Duration::ZERO,
        }
    }

    /// Delivers each event `copies` times (0 is read as 1), each copy after a random delay of
    /// up to `max_delay`: the faults of a real provider's delivery, for the chaos suite.
    pub fn with_faults(mut self, copies: u32, max_delay: Duration) -> Self {
        self.copies = copies.max(1);
        self.max_delay = max_delay;
        self
    }

    /// Sends a signed event of `kind` about `payment` in the background, retried with backoff.
    /// Outside a Tokio runtime, or without a target, nothing is sent.
    pub fn send(&self, kind: &str, payment: &Payment) {
        let Some(target) = self.target.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let event_id = format!("evt_sandbox_{}", uuid::Uuid::new_v4().simple());
        let body = crate::webhook::envelope(&event_id, kind, payment).to_string();
        for _ in 0..self.copies {
            let delay = match u64::try_from(self.max_delay.as_millis()).unwrap_or(u64::MAX) {
                0 => Duration::ZERO,
                max => Duration::from_millis(rand::random::<u64>() % max.saturating_add(1)),
            };
            self.deliver(
                &runtime,
                target.clone(),
                event_id.clone(),
                body.clone(),
                delay,
            );
        }
    }

    /// One delivery of a signed event: after `delay`, then retried with backoff.
    fn deliver(
        &self,
        runtime: &tokio::runtime::Handle,
        target: WebhookTarget,
        event_id: String,
        body: String,
        delay: Duration,
    ) {
        let (http, turns) = (self.http.clone(), self.turns.clone());
        runtime.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut pause = Duration::from_millis(200);
            for _ in 0..ATTEMPTS {
                // A turn is held for the delivery only, not for the pause before a retry; the
                // signature is dated when the turn comes.
                let Ok(turn) = turns.acquire().await else {
                    return;
                };
                let header = crate::signature::sign(
                    target.secret.expose_secret().as_bytes(),
                    crate::now_unix(),
                    body.as_bytes(),
                );
                let sent = http
                    .post(&target.url)
                    .header("Stripe-Signature", header)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                drop(turn);
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::debug!(event = %event_id, status = %r.status(), "webhook refused; retrying")
                    }
                    Err(e) => {
                        tracing::debug!(event = %event_id, error = %e, "webhook not delivered; retrying")
                    }
                }
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            tracing::warn!(event = %event_id, "webhook given up after {ATTEMPTS} deliveries");
        });
    }
}
