//! JSON request bodies: a named size limit (413), `application/json` only (415), malformed JSON
//! (400) told apart from well-formed JSON that breaks the schema (422, unknown fields included).

use bytes::Bytes;
use serde::de::DeserializeOwned;
use warp::http::StatusCode;
use warp::Filter;

use crate::errors::ApiError;

/// Largest body of an ordinary API call.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;
/// Largest venue seat map (a 100,000-seat venue is about 10 MB of JSON).
pub const MAX_SEATMAP_BYTES: u64 = 16 * 1024 * 1024;

/// A JSON body of at most `limit` bytes, parsed into `T`.
pub fn json<T: DeserializeOwned + Send>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(warp::header::optional::<u64>("content-length"))
        .and_then(
            move |content_type: Option<String>, length: Option<u64>| async move {
                let is_json = content_type
                    .as_deref()
                    .map(|c| {
                        c.split(';')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .eq_ignore_ascii_case("application/json")
                    })
                    .unwrap_or(false);
                if !is_json {
                    return Err(warp::reject::custom(ApiError::client(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_media_type",
                        "send the body as Content-Type: application/json",
                    )));
                }
                if length.is_some_and(|l| l > limit) {
                    return Err(warp::reject::custom(too_large(limit)));
                }
                Ok(())
            },
        )
        .untuple_one()
        .and(warp::body::content_length_limit(limit))
        .and(warp::body::bytes())
        .and_then(|raw: Bytes| async move {
            serde_json::from_slice::<T>(&raw).map_err(|e| {
                let (status, code) = match e.classify() {
                    serde_json::error::Category::Data => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
                    }
                    _ => (StatusCode::BAD_REQUEST, "malformed_json"),
                };
                warp::reject::custom(ApiError::client(status, code, e.to_string()))
            })
        })
}

pub(crate) fn too_large(limit: u64) -> ApiError {
    ApiError::client(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is larger than {limit} bytes"),
    )
}
