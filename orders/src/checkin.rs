//! Gate check-in: a scanned payload becomes a [`Verdict`]. The signature is checked first (no
//! database needed: a gate could do the same with the kit), then one statement admits the
//! ticket: the `checkins` row is keyed by ticket, so of many gates scanning one ticket at once
//! exactly one inserts it, and that insert writes the audit row in the same statement.
//!
//! Offline gates decide alone and upload their scans later ([`record_offline`]); a ticket that
//! was let in twice (by two offline gates, or offline and online) is reported as a [`Double`]
//! with both admissions.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::tickets::{Claims, TicketKeys, TicketStatus, Unverified};

/// A gate: the subject of its token for online scans, as named in an uploaded batch for
/// offline ones. `[A-Za-z0-9_.-]{1,64}`: it becomes a metric label and an audit actor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct GateId(String);

impl GateId {
    /// The longest accepted gate id.
    pub const MAX_LEN: usize = 64;

    /// Parses an untrusted gate id.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "a gate id must be 1 to {} characters of A-Z a-z 0-9 _ . -",
                Self::MAX_LEN
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a scan reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Decided here, now.
    Online,
    /// Decided at the gate, uploaded later.
    Offline,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }
}

/// One admission of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admission {
    /// The gate that let it in.
    pub gate: String,
    /// When (the gate's clock for an offline scan).
    pub at: DateTime<Utc>,
    /// Online or offline.
    pub mode: Mode,
}

/// What a gate is told about a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Let them in: this scan admitted the ticket.
    Admitted {
        /// The ticket.
        ticket_id: Uuid,
        /// Its seat.
        seat_id: String,
        /// Its holder.
        holder: String,
    },
    /// The ticket was admitted before: when, and at which gate.
    AlreadyUsed {
        /// The ticket.
        ticket_id: Uuid,
        /// Its seat.
        seat_id: String,
        /// The admission that counted.
        first: Admission,
    },
    /// Refunded, or transferred to someone else (whose new ticket is the valid one).
    Revoked {
        /// The ticket.
        ticket_id: Uuid,
        /// Why: `refunded` or `transferred`.
        reason: TicketStatus,
    },
    /// A genuine ticket of another event.
    WrongEvent {
        /// The ticket.
        ticket_id: Uuid,
        /// The event it is for.
        ticket_event: String,
    },
    /// Not a ticket of ours.
    Invalid {
        /// Why.
        reason: InvalidReason,
    },
}

impl Verdict {
    /// The verdict's name, as metric label and JSON tag.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Admitted { .. } => "admitted",
            Self::AlreadyUsed { .. } => "already_used",
            Self::Revoked { .. } => "revoked",
            Self::WrongEvent { .. } => "wrong_event",
            Self::Invalid { .. } => "invalid",
        }
    }

    /// Every verdict's label, so each metric series exists from the start.
    pub const LABELS: [&'static str; 5] = [
        "admitted",
        "already_used",
        "revoked",
        "wrong_event",
        "invalid",
    ];
}

/// Why a payload is `invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidReason {
    /// Not in our payload format.
    Malformed,
    /// Signed by a key we do not know.
    UnknownKey,
    /// The signature does not verify: forged or altered.
    BadSignature,
    /// Well signed, but we never issued that ticket (or not with that seat and holder).
    UnknownTicket,
}

impl From<Unverified> for InvalidReason {
    fn from(u: Unverified) -> Self {
        match u {
            Unverified::Malformed => Self::Malformed,
            Unverified::UnknownKey => Self::UnknownKey,
            Unverified::BadSignature => Self::BadSignature,
        }
    }
}

/// The part of a verdict that needs no database: `Err` is the final verdict.
pub fn verify(keys: &TicketKeys, event: &str, payload: &str) -> Result<Claims, Verdict> {
    let claims = keys
        .verify(payload)
        .map_err(|u| Verdict::Invalid { reason: u.into() })?;
    if claims.event != event {
        return Err(Verdict::WrongEvent {
            ticket_id: claims.ticket,
            ticket_event: claims.event,
        });
    }
    Ok(claims)
}

/// Admits the ticket a verified payload names, unless it was admitted before or is revoked.
/// `at`: the scan's time (`None`: Postgres `now()`, for online scans).
pub async fn admit(
    db: &PgPool,
    claims: &Claims,
    gate: &GateId,
    at: Option<DateTime<Utc>>,
    mode: Mode,
) -> Result<Verdict, sqlx::Error> {
    // A revocation or an admission committed between the insert and the read that explains
    // it leaves nothing to explain; the next round sees it. Three rounds are plenty: each one
    // that finds nothing saw another transaction finish.
    for _ in 0..3 {
        if let Some(verdict) = try_admit(db, claims, gate, at, mode).await? {
            return Ok(verdict);
        }
    }
    try_admit(db, claims, gate, at, mode)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

async fn try_admit(
    db: &PgPool,
    claims: &Claims,
    gate: &GateId,
    at: Option<DateTime<Utc>>,
    mode: Mode,
) -> Result<Option<Verdict>, sqlx::Error> {
    // The ticket must be the one signed (seat and holder too): a transfer re-issues under a new
    // id, so an old payload names a revoked ticket, never the new one.
    let admitted: Option<(Uuid,)> = sqlx::query_as(
        "WITH admitted AS (
             INSERT INTO checkins (ticket_id, event_id, gate, scanned_at, mode)
             SELECT id, event_id, $4, COALESCE($5, now()), $6 FROM tickets
             WHERE id = $1 AND seat_id = $2 AND holder = $3 AND revoked_at IS NULL
             ON CONFLICT (ticket_id) DO NOTHING
             RETURNING ticket_id, event_id, scanned_at
         ), audited AS (
             INSERT INTO seat_audit (event_id, seat_id, action, at, actor, order_id, ticket_id, source)
             SELECT a.event_id, t.seat_id, 'checked_in', a.scanned_at, 'gate:' || $4, t.order_id,
                    t.id, 'ticket:' || t.id::text || ':checked_in'
             FROM admitted a JOIN tickets t ON t.id = a.ticket_id
             ON CONFLICT (source, seat_id) DO NOTHING
         )
         SELECT ticket_id FROM admitted",
    )
    .bind(claims.ticket)
    .bind(&claims.seat)
    .bind(&claims.holder)
    .bind(gate.as_str())
    .bind(at)
    .bind(mode.as_str())
    .fetch_optional(db)
    .await?;
    if admitted.is_some() {
        return Ok(Some(Verdict::Admitted {
            ticket_id: claims.ticket,
            seat_id: claims.seat.clone(),
            holder: claims.holder.clone(),
        }));
    }
    why_not(db, claims, gate, at, mode).await
}

/// Why a scan did not admit its ticket (`None`: as this read sees it the ticket is valid and not
/// admitted, so a concurrent admission's row is not visible yet; the caller tries again).
async fn why_not(
    db: &PgPool,
    claims: &Claims,
    gate: &GateId,
    at: Option<DateTime<Utc>>,
    mode: Mode,
) -> Result<Option<Verdict>, sqlx::Error> {
    // Not admitted now: say why. A revocation wins over an earlier admission (the buyer was
    // refunded after coming in; the payload must not open a gate again either way).
    type Why = (
        Option<String>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<String>,
    );
    let row: Option<Why> = sqlx::query_as(
        "SELECT t.revoked_reason::text, c.gate, c.scanned_at, c.mode
         FROM tickets t LEFT JOIN checkins c ON c.ticket_id = t.id
         WHERE t.id = $1 AND t.seat_id = $2 AND t.holder = $3",
    )
    .bind(claims.ticket)
    .bind(&claims.seat)
    .bind(&claims.holder)
    .fetch_optional(db)
    .await?;
    Ok(match row {
        None => Some(Verdict::Invalid {
            reason: InvalidReason::UnknownTicket,
        }),
        Some((Some(reason), _, _, _)) => Some(Verdict::Revoked {
            ticket_id: claims.ticket,
            reason: if reason == "transferred" {
                TicketStatus::Transferred
            } else {
                TicketStatus::Refunded
            },
        }),
        // The same offline scan uploaded again (the gate did not hear our first answer): it
        // is the admission, not a second one.
        Some((None, Some(first_gate), Some(first_at), Some(first_mode)))
            if mode == Mode::Offline
                && first_mode == "offline"
                && first_gate == gate.as_str()
                && Some(first_at) == at =>
        {
            Some(Verdict::Admitted {
                ticket_id: claims.ticket,
                seat_id: claims.seat.clone(),
                holder: claims.holder.clone(),
            })
        }
        Some((None, Some(first_gate), Some(first_at), first_mode)) => {
            record_double(db, claims, gate, at, mode).await?;
            Some(Verdict::AlreadyUsed {
                ticket_id: claims.ticket,
                seat_id: claims.seat.clone(),
                first: Admission {
                    gate: first_gate,
                    at: first_at,
                    mode: if first_mode.as_deref() == Some("offline") {
                        Mode::Offline
                    } else {
                        Mode::Online
                    },
                },
            })
        }
        Some((None, _, _, _)) => None,
    })
}

/// The evidence of a payload shown twice, kept for the organizer.
async fn record_double(
    db: &PgPool,
    claims: &Claims,
    gate: &GateId,
    at: Option<DateTime<Utc>>,
    mode: Mode,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO checkin_doubles (ticket_id, event_id, gate, scanned_at, mode)
         VALUES ($1, $2, $3, COALESCE($4, now()), $5)
         ON CONFLICT ON CONSTRAINT checkin_doubles_scan_unique DO NOTHING",
    )
    .bind(claims.ticket)
    .bind(&claims.event)
    .bind(gate.as_str())
    .bind(at)
    .bind(mode.as_str())
    .execute(db)
    .await?;
    Ok(())
}

/// One scan of an uploaded batch, parsed.
#[derive(Debug, Clone)]
pub struct OfflineScan {
    /// Its line in the upload (0-based).
    pub line: usize,
    /// What was scanned.
    pub payload: String,
    /// Where.
    pub gate: GateId,
    /// When, by the gate's clock.
    pub scanned_at: DateTime<Utc>,
}

/// One line's verdict in a batch.
#[derive(Debug, Clone, Serialize)]
pub struct LineVerdict {
    /// The line (0-based).
    pub line: usize,
    /// The gate that scanned it.
    pub gate: GateId,
    /// The verdict as if the scan had been made online at that moment.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// A ticket let in more than once: every admission, earliest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Double {
    /// The ticket.
    pub ticket_id: Uuid,
    /// Its seat.
    pub seat_id: String,
    /// The admission that counted, then each later one.
    pub admissions: Vec<Admission>,
}

/// What an uploaded batch recorded.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// Each scan's verdict, in line order.
    pub results: Vec<LineVerdict>,
    /// Tickets this batch found admitted twice: the gate let someone in on a payload that had
    /// already been used (or that another line of the batch used).
    pub doubles: Vec<Double>,
}

/// Records offline scans in the order they happened (so the earliest admission of a ticket is
/// the one that counts) and reports the doubles. An offline gate let every scan it admitted
/// in; only scans whose verdict here is `already_used` are doubles. Each line is admitted as an
/// online scan would be: many uploads at once still admit each ticket once.
pub async fn record_offline(
    db: &PgPool,
    keys: &TicketKeys,
    event: &str,
    mut scans: Vec<OfflineScan>,
) -> Result<BatchReport, sqlx::Error> {
    scans.sort_by_key(|s| (s.scanned_at, s.line));
    let mut results = Vec::with_capacity(scans.len());
    let mut doubles: std::collections::BTreeMap<Uuid, Double> = std::collections::BTreeMap::new();
    for scan in scans {
        let verdict = match verify(keys, event, &scan.payload) {
            Err(verdict) => verdict,
            Ok(claims) => {
                admit(
                    db,
                    &claims,
                    &scan.gate,
                    Some(scan.scanned_at),
                    Mode::Offline,
                )
                .await?
            }
        };
        if let Verdict::AlreadyUsed {
            ticket_id,
            seat_id,
            first,
        } = &verdict
        {
            doubles
                .entry(*ticket_id)
                .or_insert_with(|| Double {
                    ticket_id: *ticket_id,
                    seat_id: seat_id.clone(),
                    admissions: vec![first.clone()],
                })
                .admissions
                .push(Admission {
                    gate: scan.gate.as_str().to_owned(),
                    at: scan.scanned_at,
                    mode: Mode::Offline,
                });
        }
        results.push(LineVerdict {
            line: scan.line,
            gate: scan.gate,
            verdict,
        });
    }
    results.sort_by_key(|r| r.line);
    Ok(BatchReport {
        results,
        doubles: doubles.into_values().collect(),
    })
}

/// An event's gate figures, for its organizer.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Seats sold live (each has one valid ticket).
    pub sold: i64,
    /// Tickets admitted.
    pub admitted: i64,
    /// Tickets revoked (refunds and transfers).
    pub revoked: i64,
    /// Scans of a ticket already admitted.
    pub doubles: i64,
    /// Admissions by gate.
    pub by_gate: Vec<GateCount>,
}

/// Admissions at one gate.
#[derive(Debug, Clone, Serialize)]
pub struct GateCount {
    /// The gate.
    pub gate: String,
    /// Tickets it admitted.
    pub admitted: i64,
}

/// The gate figures of an event.
pub async fn status(db: &PgPool, event: &str) -> Result<Status, sqlx::Error> {
    let (sold, admitted, revoked, doubles): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sold_seats WHERE event_id = $1 AND live),
                (SELECT count(*) FROM checkins WHERE event_id = $1),
                (SELECT count(*) FROM tickets WHERE event_id = $1 AND revoked_at IS NOT NULL),
                (SELECT count(*) FROM checkin_doubles WHERE event_id = $1)",
    )
    .bind(event)
    .fetch_one(db)
    .await?;
    let by_gate = sqlx::query_as::<_, (String, i64)>(
        "SELECT gate, count(*) FROM checkins WHERE event_id = $1 GROUP BY gate ORDER BY gate",
    )
    .bind(event)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|(gate, admitted)| GateCount { gate, admitted })
    .collect();
    Ok(Status {
        sold,
        admitted,
        revoked,
        doubles,
        by_gate,
    })
}

/// A ticket let in, as an offline gate's kit lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct KitAdmission {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The gate that let it in.
    pub gate: String,
    /// When (the gate's clock).
    pub at: DateTime<Utc>,
}

/// The admissions of an event's check-in kit: every ticket let in so far, where and when, so a
/// gate that goes offline refuses a payload another gate already let in (without it, only the
/// upload afterwards would tell). 50,000 admissions are about 4 MB of JSON.
pub async fn admitted(db: &PgPool, event: &str) -> Result<Vec<KitAdmission>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ticket_id, gate, scanned_at AS at FROM checkins WHERE event_id = $1 ORDER BY ticket_id",
    )
    .bind(event)
    .fetch_all(db)
    .await
}

/// The revocation list of an event's check-in kit: every revoked ticket id.
pub async fn revoked(db: &PgPool, event: &str) -> Result<Vec<Uuid>, sqlx::Error> {
    Ok(sqlx::query_as::<_, (Uuid,)>(
        "SELECT id FROM tickets WHERE event_id = $1 AND revoked_at IS NOT NULL ORDER BY id",
    )
    .bind(event)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|(id,)| id)
    .collect())
}
