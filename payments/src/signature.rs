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

/// Verifies a header against the raw body at `now` (unix seconds).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::OutsideTolerance);
    }
    let matches = candidates.iter().any(|candidate| {
        hex::decode(candidate)
            .map(|bytes| mac(secret, timestamp, body).verify_slice(&bytes).is_ok())
            .unwrap_or(false)
    });
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
    fn matches_a_known_vector() {
        // HMAC-SHA256("whsec_test", "1700000000.{body}") computed independently (Python's hmac).
        assert_eq!(
            sign(SECRET, 1_700_000_000, BODY),
            "t=1700000000,v1=001ce3ef73e456cedaab328328720d3ad59defb8bbd0f1518f46c04ad4ac0bb7"
        );
    }
}
