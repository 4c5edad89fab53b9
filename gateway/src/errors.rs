//! The one JSON error shape, `{"error": {"code": "...", "message": "..."}}`, and the single
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
}

impl Reject for ApiError {}

impl ApiError {
    /// A client error.
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// A dependency failed: 503, details logged, not shown.
    pub fn unavailable(what: &'static str, error: impl std::fmt::Display) -> Self {
        tracing::error!(dependency = what, %error, "dependency failure");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "dependency_unavailable",
            message: format!("{what} is unavailable; retry shortly"),
        }
    }
}

impl From<coordinator::CoordinatorError> for ApiError {
    fn from(e: coordinator::CoordinatorError) -> Self {
        Self::unavailable("redis", e)
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
}

/// Renders an error in the one shape.
pub fn reply(status: StatusCode, code: &str, message: &str) -> warp::reply::Response {
    let body = Body {
        error: Inner { code, message },
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// The single rejection handler.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let (status, code, message) = if let Some(e) = rejection.find::<ApiError>() {
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
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        (StatusCode::BAD_REQUEST, "invalid_body", e.to_string())
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
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error".to_owned(),
        )
    };
    Ok(reply(status, code, &message))
}
