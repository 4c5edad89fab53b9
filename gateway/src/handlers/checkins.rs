//! The gates: `POST /events/{id}/checkins` (one scan, online), `POST /events/{id}/checkins/batch`
//! (an offline gate's scans, uploaded later), `GET /events/{id}/checkin-kit` (what a gate needs
//! to decide alone), all for the gate role only; `GET /events/{id}/checkins` (the organizer's
//! figures: admitted of sold).
//!
//! A scan's verdict is a 200 whatever it says, `invalid` and `wrong_event` included: a gate
//! needs an answer to show, not an error. Errors are for the request itself (a body that is not
//! a scan, no such event, a token that is not a gate's).

use chrono::{DateTime, SubsecRound, Utc};
use orders::checkin::{self, GateId, Mode, OfflineScan, Verdict};
use serde::Deserialize;
use warp::http::StatusCode;
use warp::Rejection;

use super::json_status;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::App;

/// Most scans one upload may carry (its body limit, [`MAX_BATCH_BYTES`], allows this many of
/// the longest payloads).
pub const MAX_BATCH_SCANS: usize = 5_000;
/// Largest upload.
pub const MAX_BATCH_BYTES: u64 = 4 * 1024 * 1024;

/// `POST /events/{id}/checkins`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    /// What the camera read.
    payload: String,
}

/// `POST /events/{id}/checkins/batch`: the lines are read one by one, so each bad one can be
/// named while the good ones are recorded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    scans: Vec<serde_json::Value>,
}

/// One line of a batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanLine {
    payload: String,
    gate: String,
    scanned_at: DateTime<Utc>,
}

/// The event a gate route names: 404 for an event we do not have.
async fn event_of(app: &App, raw: &str) -> Result<coordinator::EventId, ApiError> {
    let unknown = || ApiError::not_found("unknown_event", "no such event");
    let event = coordinator::EventId::parse(raw).map_err(|_| unknown())?;
    catalog::events::get_event(&app.db, event.as_str())
        .await?
        .ok_or_else(unknown)?;
    Ok(event)
}

fn gate_of(principal: &Principal) -> Result<GateId, ApiError> {
    // A user id is key-safe; a gate id is the same alphabet, shorter.
    GateId::parse(principal.user.as_str()).map_err(|e| {
        ApiError::client(
            StatusCode::FORBIDDEN,
            "invalid_gate",
            format!("the token's subject names the gate: {e}"),
        )
    })
}

/// `POST /events/{id}/checkins`: one scan at the gate named by the token's subject.
pub async fn scan(
    raw: String,
    principal: Principal,
    body: ScanBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let gate = gate_of(&principal)?;
    let event = event_of(&app, &raw).await?;
    let verdict = match checkin::verify(&app.tickets, event.as_str(), body.payload.trim()) {
        Err(verdict) => verdict,
        Ok(claims) => checkin::admit(&app.db, &claims, &gate, None, Mode::Online)
            .await
            .map_err(ApiError::from)?,
    };
    app.metrics
        .count_checkin(gate.as_str(), verdict.label(), "online");
    Ok(json_status(&verdict_body(&gate, &verdict), StatusCode::OK))
}

fn verdict_body(gate: &GateId, verdict: &Verdict) -> serde_json::Value {
    let mut body = serde_json::to_value(verdict).unwrap_or(serde_json::Value::Null);
    if let Some(fields) = body.as_object_mut() {
        fields.insert("gate".into(), serde_json::json!(gate));
    }
    body
}

/// `POST /events/{id}/checkins/batch`: an offline gate's scans. 200 with each line's verdict and
/// the doubles; 422 when some lines are malformed, naming each, the good lines recorded all the
/// same (the answer's `details` carries what they recorded).
pub async fn batch(
    raw: String,
    _gate: Principal,
    body: BatchBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let event = event_of(&app, &raw).await?;
    if body.scans.len() > MAX_BATCH_SCANS {
        return Err(ApiError::invalid(
            "too_many_scans",
            format!("at most {MAX_BATCH_SCANS} scans per upload; split it"),
        )
        .with_details(serde_json::json!({"max": MAX_BATCH_SCANS}))
        .into());
    }
    let mut good = Vec::with_capacity(body.scans.len());
    let mut bad = Vec::new();
    for (line, value) in body.scans.into_iter().enumerate() {
        match parse_line(value) {
            Ok((payload, gate, scanned_at)) => good.push(OfflineScan {
                line,
                payload,
                gate,
                scanned_at,
            }),
            Err(reason) => bad.push(serde_json::json!({"line": line, "reason": reason})),
        }
    }
    let report = checkin::record_offline(&app.db, &app.tickets, event.as_str(), good)
        .await
        .map_err(ApiError::from)?;
    for line in &report.results {
        app.metrics
            .count_checkin(line.gate.as_str(), line.verdict.label(), "offline");
    }
    let recorded = serde_json::json!({
        "recorded": report.results.len(),
        "results": report.results,
        "doubles": report.doubles,
    });
    if bad.is_empty() {
        return Ok(json_status(&recorded, StatusCode::OK));
    }
    let mut details = recorded;
    details["bad_lines"] = serde_json::json!(bad);
    Err(ApiError::invalid(
        "malformed_scans",
        format!(
            "{} of the scans are malformed (details.bad_lines names each); the others are recorded",
            bad.len()
        ),
    )
    .with_details(details)
    .into())
}

/// One batch line: its payload, gate and time, or why it is not a scan.
fn parse_line(value: serde_json::Value) -> Result<(String, GateId, DateTime<Utc>), String> {
    let line: ScanLine = serde_json::from_value(value).map_err(|e| {
        // serde's message names the field; never the Rust types.
        let text = e.to_string();
        text.split(" at line ").next().unwrap_or(&text).to_owned()
    })?;
    if line.payload.is_empty() || line.payload.len() > orders::tickets::MAX_PAYLOAD_LEN {
        return Err(format!(
            "payload must be 1 to {} characters",
            orders::tickets::MAX_PAYLOAD_LEN
        ));
    }
    let gate = GateId::parse(&line.gate).map_err(|e| format!("gate: {e}"))?;
    // Postgres keeps microseconds: a re-upload of the same scan must compare equal to the
    // stored one.
    Ok((line.payload, gate, line.scanned_at.trunc_subsecs(6)))
}

/// `GET /events/{id}/checkin-kit`: the public keys (with their ids) and the revocation list, so
/// a gate can decide offline. A gate that admits offline must also remember what it admitted;
/// two offline gates may still both admit one ticket, which their uploads reveal as doubles.
pub async fn kit(
    raw: String,
    _gate: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let event = event_of(&app, &raw).await?;
    let revoked = checkin::revoked(&app.db, event.as_str())
        .await
        .map_err(ApiError::from)?;
    let admitted = checkin::admitted(&app.db, event.as_str())
        .await
        .map_err(ApiError::from)?;
    let now = Utc::now();
    let mut response = json_status(
        &serde_json::json!({
            "event_id": event,
            "generated_at": now,
            "payload_format": "base64url(\"st1|ticket|event|seat|holder|kid\") \".\" base64url(ed25519 signature)",
            "keys": app.tickets.public_keys(),
            "revoked": revoked,
            "admitted": admitted,
        }),
        StatusCode::OK,
    );
    response.headers_mut().insert(
        "cache-control",
        warp::http::HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// `GET /events/{id}/checkins`: admitted of sold, revoked, doubles, admissions by gate (the
/// event's organizer or an admin).
pub async fn status(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    super::organizer::ensure_owner(&app, &principal, &raw).await?;
    let status = checkin::status(&app.db, &raw)
        .await
        .map_err(ApiError::from)?;
    Ok(json_status(
        &serde_json::json!({"event_id": raw, "checkins": status}),
        StatusCode::OK,
    ))
}
