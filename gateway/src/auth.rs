//! Bearer JWTs (HS256, `jsonwebtoken`): the subject is the user id, the role one of buyer,
//! organizer, admin. A missing or bad token is 401; a valid token without the role is 403.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    iat: u64,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's subject.
    pub user: UserId,
    /// The token's role.
    pub role: Role,
}

impl Principal {
    /// 403 unless the caller has at least `role` (admin > organizer > buyer).
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
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            admission,
        })
    }

    /// The keys from `auth.jwt_secret` (`SEATS_AUTH__JWT_SECRET`); an error naming the setting
    /// when it is missing.
    pub fn from_settings(settings: &settings::Settings) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let auth = settings.auth.as_ref().ok_or_else(|| {
            anyhow::anyhow!("auth.jwt_secret is not set: export SEATS_AUTH__JWT_SECRET (32+ bytes)")
        })?;
        Self::new(auth.jwt_secret.expose_secret().as_bytes())
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
        use hmac::Mac;
        let mut parts = token.splitn(3, '.');
        let (Some("v1"), Some(exp), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AdmissionRefusal::Malformed);
        };
        let exp: i64 = exp.parse().map_err(|_| AdmissionRefusal::Malformed)?;
        let sig = hex::decode(sig).map_err(|_| AdmissionRefusal::Malformed)?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.admission)
            .map_err(|_| AdmissionRefusal::Malformed)?;
        mac.update(format!("{event}|{user}|{exp}").as_bytes());
        // Constant-time comparison; a token for another buyer or event fails here.
        mac.verify_slice(&sig)
            .map_err(|_| AdmissionRefusal::Invalid)?;
        if exp <= now_unix {
            return Err(AdmissionRefusal::Expired);
        }
        Ok(())
    }

    /// Mints a token (ticketctl, tests).
    pub fn mint(&self, user: &UserId, role: Role, ttl: Duration) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = Claims {
            sub: user.to_string(),
            role,
            iat: now,
            exp: now + ttl.as_secs(),
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
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| unauthorized(&format!("invalid token: {e}")))?;
        let user = UserId::parse(&data.claims.sub)
            .map_err(|e| unauthorized(&format!("invalid token subject: {e}")))?;
        Ok(Principal {
            user,
            role: data.claims.role,
        })
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
            iat: 1,
            exp: 2,
        };
        let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &keys.encoding)
            .expect("encode");
        assert!(keys.verify(&old).is_err());
        assert!(keys.verify(&expired).is_ok());
        assert!(Keys::new(b"short").is_err());
    }
}
