//! Every request's id: the client's `X-Request-Id` when it is well formed (1 to 64 of
//! `[A-Za-z0-9._-]`, so it is safe in a header, a log line and a JSON string), else a fresh one.
//! The listener ([`crate::listener`]) gives each request its id before anything else runs:
//!
//! - it is echoed in the response's `X-Request-Id` header, on every answer (shed ones too);
//! - every error body carries it as `details.request_id` ([`crate::errors::reply`] reads
//!   [`current`]);
//! - the request's tracing span (`request`, with `request_id`, method and path) encloses
//!   the handler and every coordinator, catalog and orders call it makes, so each log line of the
//!   request carries the id (`SEATS_LOG_FORMAT=json` writes it as a field of the span).

use std::fmt;
use std::future::Future;

use warp::http::HeaderValue;

/// The request and response header.
pub const HEADER: &str = "x-request-id";

/// The longest id taken from a client.
pub const MAX_LEN: usize = 64;

/// A request's id, well formed by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The client's id if it is well formed, else a fresh one.
    pub fn from_header(header: Option<&HeaderValue>) -> Self {
        header
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
            .unwrap_or_else(Self::generate)
    }

    /// `s` as an id: 1 to [`MAX_LEN`] of `[A-Za-z0-9._-]`.
    pub fn parse(s: &str) -> Option<Self> {
        let well_formed = (1..=MAX_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        well_formed.then(|| Self(s.to_owned()))
    }

    /// A fresh id (a random UUID, without hyphens).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    pub fn header_value(&self) -> HeaderValue {
        // Always valid: the id is a few visible ASCII characters.
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

tokio::task_local! {
    static CURRENT: RequestId;
}

/// Runs `future` as the request `id`: [`current`] answers `id` inside it.
pub async fn scope<F: Future>(id: RequestId, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The id of the request being answered; `None` outside one (a background task).
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_id_is_kept_and_anything_else_replaced() {
        let kept = |s: &str| {
            RequestId::from_header(Some(&HeaderValue::from_str(s).expect("a header value")))
        };
        assert_eq!(kept("abc-DEF_1.2").as_str(), "abc-DEF_1.2");
        assert_eq!(kept(&"a".repeat(64)).as_str(), "a".repeat(64));
        for bad in ["", "has space", "semi;colon", "ünï", &"a".repeat(65)] {
            let header = HeaderValue::from_bytes(bad.as_bytes()).expect("a header value");
            let id = RequestId::from_header(Some(&header));
            assert_ne!(id.as_str(), bad);
            assert_eq!(id.as_str().len(), 32, "a fresh id: {id}");
        }
        assert_eq!(RequestId::from_header(None).as_str().len(), 32);
    }
}
