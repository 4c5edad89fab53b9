//! Bearer JWTs (HS256, `jsonwebtoken`): the subject is the user id, the role one of gate,
//! buyer, organizer, admin. A missing or bad token is 401; a valid token without the role is 403.
//! A gate (a scanner at an entrance; its subject is the gate's id) can do nothing but check
//! tickets in, and only a gate can.

use std::time::Duration;

use coordinator::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::Filter;

use crate::errors::ApiError;

/// What a token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A scanner at an entrance: checks tickets in, nothing else. Lowest, so it passes no
    /// buyer's check; [`Principal::require_gate`] admits it alone.
    Gate,
    /// Browse, hold, buy.
    Buyer,
    /// Manage venues and events (and everything a buyer can).
    Organizer,
    /// Everything, including the admin listener.
    Admin,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    exp: u64,
    /// Required: without it a token's lifetime cannot be bounded.
    iat: Option<u64>,
    /// Honoured when present (not before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

/// Clock skew allowed between the token's issuer and us, s.
const LEEWAY_SECS: u64 = 30;

/// The default of `auth.max_token_lifetime_secs`.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's subject.
    pub user: UserId,
    /// The token's role.
    pub role: Role,
}

impl Principal {
    /// 403 unless the caller is a gate: no other role scans tickets (an organizer's token on a
    /// scanner would be a token too powerful to leave at an entrance).
    pub fn require_gate(&self) -> Result<(), ApiError> {
        if self.role == Role::Gate {
            Ok(())
        } else {
            Err(ApiError::client(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs the gate role",
            ))
        }
    }

    /// 403 unless the caller has at least `role` (admin > organizer > buyer > gate).
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::client(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this needs the {role:?} role").to_lowercase(),
            ))
        }
    }
}

/// Why an admission token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionRefusal {
    /// Not a token of ours.
    Malformed,
    /// Signed for another buyer or event, or forged.
    Invalid,
    /// Its shopping window is over.
    Expired,
}

/// The keys, from the configured secret.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Signs admission tokens; derived from the secret so the two kinds of token never verify
    /// as each other.
    admission: [u8; 32],
    /// The ticket-signing seed used when the settings name no ticket key: derived from the
    /// secret like `admission`, so it never equals the token key.
    ticket_seed: [u8; 32],
    /// The longest `exp - iat` accepted.
    max_lifetime: Duration,
}

/// Shortest accepted signing key.
pub const MIN_SECRET_BYTES: usize = 32;

impl Keys {
    /// Builds the keys; refuses a secret shorter than [`MIN_SECRET_BYTES`].
    pub fn new(secret: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "auth.jwt_secret must be at least {MIN_SECRET_BYTES} bytes"
        );
        let admission = {
            use hmac::Mac;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)?;
            mac.update(b"seat-admission-v1");
            mac.finalize().into_bytes().into()
        };
        let ticket_seed = {
            use hmac::Mac;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)?;
            mac.update(b"seat-ticket-signing-v1");
            mac.finalize().into_bytes().into()
        };
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            admission,
            ticket_seed,
            max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
        })
    }

    /// Ticket keys derived from the token secret (key id `jwt-derived`), for a deployment
    /// whose settings name none.
    pub fn derived_ticket_keys(&self) -> orders::tickets::TicketKeys {
        orders::tickets::TicketKeys::new(&self.ticket_seed, "jwt-derived")
            .expect("the derived key id is a valid key id")
    }

    /// The same keys, accepting tokens that claim at most `max` of lifetime.
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// The keys from `auth.jwt_secret` (`SEATS_AUTH__JWT_SECRET`); an error naming the setting
    /// when it is missing.
    pub fn from_settings(settings: &settings::Settings) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let auth = settings.auth.as_ref().ok_or_else(|| {
            anyhow::anyhow!("auth.jwt_secret is not set: export SEATS_AUTH__JWT_SECRET (32+ bytes)")
        })?;
        Ok(Self::new(auth.jwt_secret.expose_secret().as_bytes())?
            .with_max_lifetime(Duration::from_secs(auth.max_token_lifetime_secs)))
    }

    /// An admission token: `v1.{expires_unix}.{hex HMAC-SHA256 over "event|user|expires"}`,
    /// bound to the buyer, the event and an expiry (the shopping window).
    pub fn mint_admission(
        &self,
        event: &coordinator::EventId,
        user: &UserId,
        expires_unix: i64,
    ) -> String {
        format!(
            "v1.{expires_unix}.{}",
            hex::encode(self.admission_mac(event, user, expires_unix))
        )
    }

    fn admission_mac(
        &self,
        event: &coordinator::EventId,
        user: &UserId,
        expires_unix: i64,
    ) -> Vec<u8> {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.admission)
            .expect("HMAC takes keys of any length");
        mac.update(format!("{event}|{user}|{expires_unix}").as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks an admission token for this event and buyer at `now_unix`.
    pub fn verify_admission(
        &self,
        token: &str,
        event: &coordinator::EventId,
        user: &UserId,
        now_unix: i64,
    ) -> Result<(), AdmissionRefusal> {
        if self.admission_expiry(token, event, user)? <= now_unix {
            return Err(AdmissionRefusal::Expired);
        }
        Ok(())
    }

    /// The expiry (unix seconds) of an admission token of ours for this event and buyer, its
    /// signature and spelling checked; whether it has passed is the caller's to judge, against
    /// the clock that minted it (Redis `TIME`, through the waiting room's answer).
    pub fn admission_expiry(
        &self,
        token: &str,
        event: &coordinator::EventId,
        user: &UserId,
    ) -> Result<i64, AdmissionRefusal> {
        use hmac::Mac;
        let mut parts = token.splitn(3, '.');
        let (Some("v1"), Some(exp), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AdmissionRefusal::Malformed);
        };
        // Canonical encoding only, as minted: a decimal expiry without sign or leading zeros
        // and 64 lowercase hex digits. Anything else ("+17…", "017…", upper case) would be a
        // second spelling of one token, and a cache or a log keyed by the token would count
        // one admission as several.
        let exp_value: i64 = exp.parse().map_err(|_| AdmissionRefusal::Malformed)?;
        let canonical_sig = sig.len() == 64
            && sig
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if exp_value.to_string() != exp || !canonical_sig {
            return Err(AdmissionRefusal::Malformed);
        }
        let exp = exp_value;
        let sig = hex::decode(sig).map_err(|_| AdmissionRefusal::Malformed)?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.admission)
            .map_err(|_| AdmissionRefusal::Malformed)?;
        mac.update(format!("{event}|{user}|{exp}").as_bytes());
        // Constant-time comparison; a token for another buyer or event fails here.
        mac.verify_slice(&sig)
            .map_err(|_| AdmissionRefusal::Invalid)?;
        Ok(exp)
    }

    /// Mints a token (ticketctl, tests).
    pub fn mint(&self, user: &UserId, role: Role, ttl: Duration) -> anyhow::Result<String> {
        let now = runtime::clock::unix_secs();
        let claims = Claims {
            sub: user.to_string(),
            role,
            iat: Some(now),
            exp: now + ttl.as_secs(),
            nbf: None,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| unauthorized(plain_reason(e.kind())))?;
        let claims = data.claims;
        let iat = claims
            .iat
            .ok_or_else(|| unauthorized("the token has no iat (issued-at) claim"))?;
        let now = runtime::clock::unix_secs();
        if iat > now.saturating_add(LEEWAY_SECS) {
            return Err(unauthorized("the token says it was issued in the future"));
        }
        if claims.exp.saturating_sub(iat) > self.max_lifetime.as_secs() {
            return Err(unauthorized(&format!(
                "the token's lifetime is longer than the {} s this service accepts",
                self.max_lifetime.as_secs()
            )));
        }
        let user = UserId::parse(&claims.sub)
            .map_err(|_| unauthorized("the token's subject is not a valid user id"))?;
        Ok(Principal {
            user,
            role: claims.role,
        })
    }
}

/// Why a token was refused, in words for its holder: never the JWT library's internals (they
/// name Rust types and help a forger more than a client).
fn plain_reason(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        ErrorKind::InvalidSignature => "the token's signature does not verify",
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the token must be signed with HS256"
        }
        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (sub, exp, iat)",
        ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => {
            "the token's claims are not in the expected form (sub, role, exp, iat)"
        }
        _ => "the token is not a well-formed JWT",
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::client(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// Extracts the caller from `Authorization: Bearer <jwt>`; rejects with 401.
pub fn authenticated(
    keys: Keys,
) -> impl Filter<Extract = (Principal,), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned().and_then(move |headers: warp::http::HeaderMap| {
        let keys = keys.clone();
        async move {
            // Read as bytes: a header that is not visible ASCII is a bad credential (401), not
            // a malformed request.
            let header = headers
                .get("authorization")
                .ok_or_else(|| unauthorized("send Authorization: Bearer <token>"))?
                .to_str()
                .map_err(|_| unauthorized("the Authorization header is not readable text"))?
                .to_owned();
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or_else(|| unauthorized("the Authorization header must be Bearer <token>"))?;
            keys.verify(token.trim()).map_err(warp::reject::custom)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_verify_and_refuse() {
        let keys = Keys::new(&[7u8; 32]).expect("key");
        let user = UserId::parse("alice").expect("valid");
        let token = keys
            .mint(&user, Role::Buyer, Duration::from_secs(60))
            .expect("mint");
        let p = keys.verify(&token).expect("valid token");
        assert_eq!((p.user.clone(), p.role), (user.clone(), Role::Buyer));
        assert!(p.require(Role::Organizer).is_err());
        let other = Keys::new(&[8u8; 32]).expect("key");
        assert!(
            other.verify(&token).is_err(),
            "another key's token is refused"
        );
        let expired = keys.mint(&user, Role::Admin, Duration::ZERO).expect("mint");
        // exp = now; leeway 30 s would accept it, so forge one from the past.
        let old = Claims {
            sub: "alice".into(),
            role: Role::Admin,
            iat: Some(1),
            exp: 2,
            nbf: None,
        };
        let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &keys.encoding)
            .expect("encode");
        assert!(keys.verify(&old).is_err());
        assert!(keys.verify(&expired).is_ok());
        assert!(Keys::new(b"short").is_err());
    }

    fn forge(keys: &Keys, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
            .expect("encode")
    }

    fn refusal(keys: &Keys, token: &str) -> String {
        match keys.verify(token) {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => {
                assert_eq!(e.status, StatusCode::UNAUTHORIZED);
                e.message
            }
        }
    }

    #[test]
    fn lifetime_nbf_and_iat_are_enforced_with_plain_messages() {
        let keys = Keys::new(&[7u8; 32])
            .expect("key")
            .with_max_lifetime(Duration::from_secs(3_600));
        let now = runtime::clock::unix_secs();
        let ok =
            serde_json::json!({"sub": "alice", "role": "buyer", "iat": now, "exp": now + 3_600});
        assert!(keys.verify(&forge(&keys, ok)).is_ok());
        // Ten years ahead: refused, however well signed.
        let decade = serde_json::json!({"sub": "alice", "role": "buyer", "iat": now,
            "exp": now + 10 * 365 * 86_400});
        assert!(refusal(&keys, &forge(&keys, decade)).contains("lifetime"));
        // Issued "later" to shrink the apparent lifetime: refused as from the future.
        let future_iat = serde_json::json!({"sub": "alice", "role": "buyer", "iat": now + 86_400,
            "exp": now + 86_400 + 60});
        assert!(refusal(&keys, &forge(&keys, future_iat)).contains("future"));
        // nbf honoured.
        let early = serde_json::json!({"sub": "alice", "role": "buyer", "iat": now,
            "nbf": now + 600, "exp": now + 1_200});
        assert!(refusal(&keys, &forge(&keys, early)).contains("not valid yet"));
        // iat required.
        let no_iat = serde_json::json!({"sub": "alice", "role": "buyer", "exp": now + 60});
        assert!(refusal(&keys, &forge(&keys, no_iat)).contains("iat"));
        // Messages never carry the library's internals or Rust type names.
        for token in [
            "garbage".to_owned(),
            "a.b.c".to_owned(),
            forge(
                &keys,
                serde_json::json!({"sub": 5, "role": "buyer", "iat": now, "exp": now + 60}),
            ),
            forge(
                &keys,
                serde_json::json!({"sub": "a", "role": "king", "iat": now, "exp": now + 60}),
            ),
            forge(
                &keys,
                serde_json::json!({"sub": "a", "role": "buyer", "iat": now, "exp": 1}),
            ),
            forge(
                &Keys::new(&[9u8; 32]).expect("key"),
                serde_json::json!({"sub": "a"}),
            ),
        ] {
            let message = refusal(&keys, &token);
            for leak in [
                "Error", "Kind", "Json", "Base64", "u64", "String", "struct", "enum", "line ",
            ] {
                assert!(!message.contains(leak), "{message:?} leaks {leak:?}");
            }
        }
    }

    #[test]
    fn admission_tokens_have_one_spelling() {
        let keys = Keys::new(&[7u8; 32]).expect("key");
        let event = coordinator::EventId::parse("show").expect("event");
        let user = UserId::parse("alice").expect("user");
        let token = keys.mint_admission(&event, &user, 2_000_000_000);
        assert_eq!(keys.verify_admission(&token, &event, &user, 1_000), Ok(()));
        let (exp, sig) = token
            .strip_prefix("v1.")
            .and_then(|t| t.split_once('.'))
            .expect("shape");
        for respelled in [
            format!("v1.+{exp}.{sig}"),
            format!("v1.0{exp}.{sig}"),
            format!("v1.{exp}.{}", sig.to_uppercase()),
            format!("v1.{exp}.{sig}00"),
        ] {
            assert_eq!(
                keys.verify_admission(&respelled, &event, &user, 1_000),
                Err(AdmissionRefusal::Malformed),
                "{respelled}"
            );
        }
    }
}
