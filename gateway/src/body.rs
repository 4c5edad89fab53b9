//! JSON request bodies: a named size limit (413), `application/json` only (415), malformed JSON
//! (400) told apart from well-formed JSON that breaks the schema (422, unknown fields included).
//! An integer may be written with a zero fraction (`178.0`): JSON Schema's `integer` is any
//! number without a fractional part, and that is what the OpenAPI document promises.

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
        .and_then(|raw: Bytes| async move { parse::<T>(&raw).map_err(warp::reject::custom) })
}

/// Parses a body. The direct parse serves every ordinary request; only one that it refuses on
/// its data is parsed again with integral floats made integers, and keeps the first error if
/// that does not help either.
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let first = match serde_json::from_slice::<T>(raw) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    if first.classify() != serde_json::error::Category::Data {
        return Err(ApiError::client(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            plain_serde_error(&first),
        ));
    }
    serde_json::from_slice::<serde_json::Value>(raw)
        .ok()
        .and_then(|mut value| integral_floats_as_integers(&mut value).then_some(value))
        .and_then(|value| serde_json::from_value::<T>(value).ok())
        .ok_or_else(|| {
            ApiError::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                plain_serde_error(&first),
            )
        })
}

/// Rewrites every float without a fractional part that fits an `i64` or a `u64` (`178.0`,
/// `1e3`) as that integer; whether any was.
fn integral_floats_as_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64() else { return false };
            // The bounds are exact powers of two, so the comparisons are exact too.
            let integer = if f.fract() != 0.0 {
                None
            } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                Some(serde_json::Number::from(f as i64))
            } else if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                Some(serde_json::Number::from(f as u64))
            } else {
                None
            };
            match integer {
                Some(i) => {
                    *n = i;
                    true
                }
                None => false,
            }
        }
        // Every element is visited: no short cut once one was rewritten.
        Value::Array(items) => {
            let mut any = false;
            for item in items {
                any |= integral_floats_as_integers(item);
            }
            any
        }
        Value::Object(fields) => {
            let mut any = false;
            for field in fields.values_mut() {
                any |= integral_floats_as_integers(field);
            }
            any
        }
        _ => false,
    }
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
mod plain_messages {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        count: u32,
        offset: Option<i64>,
        #[serde(default)]
        prices: std::collections::BTreeMap<String, i64>,
        #[serde(default)]
        rate: f64,
    }

    #[test]
    fn an_integer_may_have_a_zero_fraction_and_nothing_else() {
        let ok: Sample =
            parse(br#"{"count": 178.0, "offset": -3.0, "prices": {"a": 1e3}, "rate": 2.0}"#)
                .expect("integral floats are integers");
        assert_eq!(
            (ok.count, ok.offset, ok.prices["a"], ok.rate),
            (178, Some(-3), 1000, 2.0)
        );
        for (body, status) in [
            (&br#"{"count": 178.5}"#[..], 422),
            (br#"{"count": 1e20}"#, 422),
            (br#"{"count": -1.0}"#, 422),
            (br#"{"count": "1"}"#, 422),
            (br#"{"count": 1, "extra": 2.0}"#, 422),
            (br#"{"count": 1"#, 400),
        ] {
            let e = parse::<Sample>(body).expect_err("refused");
            assert_eq!(
                e.status.as_u16(),
                status,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
