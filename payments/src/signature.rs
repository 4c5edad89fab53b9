//! Webhook signatures in Stripe's scheme: header `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where
//! each `v1` is HMAC-SHA256 with the endpoint secret over `"{t}.{raw body}"`. The raw bytes are
//! signed, never re-serialised JSON; a timestamp outside the tolerance is refused (replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's default tolerance.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no `v1=` in the header.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is too old or too far in the future.
    #[error("signature timestamp outside the tolerance")]
    OutsideTolerance,
    /// No `v1` value matches.
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    let mut mac = HmacSha256::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for a body (the sandbox signs its webhooks with it).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// Longest `Stripe-Signature` header accepted. Stripe sends one `t=` and a `v1=` per live
/// secret (two during a rotation), about 150 bytes; anything much longer is not a provider's.
pub const MAX_HEADER_BYTES: usize = 1024;

/// Most `v1=` values compared. Each is one constant-time comparison against the one MAC
/// computed per request; the cap keeps a forged header from costing more than a real one.
pub const MAX_CANDIDATES: usize = 4;

/// Length of a hex-encoded HMAC-SHA256.
const HEX_MAC_LEN: usize = 64;

/// Verifies a header against the raw body at `now` (unix seconds).
///
/// Cheap before it is expensive: the header's length, its shape, the number of candidates and
/// the timestamp are checked before the body is hashed, and the MAC is computed once whatever
/// the number of candidates (an attacker's 5,000 `v1=` values once cost 5,000 HMACs of a 64 KB
/// body).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    if header.len() > MAX_HEADER_BYTES {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut candidates = Vec::with_capacity(2);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => {
                if candidates.len() == MAX_CANDIDATES {
                    return Err(SignatureError::Malformed);
                }
                // Only a well-formed MAC is worth a comparison.
                if v.len() == HEX_MAC_LEN {
                    if let Ok(bytes) = hex::decode(v) {
                        candidates.push(bytes);
                    }
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::OutsideTolerance);
    }
    if candidates.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    // The body is hashed once; each candidate costs only the MAC's finalisation and a
    // constant-time comparison.
    let keyed = mac(secret, timestamp, body);
    let matches = candidates
        .iter()
        .any(|candidate| keyed.clone().verify_slice(candidate).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn a_signed_body_verifies_and_any_change_is_refused() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, 1_700_000_010, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
        // One byte of the body, the secret, or the timestamp changed: refused.
        let mut tampered = BODY.to_vec();
        tampered[3] ^= 1;
        assert_eq!(
            verify(SECRET, &header, &tampered, 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, BODY, 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
        let shifted = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            verify(SECRET, &shifted, BODY, 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tolerance_rotation_and_malformed_headers() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, 1_700_000_301, 300),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            verify(SECRET, &header, BODY, 1_699_999_699, 300),
            Err(SignatureError::OutsideTolerance)
        );
        // Several v1 values (the old and the new secret during a rotation): any match is enough.
        let old = sign(b"old-secret", 1_700_000_000, BODY);
        let v1_old = old.split("v1=").nth(1).unwrap_or_default();
        let both = format!("{header},v1={v1_old}");
        assert_eq!(
            verify(b"old-secret", &both, BODY, 1_700_000_000, 300),
            Ok(())
        );
        assert_eq!(verify(SECRET, &both, BODY, 1_700_000_000, 300), Ok(()));
        for bad in [
            "",
            "t=1700000000",
            "v1=abcd",
            "t=x,v1=abcd",
            "t=1700000000,v1=zz",
        ] {
            assert!(
                verify(SECRET, bad, BODY, 1_700_000_000, 300).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_forged_header_costs_no_more_than_a_real_one() {
        let body = vec![b'x'; 64 * 1024];
        let good = sign(SECRET, 1_700_000_000, &body);
        let v1 = good.split("v1=").nth(1).unwrap_or_default().to_owned();
        // More candidates than a rotation needs: refused before any hashing.
        let one_wrong = format!("t=1700000000,v1={}", "0".repeat(64));
        let five: String = std::iter::once("t=1700000000".to_owned())
            .chain((0..MAX_CANDIDATES + 1).map(|_| format!("v1={}", "0".repeat(64))))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            verify(SECRET, &five, &body, 1_700_000_000, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, &one_wrong, &body, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        // A header past the length cap: refused, even with the right MAC in it.
        let long = format!("{good},{}", "x".repeat(MAX_HEADER_BYTES));
        assert_eq!(
            verify(SECRET, &long, &body, 1_700_000_000, 300),
            Err(SignatureError::Malformed)
        );
        // The right MAC among the allowed number of wrong ones still verifies.
        let mixed = format!(
            "t=1700000000,v1={},v1={},v1={v1}",
            "0".repeat(64),
            "1".repeat(64)
        );
        assert_eq!(verify(SECRET, &mixed, &body, 1_700_000_000, 300), Ok(()));
        // The same 5,000-value header that once cost 5,000 HMACs of the body.
        let attack: String = std::iter::once("t=1700000000".to_owned())
            .chain((0..5_000).map(|_| format!("v1={}", "0".repeat(64))))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            verify(SECRET, &attack, &body, 1_700_000_000, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn matches_a_known_vector() {
        // HMAC-SHA256("whsec_test", "1700000000.{body}") computed independently (Python's hmac).
        assert_eq!(
            sign(SECRET, 1_700_000_000, BODY),
            "t=1700000000,v1=001ce3ef73e456cedaab328328720d3ad59defb8bbd0f1518f46c04ad4ac0bb7"
        );
    }
}
