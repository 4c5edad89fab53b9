//! The webhook event envelope, shaped as Stripe's (`{id, type, created, data: {object}}`), which
//! both the sandbox and Stripe send. Handlers act on the payment's *current* state (retrieved
//! from the provider), not on the event's copy: events may arrive late, twice or out of order,
//! and the provider's answer now is the same whichever event woke us.

use serde::Deserialize;

use crate::Payment;

/// The event a provider sends when a payment's money is captured.
pub const PAYMENT_SUCCEEDED: &str = "payment_intent.succeeded";

/// What a handler needs from an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The provider's event id (`evt_…`): deliveries of one event share it.
    pub id: String,
    /// `payment_intent.succeeded`, `charge.refunded`, …
    pub kind: String,
    /// The payment (PaymentIntent) the event is about.
    pub payment_id: String,
    /// The event's copy of the payment's metadata (empty for objects that carry none). A copy
    /// as of the event: what it says about the payment's state may be stale, what it says the
    /// payment was for (our order, hold, buyer) is not.
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// Why a body is not an event we understand.
#[derive(Debug, thiserror::Error)]
#[error("not a payment event: {0}")]
pub struct EnvelopeError(String);

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: Object,
}

#[derive(Deserialize)]
struct Object {
    id: String,
    #[serde(default)]
    object: Option<String>,
    /// Set on charge and refund objects.
    #[serde(default)]
    payment_intent: Option<String>,
    /// A metadata value that is not a string (Stripe's are) leaves the whole map out.
    #[serde(default, deserialize_with = "lenient_metadata")]
    metadata: std::collections::BTreeMap<String, String>,
}

fn lenient_metadata<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// Parses a (verified) body.
pub fn parse(body: &[u8]) -> Result<WebhookEvent, EnvelopeError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| EnvelopeError(e.to_string()))?;
    let object = envelope.data.object;
    let payment_id = match object.object.as_deref() {
        Some("payment_intent") | None => object.id,
        Some(_) => object
            .payment_intent
            .ok_or_else(|| EnvelopeError("the object names no payment_intent".into()))?,
    };
    if envelope.id.is_empty() || payment_id.is_empty() {
        return Err(EnvelopeError("empty id".into()));
    }
    Ok(WebhookEvent {
        id: envelope.id,
        kind: envelope.kind,
        payment_id,
        metadata: object.metadata,
    })
}

/// The envelope of an event about `payment` (what the sandbox sends).
pub fn envelope(event_id: &str, kind: &str, payment: &Payment) -> serde_json::Value {
    serde_json::json!({
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": payment.created,
        "data": {"object": {
            "id": payment.id,
            "object": "payment_intent",
            "status": payment.status,
            "amount": payment.amount_cents,
            "currency": payment.currency.to_lowercase(),
            "metadata": payment.metadata,
        }},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_intent_and_charge_events_name_their_payment() {
        let pi = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent"}}}"#;
        assert_eq!(parse(pi).map(|e| e.payment_id).ok(), Some("pi_1".into()));
        let charge = br#"{"id":"evt_2","type":"charge.refunded","data":{"object":{"id":"ch_1","object":"charge","payment_intent":"pi_2"}}}"#;
        assert_eq!(
            parse(charge).map(|e| e.payment_id).ok(),
            Some("pi_2".into())
        );
        assert!(parse(b"{}").is_err());
        let with_meta = br#"{"id":"evt_4","type":"payment_intent.succeeded","data":{"object":{"id":"pi_4","object":"payment_intent","metadata":{"order_id":"o1"}}}}"#;
        assert_eq!(
            parse(with_meta)
                .map(|e| e.metadata.get("order_id").cloned())
                .ok(),
            Some(Some("o1".into()))
        );
        let odd_meta = br#"{"id":"evt_5","type":"payment_intent.succeeded","data":{"object":{"id":"pi_5","metadata":{"n":1}}}}"#;
        assert_eq!(parse(odd_meta).map(|e| e.metadata.len()).ok(), Some(0));
        assert!(parse(br#"{"id":"evt_3","type":"charge.refunded","data":{"object":{"id":"ch","object":"charge"}}}"#).is_err());
    }
}
