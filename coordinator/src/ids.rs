//! Identifier newtypes, parsed once at the edge so the core never re-validates.
//!
//! Every id that ends up inside a Redis key is restricted to `[A-Za-z0-9_.-]`: no braces (they
//! would change a key's hash tag and so its cluster slot), no spaces (record fields are space
//! separated) and no colons (the key separator).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be 1 to {max} characters of A-Z a-z 0-9 _ . - (got {got:?})")]
pub struct InvalidId {
    /// Which id (e.g. "seat id").
    pub kind: &'static str,
    /// The longest accepted length.
    pub max: usize,
    /// The refused input, cut to 80 characters so a hostile input cannot flood a log.
    pub got: String,
}

fn check(kind: &'static str, max: usize, raw: &str) -> Result<(), InvalidId> {
    let ok = !raw.is_empty()
        && raw.len() <= max
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(InvalidId {
            kind,
            max,
            got: raw.chars().take(80).collect(),
        })
    }
}

macro_rules! key_safe_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The longest accepted id.
            pub const MAX_LEN: usize = $max;

            /// Parses an untrusted string.
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                check($kind, $max, raw)?;
                Ok(Self(raw.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

key_safe_id!(
    /// An event, e.g. `evt-2026-final`.
    EventId, "event id", 64
);
key_safe_id!(
    /// A section of a venue, e.g. `floor-a`.
    SectionId, "section id", 64
);
key_safe_id!(
    /// A seat, unique within its event, e.g. `A-10`.
    SeatId, "seat id", 64
);
key_safe_id!(
    /// The buyer (the subject of the caller's token).
    UserId, "user id", 128
);
key_safe_id!(
    /// The client's idempotency key for a hold request.
    ClientReservationId, "client reservation id", 128
);

/// A hold. Derived from (event, user, client reservation id) so a replayed request finds the
/// same hold instead of creating a second one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HoldId(Uuid);

/// Namespace for hold ids (UUIDv5); a constant so every process derives the same id.
const HOLD_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a4e_93d7_4b0f_8e55_1d2c_3b4a_5f60);

impl HoldId {
    /// The hold id for a request. The parts are joined with a separator that no id may contain,
    /// so two different triples can never produce the same name.
    ///
    /// Its first two bytes are the buyer's tag for the event ([`HoldId::tag_of`]), so every hold
    /// of one buyer at one event lands on the same Redis slot as that buyer's ticket count: the
    /// count is checked and taken in the script that opens the hold, not in a call of its own.
    pub fn derive(event: &EventId, user: &UserId, client_id: &ClientReservationId) -> Self {
        let name = format!("{event}\u{1f}{user}\u{1f}{client_id}");
        let mut bytes = *Uuid::new_v5(&HOLD_NAMESPACE, name.as_bytes()).as_bytes();
        bytes[..2].copy_from_slice(&Self::tag_of(event, user).to_be_bytes());
        Self(Uuid::from_bytes(bytes))
    }

    /// The buyer's tag for an event: 16 bits of a hash of (event, user). Buyers sharing a tag
    /// only share a slot.
    pub fn tag_of(event: &EventId, user: &UserId) -> u16 {
        let name = format!("{event}\u{1f}{user}");
        let bytes = Uuid::new_v5(&HOLD_NAMESPACE, name.as_bytes());
        u16::from_be_bytes([bytes.as_bytes()[0], bytes.as_bytes()[1]])
    }

    /// This hold's tag (its first two bytes; see [`HoldId::derive`]). Any id parses, so an id
    /// that was never derived simply names a record that does not exist.
    pub fn tag(&self) -> u16 {
        u16::from_be_bytes([self.0.as_bytes()[0], self.0.as_bytes()[1]])
    }

    /// Parses an untrusted hold id (a UUID in any standard form).
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        Uuid::parse_str(raw).map(Self).map_err(|_| InvalidId {
            kind: "hold id",
            max: 36,
            got: raw.chars().take(80).collect(),
        })
    }
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_would_break_a_key() {
        for bad in ["", "a b", "x{y}", "a:b", "é", &"x".repeat(65)] {
            assert!(SeatId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            SeatId::parse("A-10").map(|s| s.to_string()),
            Ok("A-10".into())
        );
    }

    #[test]
    fn hold_id_is_stable_and_separates_parts() {
        let e = EventId::parse("e1").expect("valid");
        let u = UserId::parse("u1").expect("valid");
        let c = ClientReservationId::parse("c1").expect("valid");
        assert_eq!(HoldId::derive(&e, &u, &c), HoldId::derive(&e, &u, &c));
        let u2 = UserId::parse("u1c").expect("valid");
        let c2 = ClientReservationId::parse("1").expect("valid");
        assert_ne!(HoldId::derive(&e, &u, &c), HoldId::derive(&e, &u2, &c2));
        let id = HoldId::derive(&e, &u, &c);
        assert_eq!(HoldId::parse(&id.to_string()), Ok(id));
        assert!(HoldId::parse("hold-789").is_err());
    }

    #[test]
    fn a_buyer_s_holds_and_ticket_count_share_one_slot() {
        let e = EventId::parse("e1").expect("valid");
        let u = UserId::parse("u1").expect("valid");
        let slot_of = |key: &str| {
            let open = key.find('{').expect("tagged");
            let close = key[open..].find('}').expect("tagged") + open;
            key[open + 1..close].to_owned()
        };
        let bought = crate::keys::bought(&e, &u);
        for client in ["c1", "c2", "another"] {
            let c = ClientReservationId::parse(client).expect("valid");
            let id = HoldId::derive(&e, &u, &c);
            assert_eq!(id.tag(), HoldId::tag_of(&e, &u));
            assert_eq!(slot_of(&crate::keys::hold(&id)), slot_of(&bought));
            for counted in crate::keys::counted(&id) {
                assert_eq!(slot_of(&counted), slot_of(&bought));
            }
        }
        // Buyers spread over tags (and so over the cluster's primaries).
        let tags: std::collections::HashSet<u16> = (0..1000)
            .map(|i| HoldId::tag_of(&e, &UserId::parse(&format!("u{i}")).expect("valid")))
            .collect();
        assert!(
            tags.len() > 950,
            "{} distinct tags of 1000 buyers",
            tags.len()
        );
    }

    #[test]
    fn deserialize_validates() {
        let ok: Result<SeatId, _> = serde_json::from_str("\"A-1\"");
        assert!(ok.is_ok());
        let bad: Result<SeatId, _> = serde_json::from_str("\"A 1\"");
        assert!(bad.is_err());
    }
}
