//! Tickets: one per live sold seat, issued in the durable writer's transaction (by the
//! statement that writes the sale, after [`revoke_stale_in`]), revoked by a refund
//! ([`revoke_order_in`]) or replaced by a transfer ([`transfer`]). What a gate scans is the ticket's *payload*:
//!
//! ```text
//! base64url(message) "." base64url(signature)      (no padding)
//! message = "st1|{ticket uuid}|{event}|{seat}|{holder}|{kid}"
//! ```
//!
//! signed with Ed25519 (RFC 8032) by the key named `kid`. Every id is `[A-Za-z0-9_.-]`
//! (`coordinator::ids`), so `|` never occurs inside a field. A gate that holds the public keys
//! (the check-in kit) verifies a payload without calling us. The payload is not stored:
//! Ed25519 signatures are deterministic, so signing the row's fields again gives the same
//! payload, and only the gateway ever holds the signing key.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The message's version tag: a payload of another format (or another system) never parses.
const VERSION: &str = "st1";

/// Ticket ids of the writer's tickets are derived from (order, seat), so a replayed write names
/// the same ticket.
const TICKET_NAMESPACE: Uuid = Uuid::from_u128(0x5b7e_0c31_2d94_4f6a_9a18_c0e4_7d23_b1f5);

/// Longest payload a gate may send us: the longest ids signed come to about 460 characters.
pub const MAX_PAYLOAD_LEN: usize = 1024;

/// The id of the writer's ticket for `seat` of `order`.
pub fn ticket_id(order: Uuid, seat: &str) -> Uuid {
    Uuid::new_v5(&TICKET_NAMESPACE, format!("{order}\u{1f}{seat}").as_bytes())
}

/// Why a key from the settings was refused (at start).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not base64 of 32 bytes.
    #[error("{what} must be base64 of 32 bytes")]
    Encoding {
        /// Which setting.
        what: &'static str,
    },
    /// Not an Ed25519 public key.
    #[error("the public key of {kid} is not a valid Ed25519 point")]
    Point {
        /// Its key id.
        kid: String,
    },
    /// A key id that could not be carried in a payload.
    #[error("a key id must be 1 to 32 characters of A-Z a-z 0-9 _ . - (got {0:?})")]
    KeyId(String),
}

fn key_id_ok(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 32
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Decodes a 32-byte key written as base64 (standard or URL-safe, padded or not).
pub fn decode_key(raw: &str, what: &'static str) -> Result<[u8; 32], KeyError> {
    let raw = raw.trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(raw))
        .map_err(|_| KeyError::Encoding { what })?;
    bytes.try_into().map_err(|_| KeyError::Encoding { what })
}

/// The signing key and every key a payload may name. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct TicketKeys {
    signing: SigningKey,
    kid: String,
    /// Every key a payload may be verified with, the signing key's included.
    verifying: BTreeMap<String, VerifyingKey>,
}

impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketKeys")
            .field("kid", &self.kid)
            .field("verifying", &self.verifying.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TicketKeys {
    /// Signs with the Ed25519 key whose 32-byte secret seed is `seed`, named `kid`.
    pub fn new(seed: &[u8; 32], kid: &str) -> Result<Self, KeyError> {
        if !key_id_ok(kid) {
            return Err(KeyError::KeyId(kid.to_owned()));
        }
        let signing = SigningKey::from_bytes(seed);
        let verifying = BTreeMap::from([(kid.to_owned(), signing.verifying_key())]);
        Ok(Self {
            signing,
            kid: kid.to_owned(),
            verifying,
        })
    }

    /// Also accepts payloads signed by a retired key (`public`: its 32-byte public key), so
    /// tickets issued before a rotation still open the gate.
    pub fn with_retired(mut self, kid: &str, public: &[u8; 32]) -> Result<Self, KeyError> {
        if !key_id_ok(kid) {
            return Err(KeyError::KeyId(kid.to_owned()));
        }
        let key = VerifyingKey::from_bytes(public).map_err(|_| KeyError::Point {
            kid: kid.to_owned(),
        })?;
        self.verifying.entry(kid.to_owned()).or_insert(key);
        Ok(self)
    }

    /// The keys the `[tickets]` configuration names.
    pub fn from_config(settings: &crate::config::Tickets) -> Result<Self, KeyError> {
        use secrecy::ExposeSecret;
        let seed = decode_key(settings.signing_key.expose_secret(), "tickets.signing_key")?;
        let mut keys = Self::new(&seed, &settings.key_id)?;
        for (kid, public) in &settings.retired_public_keys {
            keys = keys.with_retired(kid, &decode_key(public, "tickets.retired_public_keys")?)?;
        }
        Ok(keys)
    }

    /// The id of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Every key a payload may name: (kid, base64url of the 32-byte public key).
    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.verifying
            .iter()
            .map(|(kid, key)| PublicKey {
                kid: kid.clone(),
                alg: "Ed25519",
                public_key: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            })
            .collect()
    }

    /// The payload of a ticket, signed with the current key.
    pub fn payload(&self, ticket: Uuid, event: &str, seat: &str, holder: &str) -> String {
        let message = format!(
            "{VERSION}|{}|{event}|{seat}|{holder}|{}",
            ticket.hyphenated(),
            self.kid
        );
        let signature = self.signing.sign(message.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(message.as_bytes()),
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    /// What a payload claims, once its signature is checked against the key it names.
    pub fn verify(&self, payload: &str) -> Result<Claims, Unverified> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(Unverified::Malformed);
        }
        let (message, signature) = payload.split_once('.').ok_or(Unverified::Malformed)?;
        let message = URL_SAFE_NO_PAD
            .decode(message)
            .map_err(|_| Unverified::Malformed)?;
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Unverified::Malformed)?
            .try_into()
            .map_err(|_| Unverified::Malformed)?;
        let text = std::str::from_utf8(&message).map_err(|_| Unverified::Malformed)?;
        let fields: Vec<&str> = text.split('|').collect();
        let [VERSION, ticket, event, seat, holder, kid] = fields[..] else {
            return Err(Unverified::Malformed);
        };
        let key = self.verifying.get(kid).ok_or(Unverified::UnknownKey)?;
        // Strict: refuses the malleable and small-order forms RFC 8032 leaves open, so one
        // ticket has one payload per key.
        key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
            .map_err(|_| Unverified::BadSignature)?;
        let ticket = Uuid::parse_str(ticket).map_err(|_| Unverified::Malformed)?;
        Ok(Claims {
            ticket,
            event: event.to_owned(),
            seat: seat.to_owned(),
            holder: holder.to_owned(),
            kid: kid.to_owned(),
        })
    }
}

/// A verification key as the check-in kit lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicKey {
    /// Its id, as payloads name it.
    pub kid: String,
    /// Always `Ed25519`.
    pub alg: &'static str,
    /// base64url (no padding) of the 32-byte key.
    pub public_key: String,
}

/// What a verified payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The ticket.
    pub ticket: Uuid,
    /// Its event.
    pub event: String,
    /// Its seat.
    pub seat: String,
    /// Who it was issued to.
    pub holder: String,
    /// The key that signed it.
    pub kid: String,
}

/// Why a payload is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unverified {
    /// Not in the payload format.
    Malformed,
    /// Names a key we do not have.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
}

/// A ticket as its holder sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ticket {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The order that bought its seat.
    pub order_id: Uuid,
    /// The event.
    pub event_id: String,
    /// The seat.
    pub seat_id: String,
    /// Who may use it.
    pub holder: String,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// `valid`, `refunded` (its order was refunded) or `transferred` (another ticket replaced it).
    pub status: TicketStatus,
    /// When it was admitted at a gate, if it was.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// The ticket a transfer issued in its place.
    pub replaced_by: Option<Uuid>,
}

/// A ticket's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Opens the gate (once).
    Valid,
    /// Its order was refunded.
    Refunded,
    /// Transferred: the new holder's ticket replaced it.
    Transferred,
}

impl TicketStatus {
    fn from_reason(reason: Option<&str>) -> Self {
        match reason {
            None => Self::Valid,
            Some("transferred") => Self::Transferred,
            Some(_) => Self::Refunded,
        }
    }
}

type TicketRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<Uuid>,
);

const TICKET_COLUMNS: &str = "t.id, t.order_id, t.event_id, t.seat_id, t.holder, t.issued_at, \
     t.revoked_reason::text, c.scanned_at, t.replaced_by";

fn ticket_of(row: TicketRow) -> Ticket {
    let (
        ticket_id,
        order_id,
        event_id,
        seat_id,
        holder,
        issued_at,
        reason,
        checked_in_at,
        replaced_by,
    ) = row;
    Ticket {
        ticket_id,
        order_id,
        event_id,
        seat_id,
        holder,
        issued_at,
        status: TicketStatus::from_reason(reason.as_deref()),
        checked_in_at,
        replaced_by,
    }
}

/// Before the writer issues tickets for seats just sold (`orders/src/writer.rs`, in the
/// statement that writes the sale): a valid ticket left on one of these seats by an order that
/// is no longer paid (none should be: a refund revokes its tickets) must not block the sale
/// Postgres allows; it is revoked as its order's refund would have. `events` and `seats` pair up.
pub async fn revoke_stale_in(
    tx: &mut Transaction<'_, Postgres>,
    events: &[String],
    seats: &[String],
) -> Result<(), sqlx::Error> {
    if seats.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE tickets t SET revoked_at = now(), revoked_reason = 'refunded'
         FROM orders o, UNNEST($1::text[], $2::text[]) AS x(e, s)
         WHERE t.order_id = o.id AND o.status <> 'paid' AND t.revoked_at IS NULL
           AND t.event_id = x.e AND t.seat_id = x.s",
    )
    .bind(events)
    .bind(seats)
    .persistent(false)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Revokes every valid ticket of a refunded order, in the refund's transaction.
pub async fn revoke_order_in(
    tx: &mut Transaction<'_, Postgres>,
    order: Uuid,
    actor: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "WITH revoked AS (
             UPDATE tickets SET revoked_at = now(), revoked_reason = 'refunded'
             WHERE order_id = $1 AND revoked_at IS NULL
             RETURNING id, order_id, event_id, seat_id, revoked_at
         )
         INSERT INTO seat_audit (event_id, seat_id, action, at, actor, order_id, ticket_id, source)
         SELECT event_id, seat_id, 'ticket_revoked', revoked_at, $2, order_id, id,
                'ticket:' || id::text || ':revoked'
         FROM revoked
         ON CONFLICT (source, seat_id) DO NOTHING",
    )
    .bind(order)
    .bind(actor)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// The tickets of an order, when `buyer` bought it: `None` for another buyer's order or no order
/// (the caller cannot tell them apart). Every ticket its seats ever had, transferred ones
/// included, in seat order.
pub async fn of_order(
    db: &PgPool,
    order: Uuid,
    buyer: &str,
) -> Result<Option<Vec<Ticket>>, sqlx::Error> {
    let owner: Option<(String,)> = sqlx::query_as("SELECT user_id FROM orders WHERE id = $1")
        .bind(order)
        .fetch_optional(db)
        .await?;
    if owner.is_none_or(|(user,)| user != buyer) {
        return Ok(None);
    }
    let rows: Vec<TicketRow> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t LEFT JOIN checkins c ON c.ticket_id = t.id
         WHERE t.order_id = $1 ORDER BY t.seat_id, t.issued_at, t.id"
    ))
    .bind(order)
    .fetch_all(db)
    .await?;
    Ok(Some(rows.into_iter().map(ticket_of).collect()))
}

/// The valid tickets `holder` holds (bought or received), newest first, at most `limit`.
pub async fn held_by(db: &PgPool, holder: &str, limit: i64) -> Result<Vec<Ticket>, sqlx::Error> {
    let rows: Vec<TicketRow> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t LEFT JOIN checkins c ON c.ticket_id = t.id
         WHERE t.holder = $1 AND t.revoked_at IS NULL ORDER BY t.issued_at DESC, t.id LIMIT $2"
    ))
    .bind(holder)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(ticket_of).collect())
}

/// One ticket, when `holder` holds it (valid or not).
pub async fn held_one(
    db: &PgPool,
    ticket: Uuid,
    holder: &str,
) -> Result<Option<Ticket>, sqlx::Error> {
    let row: Option<TicketRow> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t LEFT JOIN checkins c ON c.ticket_id = t.id
         WHERE t.id = $1 AND t.holder = $2"
    ))
    .bind(ticket)
    .bind(holder)
    .fetch_optional(db)
    .await?;
    Ok(row.map(ticket_of))
}

/// What a transfer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transferred {
    /// The old ticket is revoked; this one replaces it, for the new holder.
    Done(Ticket),
    /// No such ticket held by the caller.
    NotFound,
    /// To its own holder: nothing to do.
    ToSelf,
    /// The ticket is not valid any more (refunded, or transferred already).
    Revoked(TicketStatus),
    /// Already admitted at a gate: whoever came in keeps the seat.
    CheckedIn,
}

/// Transfers a ticket `from` its holder `to` another user: a new ticket (a new id, so a new
/// payload) for `to`, the old one revoked; both in the audit log. One transaction, the old
/// ticket locked, so two transfers of one ticket cannot both happen.
pub async fn transfer(
    db: &PgPool,
    ticket: Uuid,
    from: &str,
    to: &str,
) -> Result<Transferred, sqlx::Error> {
    let mut tx = db.begin().await?;
    // The order first, as a refund locks it: a refund and a transfer of one of its tickets take
    // turns, so the refund revokes the transfer's new ticket too (or the transfer sees the
    // old one revoked). Without it a refunded order could leave a valid ticket behind.
    sqlx::query(
        "SELECT 1 FROM orders WHERE id = (SELECT order_id FROM tickets WHERE id = $1) FOR UPDATE",
    )
    .bind(ticket)
    .execute(&mut *tx)
    .await?;
    let row: Option<(Uuid, String, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT t.order_id, t.event_id, t.seat_id, t.revoked_reason::text,
                EXISTS (SELECT 1 FROM checkins c WHERE c.ticket_id = t.id)
         FROM tickets t WHERE t.id = $1 AND t.holder = $2 FOR UPDATE",
    )
    .bind(ticket)
    .bind(from)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((order, event, seat, reason, checked_in)) = row else {
        return Ok(Transferred::NotFound);
    };
    if reason.is_some() {
        return Ok(Transferred::Revoked(TicketStatus::from_reason(
            reason.as_deref(),
        )));
    }
    if from == to {
        return Ok(Transferred::ToSelf);
    }
    if checked_in {
        return Ok(Transferred::CheckedIn);
    }
    let new = Uuid::new_v4();
    sqlx::query(
        "UPDATE tickets SET revoked_at = now(), revoked_reason = 'transferred', replaced_by = $2
         WHERE id = $1",
    )
    .bind(ticket)
    .bind(new)
    .execute(&mut *tx)
    .await?;
    let issued: TicketRow = sqlx::query_as(
        "INSERT INTO tickets (id, order_id, event_id, seat_id, holder) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, order_id, event_id, seat_id, holder, issued_at, NULL::text,
                   NULL::timestamptz, NULL::uuid",
    )
    .bind(new)
    .bind(order)
    .bind(&event)
    .bind(&seat)
    .bind(to)
    .fetch_one(&mut *tx)
    .await?;
    let actor = format!("transfer:{from}->{to}");
    sqlx::query(
        "INSERT INTO seat_audit (event_id, seat_id, action, at, actor, order_id, ticket_id, source)
         VALUES ($1, $2, 'ticket_revoked', now(), $3, $4, $5, 'ticket:' || $5::text || ':revoked'),
                ($1, $2, 'ticket_issued', now(), $3, $4, $6, 'ticket:' || $6::text || ':issued')",
    )
    .bind(&event)
    .bind(&seat)
    .bind(&actor)
    .bind(order)
    .bind(ticket)
    .bind(new)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Transferred::Done(ticket_of(issued)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TicketKeys {
        TicketKeys::new(&[3u8; 32], "k1").expect("keys")
    }

    #[test]
    fn a_payload_verifies_and_says_what_was_signed() {
        let keys = keys();
        let id = Uuid::from_u128(42);
        let payload = keys.payload(id, "show", "A-1", "alice");
        assert_eq!(
            payload,
            keys.payload(id, "show", "A-1", "alice"),
            "deterministic"
        );
        let claims = keys.verify(&payload).expect("verifies");
        assert_eq!(
            claims,
            Claims {
                ticket: id,
                event: "show".into(),
                seat: "A-1".into(),
                holder: "alice".into(),
                kid: "k1".into()
            }
        );
    }

    #[test]
    fn tampered_foreign_and_garbage_payloads_are_refused() {
        let keys = keys();
        let payload = keys.payload(Uuid::from_u128(1), "show", "A-1", "alice");
        let (message, signature) = payload.split_once('.').expect("shape");
        let forged_message = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(message).expect("b64"))
                .expect("utf8")
                .replace("A-1", "A-2"),
        );
        assert_eq!(
            keys.verify(&format!("{forged_message}.{signature}")),
            Err(Unverified::BadSignature)
        );
        let other = TicketKeys::new(&[4u8; 32], "k1").expect("keys");
        assert_eq!(
            keys.verify(&other.payload(Uuid::from_u128(1), "show", "A-1", "alice")),
            Err(Unverified::BadSignature)
        );
        let unknown = TicketKeys::new(&[4u8; 32], "k9").expect("keys");
        assert_eq!(
            keys.verify(&unknown.payload(Uuid::from_u128(1), "show", "A-1", "alice")),
            Err(Unverified::UnknownKey)
        );
        for garbage in ["", ".", "abc", "a.b", &"x".repeat(5000), "é.é"] {
            assert_eq!(
                keys.verify(garbage),
                Err(Unverified::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn a_retired_key_still_verifies_its_payloads() {
        let old = TicketKeys::new(&[5u8; 32], "k0").expect("keys");
        let payload = old.payload(Uuid::from_u128(7), "show", "A-1", "alice");
        let public = old.signing.verifying_key().to_bytes();
        let new = keys().with_retired("k0", &public).expect("retired");
        assert_eq!(new.verify(&payload).expect("verifies").kid, "k0");
        assert_eq!(new.public_keys().len(), 2);
        assert!(
            !format!("{new:?}").contains("signing"),
            "Debug hides the secret"
        );
    }

    #[test]
    fn key_ids_and_encodings_are_checked() {
        assert!(TicketKeys::new(&[1u8; 32], "a|b").is_err());
        assert!(TicketKeys::new(&[1u8; 32], "").is_err());
        assert!(decode_key("AAAA", "x").is_err());
        let raw = [9u8; 32];
        assert_eq!(decode_key(&STANDARD.encode(raw), "x").expect("std"), raw);
        assert_eq!(
            decode_key(&URL_SAFE_NO_PAD.encode(raw), "x").expect("url"),
            raw
        );
    }
}
