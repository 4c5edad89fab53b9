//! Every request has an id: the client's `X-Request-Id` when well formed, else a fresh one,
//! echoed in the response header, in every error body's `details.request_id`, and in the log
//! lines of the request (its tracing span).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::Value;
use test_support::stack::{setup, token, Role};

async fn get(base: &str, path: &str, request_id: Option<&str>) -> (StatusCode, String, Value) {
    let mut request = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token("rid", Role::Buyer));
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let echoed = response
        .headers()
        .get("x-request-id")
        .expect("every answer names its request")
        .to_str()
        .unwrap()
        .to_owned();
    (status, echoed, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_error_names_its_request_given_or_made() {
    let (gw, _db, _event) = setup("rid").await;

    // Given: echoed in the header and in the error's details, its other details kept.
    let (status, echoed, body) =
        get(&gw.base, "/events/no-such-event", Some("client-42.a_b")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(echoed, "client-42.a_b");
    assert_eq!(
        body["error"]["details"]["request_id"], "client-42.a_b",
        "{body}"
    );
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string());

    // Absent or malformed: a fresh id, the same in the header and the body.
    for given in [None, Some("has spaces and ;"), Some(&*"x".repeat(65))] {
        let (status, echoed, body) = get(&gw.base, "/events/no-such-event", given).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_ne!(Some(echoed.as_str()), given);
        assert_eq!(echoed.len(), 32, "a fresh id: {echoed}");
        assert_eq!(
            body["error"]["details"]["request_id"],
            echoed.as_str(),
            "{body}"
        );
    }

    // Two requests without an id get two ids.
    let (_, first, _) = get(&gw.base, "/events/no-such-event", None).await;
    let (_, second, _) = get(&gw.base, "/events/no-such-event", None).await;
    assert_ne!(first, second);

    // Another kind of error (a rejected query, not a handler's answer) carries it the same way.
    let (status, echoed, body) = get(&gw.base, "/events?limit=nope", Some("q-1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(echoed, "q-1");
    assert_eq!(body["error"]["details"]["request_id"], "q-1", "{body}");

    // A success is answered with the id too.
    let (status, echoed, _) = get(&gw.base, "/healthz", Some("probe-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echoed, "probe-1");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_json_log_line_carries_the_request_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(runtime::logging::subscriber(
        runtime::logging::Format::Json,
        Some("gateway=debug"),
        move || writer.clone(),
    ))
    .unwrap();
    let (gw, _db, _event) = setup("ridlog").await;

    let (status, _, _) = get(&gw.base, "/events/no-such-event", Some("logged-7")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let line = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "logged-7")
        .unwrap_or_else(|| panic!("no log line of the request in:\n{text}"));
    assert_eq!(line["span"]["name"], "request", "{line}");
    assert_eq!(line["span"]["path"], "/events/no-such-event", "{line}");
    assert_eq!(line["fields"]["status"], 404, "{line}");
}
