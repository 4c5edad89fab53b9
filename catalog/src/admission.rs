//! Flash-sale admission settings per event (migration 7), kept in Postgres (the truth) and pushed
//! to the coordinator's waiting room (`lua/queue.lua`).

use coordinator::queue::{AdmissionMode, QueueConfig};
use coordinator::{Coordinator, EventId};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use sqlx::PgPool;

use crate::CatalogError;

/// What an organizer sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionSettings {
    /// open | queue | lottery.
    pub mode: AdmissionMode,
    /// Admissions per second (0.1 to 100,000).
    #[serde(default = "default_rate")]
    pub rate_per_second: f64,
    /// Most admitted at once, also how many get in at the opening (1 to 1,000,000).
    #[serde(default = "default_burst")]
    pub burst: i32,
    /// The shopping window an admission gives, seconds (60 to 3,600).
    #[serde(default = "default_window")]
    pub window_seconds: i32,
    /// Most seats one buyer may hold and buy for the event (1 to 100).
    #[serde(default = "default_max_tickets")]
    pub max_tickets_per_buyer: i32,
    /// Admission tied to what is left: at most this many buyers shopping at once (admitted,
    /// within their window, not finished) per seat still free; 0 (default) = not tied (0 to
    /// 1,000). No point admitting 100,000 buyers for 200 seats: the rest wait, and are told their
    /// outlook either way.
    #[serde(default = "default_shoppers_per_free_seat")]
    pub shoppers_per_free_seat: f64,
}

fn default_rate() -> f64 {
    50.0
}
fn default_burst() -> i32 {
    50
}
fn default_window() -> i32 {
    600
}
fn default_max_tickets() -> i32 {
    8
}
fn default_shoppers_per_free_seat() -> f64 {
    // Opt-in: an admitted buyer who gives up counts as shopping until their window ends, so
    // with long windows and many quitters the tie holds the room back (a 100,000-buyer flash
    // sale on an overloaded machine stalled that way with 2 as the default).
    0.0
}

/// An event's admission, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Admission {
    /// The event.
    pub event_id: String,
    /// The settings.
    #[serde(flatten)]
    pub settings: AdmissionSettings,
    /// When admission starts (and a lottery's pre-queue closes).
    pub opens_at: chrono::DateTime<chrono::Utc>,
    /// SHA-256 of the lottery's seed, published before the draw.
    pub lottery_seed_sha256: Option<String>,
    /// The seed itself: only in memory, shown once the draw has happened.
    #[serde(skip)]
    pub lottery_seed: Option<String>,
}

/// Settings out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAdmission {
    /// A field out of its range.
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
    /// A lottery needs a pre-queue: the sale must not have opened yet.
    #[error("a lottery must be set before the sale opens")]
    LotteryAfterOpening,
}

impl AdmissionSettings {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), InvalidAdmission> {
        if !(0.1..=100_000.0).contains(&self.rate_per_second) || !self.rate_per_second.is_finite() {
            return Err(InvalidAdmission::OutOfRange("rate_per_second"));
        }
        if !(1..=1_000_000).contains(&self.burst) {
            return Err(InvalidAdmission::OutOfRange("burst"));
        }
        if !(60..=3_600).contains(&self.window_seconds) {
            return Err(InvalidAdmission::OutOfRange("window_seconds"));
        }
        if !(1..=100).contains(&self.max_tickets_per_buyer) {
            return Err(InvalidAdmission::OutOfRange("max_tickets_per_buyer"));
        }
        if !(0.0..=1_000.0).contains(&self.shoppers_per_free_seat) {
            return Err(InvalidAdmission::OutOfRange("shoppers_per_free_seat"));
        }
        Ok(())
    }
}

type Row = (
    String,
    f64,
    i32,
    i32,
    i32,
    f64,
    chrono::DateTime<chrono::Utc>,
    Option<String>,
    Option<String>,
);

/// The mode stored as `text` (`events.admission_mode`); anything unknown is open.
pub(crate) fn mode_of(text: &str) -> AdmissionMode {
    match text {
        "queue" => AdmissionMode::Queue,
        "lottery" => AdmissionMode::Lottery,
        _ => AdmissionMode::Open,
    }
}

fn mode_text(mode: AdmissionMode) -> &'static str {
    match mode {
        AdmissionMode::Open => "open",
        AdmissionMode::Queue => "queue",
        AdmissionMode::Lottery => "lottery",
    }
}

/// An event's admission; `None` when the event does not exist.
pub async fn get_admission(pool: &PgPool, event: &str) -> Result<Option<Admission>, CatalogError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT admission_mode, admission_rate, admission_burst, admission_window_secs,
                max_tickets_per_buyer, admission_shoppers_per_free_seat, sale_opens_at,
                lottery_seed, lottery_seed_sha256
         FROM events WHERE id = $1",
    )
    .bind(event)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(mode, rate, burst, window, max_tickets, per_free_seat, opens_at, seed, seed_sha256)| {
            Admission {
                event_id: event.to_owned(),
                settings: AdmissionSettings {
                    mode: mode_of(&mode),
                    rate_per_second: rate,
                    burst,
                    window_seconds: window,
                    max_tickets_per_buyer: max_tickets,
                    shoppers_per_free_seat: per_free_seat,
                },
                opens_at,
                lottery_seed_sha256: seed_sha256,
                lottery_seed: seed,
            }
        },
    ))
}

/// Sets an event's admission (a lottery gets its seed, once; its hash is published at once) and
/// pushes it to the coordinator. `Ok(None)`: no such event.
pub async fn set_admission(
    pool: &PgPool,
    coordinator: &Coordinator,
    event: &EventId,
    settings: &AdmissionSettings,
) -> Result<Result<Option<Admission>, InvalidAdmission>, CatalogError> {
    if let Err(e) = settings.validate() {
        return Ok(Err(e));
    }
    let Some(current) = get_admission(pool, event.as_str()).await? else {
        return Ok(Ok(None));
    };
    let mut seed = current.lottery_seed.clone();
    if settings.mode == AdmissionMode::Lottery && seed.is_none() {
        if current.opens_at <= chrono::Utc::now() {
            return Ok(Err(InvalidAdmission::LotteryAfterOpening));
        }
        seed = Some(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ));
    }
    let seed_sha256 = seed
        .as_ref()
        .map(|s| hex::encode(sha2::Sha256::digest(s.as_bytes())));
    sqlx::query(
        "UPDATE events SET admission_mode = $2, admission_rate = $3, admission_burst = $4,
                admission_window_secs = $5, max_tickets_per_buyer = $6,
                lottery_seed = $7, lottery_seed_sha256 = $8,
                admission_shoppers_per_free_seat = $9
         WHERE id = $1",
    )
    .bind(event.as_str())
    .bind(mode_text(settings.mode))
    .bind(settings.rate_per_second)
    .bind(settings.burst)
    .bind(settings.window_seconds)
    .bind(settings.max_tickets_per_buyer)
    .bind(&seed)
    .bind(&seed_sha256)
    .bind(settings.shoppers_per_free_seat)
    .execute(pool)
    .await?;
    let Some(admission) = get_admission(pool, event.as_str()).await? else {
        return Ok(Ok(None));
    };
    push(coordinator, event, &admission).await?;
    Ok(Ok(Some(admission)))
}

/// Pushes an event's admission to the coordinator (also after Redis lost it).
pub async fn push(
    coordinator: &Coordinator,
    event: &EventId,
    admission: &Admission,
) -> Result<(), CatalogError> {
    let s = &admission.settings;
    coordinator
        .configure_queue(
            event,
            &QueueConfig {
                mode: s.mode,
                rate_per_sec: s.rate_per_second,
                burst: s.burst as u64,
                window_ms: s.window_seconds as u64 * 1000,
                opens_at_ms: admission.opens_at.timestamp_millis(),
                shoppers_per_free_seat: s.shoppers_per_free_seat,
                seed: admission.lottery_seed.clone().unwrap_or_default(),
            },
        )
        .await?;
    Ok(())
}
