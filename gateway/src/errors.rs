//! The one JSON error shape, `{"error": {"code": "...", "message": "...", "details": ...}}`, and the single
//! `recover` that turns every rejection into it. Client mistakes are 4xx; a Redis or Postgres
//! failure is a 503, never disguised as a business answer.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reject::Reject;
use warp::{Rejection, Reply};

/// An API error: a status, a stable machine-readable code and a human message.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `unknown_event`.
    pub code: &'static str,
    /// For humans.
    pub message: String,
    /// Machine-readable specifics (the seats that were unavailable, the fields that are wrong);
    /// `null` when there are none.
    pub details: serde_json::Value,
}

impl Reject for ApiError {}

impl ApiError {
    /// A client error.
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).unwrap_or(serde_json::Value::Null);
        self
    }

    /// 404 for a thing that does not exist (or that the caller may not know exists).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_FOUND, code, message)
    }

    /// 422 for a well-formed request that breaks a rule.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 409 naming each seat that was not available and what it is now.
    pub fn seats_unavailable(list: &[coordinator::Unavailable], message: &str) -> Self {
        let seats: Vec<_> = list
            .iter()
            .map(|u| serde_json::json!({"seat_id": u.seat, "state": u.state}))
            .collect();
        Self::conflict("seats_unavailable", message)
            .with_details(serde_json::json!({ "unavailable": seats }))
    }

    /// 404 naming the seats the event does not have.
    pub fn unknown_seats(seats: &[coordinator::SeatId]) -> Self {
        Self::not_found("unknown_seats", "some seats are not part of this event")
            .with_details(serde_json::json!({ "seat_ids": seats }))
    }

    /// 409 for a request that conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::CONFLICT, code, message)
    }

    /// A dependency failed: 503, details logged, not shown.
    pub fn unavailable(what: &'static str, e: impl std::fmt::Display) -> Self {
        tracing::error!(dependency = what, error = %e, "dependency failure");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "dependency_unavailable",
            message: format!("{what} is unavailable; retry shortly"),
            details: serde_json::Value::Null,
        }
    }

    /// An event the catalog has whose inventory Redis does not. On sale at a venue with seats,
    /// that is a 503: the inventory was lost with a primary and the reconciler is rebuilding it,
    /// or it is still opening, and it passes. Otherwise (ended, frozen, never opened, a venue
    /// without seats) nothing will load it: 404.
    pub fn no_inventory(event: &catalog::events::Event, venue_has_seats: bool) -> Self {
        if event.status == catalog::events::EventStatus::OnSale && venue_has_seats {
            Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "inventory_unavailable",
                message: "this event's seats are being loaded; retry shortly".into(),
                details: serde_json::Value::Null,
            }
        } else {
            Self::not_found("unknown_event", "this event has no inventory open")
        }
    }
}

impl From<orders::OrdersError> for ApiError {
    fn from(e: orders::OrdersError) -> Self {
        match e {
            // Postgres failing under checkout is never the client's mistake.
            orders::OrdersError::Db(e) => Self::unavailable("postgres", e),
            orders::OrdersError::Coordinator(e) => e.into(),
            orders::OrdersError::Payment(e) => Self::unavailable("payment provider", e),
            other => Self::unavailable("orders", other),
        }
    }
}

impl From<coordinator::CoordinatorError> for ApiError {
    fn from(e: coordinator::CoordinatorError) -> Self {
        Self::unavailable("redis", e)
    }
}

impl From<catalog::CatalogError> for ApiError {
    fn from(e: catalog::CatalogError) -> Self {
        match e {
            catalog::CatalogError::Coordinator(e) => Self::unavailable("redis", e),
            catalog::CatalogError::Postgres(e) => Self::from(e),
            other => Self::unavailable("postgres", other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // SQLSTATE class 22 (data exception: a NUL byte in text, a value out of range) is the
        // client's input, not an outage.
        if let Some(db) = e.as_database_error() {
            if db.code().is_some_and(|c| c.starts_with("22")) {
                return Self::client(
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    "the input holds a value the catalog cannot store (e.g. a NUL byte)",
                );
            }
        }
        Self::unavailable("postgres", e)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    details: &'a serde_json::Value,
}

/// `Retry-After` of a 503 that names no wait of its own, s.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// Renders an error in the one shape. Inside a request, `details` carries its `request_id` (an
/// object gets the field, `null` becomes an object of it).
pub fn reply(
    status: StatusCode,
    code: &str,
    message: &str,
    details: &serde_json::Value,
) -> warp::reply::Response {
    let traced = crate::request_id::current().and_then(|id| match details {
        serde_json::Value::Null => Some(serde_json::json!({ "request_id": id.as_str() })),
        serde_json::Value::Object(fields) => {
            let mut fields = fields.clone();
            fields.insert("request_id".into(), id.as_str().into());
            Some(serde_json::Value::Object(fields))
        }
        _ => None,
    });
    let body = Body {
        error: Inner {
            code,
            message,
            details: traced.as_ref().unwrap_or(details),
        },
    };
    let mut response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            warp::http::HeaderValue::from_static("Bearer"),
        );
    }
    // When to come back: what the error says, else (an outage) a second, so that clients and
    // proxies back off instead of hammering a dependency that is recovering.
    let retry_after = details
        .get("retry_after_secs")
        .and_then(|s| s.as_u64())
        .or((status == StatusCode::SERVICE_UNAVAILABLE).then_some(UNAVAILABLE_RETRY_AFTER_SECS));
    if let Some(secs) = retry_after {
        if let Ok(v) = warp::http::HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert("retry-after", v);
        }
    }
    response
}

/// The single rejection handler.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let null = serde_json::Value::Null;
    let mut details = &null;
    let (status, code, message) = if let Some(e) = rejection.find::<ApiError>() {
        details = &e.details;
        (e.status, e.code, e.message.clone())
    } else if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route".to_owned(),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route".to_owned(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        (StatusCode::BAD_REQUEST, "invalid_query", e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        (StatusCode::BAD_REQUEST, "invalid_header", e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        (StatusCode::BAD_REQUEST, "missing_header", e.to_string())
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "send a Content-Length".to_owned(),
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "request body too large".to_owned(),
        )
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json".to_owned(),
        )
    } else if format!("{rejection:?}").contains("BodyReadError") {
        // warp keeps this type private: the client closed or broke the body mid-way.
        (
            StatusCode::BAD_REQUEST,
            "body_read_error",
            "the request body could not be read to its end".to_owned(),
        )
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error".to_owned(),
        )
    };
    Ok(reply(status, code, &message, details))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_503_says_when_to_come_back() {
        let outage = ApiError::unavailable("redis", "connection refused");
        let response = reply(outage.status, outage.code, &outage.message, &outage.details);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        // A wait of its own wins; other errors carry none.
        let waited = serde_json::json!({"retry_after_secs": 7});
        let response = reply(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "slow down",
            &waited,
        );
        assert_eq!(response.headers()["retry-after"], "7");
        let response = reply(
            StatusCode::CONFLICT,
            "seats_unavailable",
            "taken",
            &serde_json::Value::Null,
        );
        assert!(response.headers().get("retry-after").is_none());
    }
}
