//! The sandbox provider: behaves like a real one, in process, for local use and tests.
//!
//! Test tokens (as Stripe's test cards):
//! - `tok_visa`: succeeds.
//! - `tok_chargeDeclined`: declined (`card_declined`).
//! - `tok_timeout`: the charge succeeds at the provider, but the answer comes only after
//!   [`SandboxConfig::slow_answer`] — longer than a caller's deadline — so the caller sees
//!   [`PaymentError::Timeout`] and must find out later (replay the key, or reconcile).
//! - `tok_requires_action`: needs the buyer's action; [`Sandbox::complete_action`] finishes it.
//! - anything else: declined (`invalid_token`).
//!
//! Idempotency as Stripe's: the same key with the same parameters returns the first result
//! (also when the first call timed out at the caller); the same key with other parameters is
//! [`PaymentError::IdempotencyMismatch`]. The store lives in memory: keys are per process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::{ChargeOutcome, ChargeRequest, PaymentError};

/// Sandbox behaviour.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Added to every answer (0 for benchmarks).
    pub latency: Duration,
    /// How long a `tok_timeout` charge takes to answer.
    pub slow_answer: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            slow_answer: Duration::from_secs(30),
        }
    }
}

/// Idempotency key -> the first request and its outcome.
type Charges = HashMap<String, (ChargeRequest, ChargeOutcome)>;

/// The embedded provider.
pub struct Sandbox {
    config: SandboxConfig,
    charges: Mutex<Charges>,
    refunded: Mutex<std::collections::HashSet<String>>,
}

impl Sandbox {
    /// A sandbox with this behaviour.
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            config,
            charges: Mutex::new(HashMap::new()),
            refunded: Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn store(&self) -> Result<std::sync::MutexGuard<'_, Charges>, PaymentError> {
        self.charges
            .lock()
            .map_err(|_| PaymentError::Unavailable("sandbox store poisoned".into()))
    }

    /// Charges (or replays the first result of) an idempotency key.
    pub async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, PaymentError> {
        let (outcome, replay) = {
            let mut charges = self.store()?;
            match charges.get(&request.idempotency_key) {
                Some((first, _)) if first != request => {
                    return Err(PaymentError::IdempotencyMismatch)
                }
                Some((_, outcome)) => (outcome.clone(), true),
                None => {
                    let payment_id = format!("pi_sandbox_{}", uuid::Uuid::new_v4().simple());
                    let outcome = match request.token.as_str() {
                        "tok_visa" | "tok_timeout" => ChargeOutcome::Succeeded { payment_id },
                        "tok_requires_action" => ChargeOutcome::RequiresAction { payment_id },
                        "tok_chargeDeclined" => ChargeOutcome::Declined {
                            payment_id,
                            reason: "card_declined".into(),
                        },
                        _ => ChargeOutcome::Declined {
                            payment_id,
                            reason: "invalid_token".into(),
                        },
                    };
                    charges.insert(
                        request.idempotency_key.clone(),
                        (request.clone(), outcome.clone()),
                    );
                    (outcome, false)
                }
            }
        };
        // The charge is recorded before the (possibly slow) answer: like a real provider, the
        // money moves even when the caller stops waiting.
        let wait = if request.token == "tok_timeout" && !replay {
            self.config.slow_answer
        } else {
            self.config.latency
        };
        tokio::time::sleep(wait).await;
        Ok(outcome)
    }

    /// Refunds a captured payment (idempotent): `true` when it was captured and is now refunded
    /// or already was, `false` when there is no such captured payment.
    pub fn refund(&self, payment_id: &str) -> Result<bool, PaymentError> {
        let mut refunded = self
            .refunded
            .lock()
            .map_err(|_| PaymentError::Unavailable("sandbox store poisoned".into()))?;
        let captured = self.store()?.values().any(|(_, outcome)| {
            matches!(outcome, ChargeOutcome::Succeeded { payment_id: p } if p == payment_id)
        });
        if captured {
            refunded.insert(payment_id.to_owned());
        }
        Ok(captured)
    }

    /// Payments captured and not refunded: the money the sandbox holds (what reconciliation must
    /// match with orders).
    pub fn kept_payments(&self) -> Result<Vec<String>, PaymentError> {
        let refunded = self
            .refunded
            .lock()
            .map_err(|_| PaymentError::Unavailable("sandbox store poisoned".into()))?
            .clone();
        let mut kept: Vec<String> = self
            .store()?
            .values()
            .filter_map(|(_, outcome)| match outcome {
                ChargeOutcome::Succeeded { payment_id } if !refunded.contains(payment_id) => {
                    Some(payment_id.clone())
                }
                _ => None,
            })
            .collect();
        kept.sort();
        Ok(kept)
    }

    /// Whether a payment was refunded.
    pub fn is_refunded(&self, payment_id: &str) -> bool {
        self.refunded
            .lock()
            .map(|r| r.contains(payment_id))
            .unwrap_or(false)
    }

    /// The buyer completed the action a `tok_requires_action` charge needed: it succeeds.
    pub fn complete_action(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, PaymentError> {
        let mut charges = self.store()?;
        let Some((_, outcome)) = charges.get_mut(idempotency_key) else {
            return Ok(None);
        };
        if let ChargeOutcome::RequiresAction { payment_id } = outcome {
            *outcome = ChargeOutcome::Succeeded {
                payment_id: payment_id.clone(),
            };
        }
        Ok(Some(outcome.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, token: &str, amount: i64) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key.into(),
            amount_cents: amount,
            currency: "USD".into(),
            token: token.into(),
        }
    }

    #[tokio::test]
    async fn test_tokens_behave_like_the_real_ones() {
        let s = Sandbox::new(SandboxConfig::default());
        assert!(matches!(
            s.charge(&req("k1", "tok_visa", 100)).await,
            Ok(ChargeOutcome::Succeeded { .. })
        ));
        assert!(matches!(
            s.charge(&req("k2", "tok_chargeDeclined", 100)).await,
            Ok(ChargeOutcome::Declined { reason, .. }) if reason == "card_declined"
        ));
        assert!(matches!(
            s.charge(&req("k3", "nonsense", 100)).await,
            Ok(ChargeOutcome::Declined { .. })
        ));
        assert!(matches!(
            s.charge(&req("k4", "tok_requires_action", 100)).await,
            Ok(ChargeOutcome::RequiresAction { .. })
        ));
        assert!(matches!(
            s.complete_action("k4"),
            Ok(Some(ChargeOutcome::Succeeded { .. }))
        ));
        assert_eq!(s.complete_action("nope"), Ok(None));
        let Ok(ChargeOutcome::Succeeded { payment_id }) =
            s.charge(&req("k5", "tok_visa", 100)).await
        else {
            panic!("charge")
        };
        assert_eq!(s.refund(&payment_id), Ok(true));
        assert_eq!(s.refund(&payment_id), Ok(true), "idempotent");
        assert!(s.is_refunded(&payment_id));
        assert_eq!(s.refund("pi_unknown"), Ok(false));
    }

    #[tokio::test]
    async fn idempotency_keys_replay_the_first_result_and_refuse_other_parameters() {
        let s = Sandbox::new(SandboxConfig::default());
        let first = s.charge(&req("k", "tok_visa", 2_400)).await;
        assert_eq!(
            s.charge(&req("k", "tok_visa", 2_400)).await,
            first,
            "same key, same answer, charged once"
        );
        assert_eq!(
            s.charge(&req("k", "tok_visa", 9_999)).await,
            Err(PaymentError::IdempotencyMismatch)
        );
        // A declined first result is replayed too (Stripe replays errors).
        let declined = s.charge(&req("d", "tok_chargeDeclined", 1)).await;
        assert_eq!(s.charge(&req("d", "tok_chargeDeclined", 1)).await, declined);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_token_succeeds_after_the_callers_deadline() {
        let s = Sandbox::new(SandboxConfig {
            latency: Duration::ZERO,
            slow_answer: Duration::from_secs(30),
        });
        let request = req("t", "tok_timeout", 500);
        let waited = tokio::time::timeout(Duration::from_secs(2), s.charge(&request)).await;
        assert!(waited.is_err(), "the caller gave up at its deadline");
        // The money moved anyway: a replay with the key answers at once, succeeded.
        assert!(matches!(
            s.charge(&request).await,
            Ok(ChargeOutcome::Succeeded { .. })
        ));
    }
}
