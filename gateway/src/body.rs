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
                warp::reject::custom(ApiError::client(status, code, plain_serde_error(&e)))
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

/// serde's message in the client's terms: JSON's types, never our Rust ones (`expected struct
/// CommitBody`, `expected u32` tell a client nothing and an attacker something).
pub(crate) fn plain_serde_error(e: &serde_json::Error) -> String {
    const WORDS: [(&str, &str); 14] = [
        ("u8", "a non-negative integer"),
        ("u16", "a non-negative integer"),
        ("u32", "a non-negative integer"),
        ("u64", "a non-negative integer"),
        ("usize", "a non-negative integer"),
        ("i8", "an integer"),
        ("i16", "an integer"),
        ("i32", "an integer"),
        ("i64", "an integer"),
        ("isize", "an integer"),
        ("f32", "a number"),
        ("f64", "a number"),
        ("a sequence", "an array"),
        ("a map", "an object"),
    ];
    let text = e.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("expected ") {
        let (head, tail) = rest.split_at(at + "expected ".len());
        out.push_str(head);
        rest = tail;
        // `struct Name`, `tuple struct Name`, `enum Name`, `untagged enum Name`, ...: a Rust
        // type's name follows the keyword.
        let kinds = [
            ("struct ", "an object"),
            ("tuple struct ", "an array"),
            ("unit struct ", "null"),
            ("enum ", "one of the accepted values"),
            ("untagged enum ", "one of the accepted forms"),
            ("internally tagged enum ", "one of the accepted forms"),
            ("adjacently tagged enum ", "one of the accepted forms"),
        ];
        if let Some((kind, word)) = kinds.iter().find(|(k, _)| rest.starts_with(k)) {
            out.push_str(word);
            let name = &rest[kind.len()..];
            let end = name
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(name.len());
            rest = &name[end..];
            continue;
        }
        if let Some((rust, word)) = WORDS.iter().find(|(rust, _)| {
            rest.strip_prefix(rust)
                .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric()))
        }) {
            out.push_str(word);
            rest = &rest[rust.len()..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::plain_serde_error;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct CommitBody {
        key: String,
        ttl: u32,
        parts: Vec<i64>,
    }

    #[test]
    fn serde_messages_speak_json_not_rust() {
        for (body, want) in [
            ("5", "expected an object"),
            (
                r#"{"key":"k","ttl":-1,"parts":[]}"#,
                "expected a non-negative integer",
            ),
            (
                r#"{"key":"k","ttl":"x","parts":[]}"#,
                "expected a non-negative integer",
            ),
            (r#"{"key":"k","ttl":1,"parts":{}}"#, "expected an array"),
            (
                r#"{"key":"k","ttl":1,"parts":["a"]}"#,
                "expected an integer",
            ),
            (r#"{"key":"k"}"#, "missing field `ttl`"),
        ] {
            let e = serde_json::from_str::<CommitBody>(body).expect_err(body);
            let message = plain_serde_error(&e);
            assert!(message.contains(want), "{body}: {message:?}");
            for rust in ["CommitBody", "struct", "u32", "i64", "sequence"] {
                assert!(!message.contains(rust), "{body}: {message:?} names {rust}");
            }
        }
    }
}
