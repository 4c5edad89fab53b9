//! Events: creation with a price per category, price changes, the status life cycle, search.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::seatmap::Problem;
use crate::CatalogError;

/// An event's sale status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "event_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Being prepared: invisible to holds.
    Draft,
    /// Seats can be held and bought.
    OnSale,
    /// Sales paused by the organizer (e.g. while an incident is investigated).
    Frozen,
    /// Over.
    Ended,
}

/// A price of one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Price {
    /// The seat category.
    pub category: String,
    /// Amount in the currency's minor unit (cents).
    pub amount_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// An event as buyers see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Category (concert, sports, theatre...).
    pub category: String,
    /// Venue id.
    pub venue_id: String,
    /// Venue name.
    pub venue_name: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// When holds become possible.
    pub sale_opens_at: DateTime<Utc>,
    /// Status.
    pub status: EventStatus,
    /// Price per seat category.
    pub prices: Vec<Price>,
    /// The organizer who created it (`None`: created by an operator tool); not shown to buyers.
    #[serde(skip_serializing)]
    pub owner: Option<String>,
    /// How buyers get in: `open`, `queue` or `lottery` (see [`crate::admission`]).
    pub admission_mode: coordinator::queue::AdmissionMode,
    /// Most seats one buyer may hold and buy for the event.
    pub max_tickets_per_buyer: i32,
}

/// What an organizer sends to create an event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDraft {
    /// Key-safe id.
    pub id: String,
    /// Venue id.
    pub venue_id: String,
    /// Title.
    pub title: String,
    /// Category, e.g. "concert".
    pub category: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// Sale opening.
    pub sale_opens_at: DateTime<Utc>,
    /// Price per seat category, in cents; every category of the venue must be priced.
    pub prices: BTreeMap<String, i64>,
    /// ISO 4217, default USD.
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_currency() -> String {
    "USD".into()
}

/// What creating an event or changing its prices came to.
#[derive(Debug, Clone, PartialEq)]
pub enum EventOutcome {
    /// Done; the event as stored.
    Done(Event),
    /// An event with this id exists.
    AlreadyExists,
    /// No such venue (create) or event (prices).
    NotFound,
    /// The draft breaks a rule; nothing written.
    Invalid(Vec<Problem>),
}

/// A status change an organizer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// draft -> on_sale (the caller loads the inventory into the coordinator first).
    Open,
    /// on_sale -> frozen.
    Freeze,
    /// frozen -> on_sale.
    Unfreeze,
    /// any but ended -> ended.
    End,
}

impl Transition {
    fn allowed(self, from: EventStatus) -> Option<EventStatus> {
        use EventStatus::*;
        match (self, from) {
            (Transition::Open, Draft | OnSale) => Some(OnSale),
            (Transition::Freeze, OnSale | Frozen) => Some(Frozen),
            (Transition::Unfreeze, Frozen | OnSale) => Some(OnSale),
            (Transition::End, Draft | OnSale | Frozen | Ended) => Some(Ended),
            _ => None,
        }
    }
}

/// What a status change came to.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // returned once per status change: not worth a box
pub enum StatusOutcome {
    /// The event is now in the target status (also when it already was: idempotent).
    Changed(Event),
    /// No such event.
    NotFound,
    /// Not allowed from the current status.
    NotAllowed(EventStatus),
}

fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// The highest price of one seat, in cents (100,000.00). Bounded so that no sum of prices comes
/// near `i64` (the overflow once turned two seats at `i64::MAX` into a charge of -2 cents); the
/// `event_prices_amount_bounded` constraint says the same in Postgres. A hold's total has its
/// own bound, the provider's (`payments::MAX_CHARGE_CENTS`).
pub const MAX_PRICE_CENTS: i64 = 10_000_000;

/// Checks prices against the venue's categories: all priced, none unknown, each within
/// 0..=[`MAX_PRICE_CENTS`].
async fn price_problems(
    pool: &PgPool,
    venue_id: &str,
    prices: &BTreeMap<String, i64>,
    require_all: bool,
) -> Result<Vec<Problem>, CatalogError> {
    let categories: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM categories WHERE venue_id = $1")
            .bind(venue_id)
            .fetch_all(pool)
            .await?;
    let known: std::collections::BTreeSet<&str> =
        categories.iter().map(|(c,)| c.as_str()).collect();
    let mut problems = Vec::new();
    for (category, amount) in prices {
        if !known.contains(category.as_str()) {
            problems.push(problem(
                &format!("prices.{category}"),
                "is not a category of the venue",
            ));
        }
        if *amount < 0 {
            problems.push(problem(
                &format!("prices.{category}"),
                "must not be negative",
            ));
        }
        if *amount > MAX_PRICE_CENTS {
            problems.push(problem(
                &format!("prices.{category}"),
                format!("must be at most {MAX_PRICE_CENTS} cents"),
            ));
        }
    }
    if require_all {
        for category in known {
            if !prices.contains_key(category) {
                problems.push(problem(
                    &format!("prices.{category}"),
                    "the venue's category has no price",
                ));
            }
        }
    }
    Ok(problems)
}

/// Creates an event in `draft` status with its prices.
pub async fn create_event(
    pool: &PgPool,
    draft: &EventDraft,
    owner: Option<&str>,
) -> Result<EventOutcome, CatalogError> {
    let mut problems = Vec::new();
    if !crate::key_safe(&draft.id) {
        problems.push(problem(
            "id",
            "must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
        ));
    }
    if draft.title.trim().is_empty() || draft.title.len() > 200 {
        problems.push(problem("title", "must be 1 to 200 characters"));
    }
    if draft.category.trim().is_empty() || draft.category.len() > 64 {
        problems.push(problem("category", "must be 1 to 64 characters"));
    }
    if draft.sale_opens_at > draft.starts_at {
        problems.push(problem("sale_opens_at", "must not be after starts_at"));
    }
    if draft.currency.len() != 3 || !draft.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        problems.push(problem("currency", "must be an ISO 4217 code such as USD"));
    }
    let venue_exists: Option<(String,)> = sqlx::query_as("SELECT id FROM venues WHERE id = $1")
        .bind(&draft.venue_id)
        .fetch_optional(pool)
        .await?;
    if venue_exists.is_none() {
        return Ok(EventOutcome::NotFound);
    }
    problems.extend(price_problems(pool, &draft.venue_id, &draft.prices, true).await?);
    if !problems.is_empty() {
        return Ok(EventOutcome::Invalid(problems));
    }
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO events (id, venue_id, title, category, starts_at, sale_opens_at, status, owner)
         VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&draft.id)
    .bind(&draft.venue_id)
    .bind(&draft.title)
    .bind(&draft.category)
    .bind(draft.starts_at)
    .bind(draft.sale_opens_at)
    .bind(owner)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(EventOutcome::AlreadyExists);
    }
    write_prices(
        &mut tx,
        &draft.id,
        &draft.venue_id,
        &draft.prices,
        &draft.currency,
    )
    .await?;
    tx.commit().await?;
    Ok(match get_event(pool, &draft.id).await? {
        Some(e) => EventOutcome::Done(e),
        None => EventOutcome::NotFound,
    })
}

async fn write_prices(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    event_id: &str,
    venue_id: &str,
    prices: &BTreeMap<String, i64>,
    currency: &str,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO event_prices (event_id, venue_id, category, amount_cents, currency)
         SELECT $1, $2, * FROM UNNEST($3::text[], $4::bigint[], $5::text[])
         ON CONFLICT (event_id, category) DO UPDATE
            SET amount_cents = EXCLUDED.amount_cents, currency = EXCLUDED.currency, updated_at = now()",
    )
    .bind(event_id)
    .bind(venue_id)
    .bind(prices.keys().cloned().collect::<Vec<_>>())
    .bind(prices.values().copied().collect::<Vec<_>>())
    .bind(vec![currency.to_owned(); prices.len()])
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Changes some prices of an event (holds already placed keep the price they were quoted).
pub async fn set_prices(
    pool: &PgPool,
    event_id: &str,
    prices: &BTreeMap<String, i64>,
) -> Result<EventOutcome, CatalogError> {
    let Some(event) = get_event(pool, event_id).await? else {
        return Ok(EventOutcome::NotFound);
    };
    let mut problems = price_problems(pool, &event.venue_id, prices, false).await?;
    if prices.is_empty() {
        problems.push(problem("prices", "name at least one category"));
    }
    if !problems.is_empty() {
        return Ok(EventOutcome::Invalid(problems));
    }
    let currency = event
        .prices
        .first()
        .map(|p| p.currency.clone())
        .unwrap_or_else(default_currency);
    let mut tx = pool.begin().await?;
    write_prices(&mut tx, event_id, &event.venue_id, prices, &currency).await?;
    tx.commit().await?;
    Ok(match get_event(pool, event_id).await? {
        Some(e) => EventOutcome::Done(e),
        None => EventOutcome::NotFound,
    })
}

/// Moves an event through its life cycle, refusing transitions that make no sense.
pub async fn set_status(
    pool: &PgPool,
    event_id: &str,
    transition: Transition,
) -> Result<StatusOutcome, CatalogError> {
    let mut tx = pool.begin().await?;
    let current: Option<(EventStatus,)> =
        sqlx::query_as("SELECT status FROM events WHERE id = $1 FOR UPDATE")
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((from,)) = current else {
        return Ok(StatusOutcome::NotFound);
    };
    let Some(to) = transition.allowed(from) else {
        return Ok(StatusOutcome::NotAllowed(from));
    };
    sqlx::query("UPDATE events SET status = $2 WHERE id = $1")
        .bind(event_id)
        .bind(to)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(match get_event(pool, event_id).await? {
        Some(e) => StatusOutcome::Changed(e),
        None => StatusOutcome::NotFound,
    })
}

type EventRow = (
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    EventStatus,
    Option<String>,
    String,
    i32,
);

const EVENT_COLUMNS: &str = "e.id, e.title, e.category, e.venue_id, v.name, e.starts_at, \
                             e.sale_opens_at, e.status, e.owner, e.admission_mode, \
                             e.max_tickets_per_buyer";

async fn with_prices(pool: &PgPool, rows: Vec<EventRow>) -> Result<Vec<Event>, CatalogError> {
    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let prices: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT event_id, category, amount_cents, currency FROM event_prices
          WHERE event_id = ANY($1) ORDER BY event_id, category",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut by_event: BTreeMap<String, Vec<Price>> = BTreeMap::new();
    for (event, category, amount_cents, currency) in prices {
        by_event.entry(event).or_default().push(Price {
            category,
            amount_cents,
            currency,
        });
    }
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                title,
                category,
                venue_id,
                venue_name,
                starts_at,
                sale_opens_at,
                status,
                owner,
                admission_mode,
                max_tickets_per_buyer,
            )| Event {
                prices: by_event.remove(&id).unwrap_or_default(),
                id,
                title,
                category,
                venue_id,
                venue_name,
                starts_at,
                sale_opens_at,
                status,
                owner,
                admission_mode: crate::admission::mode_of(&admission_mode),
                max_tickets_per_buyer,
            },
        )
        .collect())
}

/// One event, with its prices.
pub async fn get_event(pool: &PgPool, event_id: &str) -> Result<Option<Event>, CatalogError> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e JOIN venues v ON v.id = e.venue_id WHERE e.id = $1"
    ))
    .bind(event_id)
    .fetch_all(pool)
    .await?;
    Ok(with_prices(pool, rows).await?.into_iter().next())
}

/// Search filters for the event list. Drafts are never listed.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Starting before.
    pub to: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the title.
    pub q: Option<String>,
    /// Venue id.
    pub venue: Option<String>,
    /// Event category.
    pub category: Option<String>,
    /// Continue after this (starts_at, id), from the previous page's cursor.
    pub after: Option<(DateTime<Utc>, String)>,
    /// Page size.
    pub limit: i64,
}

/// One page of events, in (starts_at, id) order, and the key to continue after.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events.
    pub events: Vec<Event>,
    /// The last event's (starts_at, id) when more may follow.
    pub next: Option<(DateTime<Utc>, String)>,
}

/// Lists events (keyset pagination: stable under inserts, no OFFSET scans).
pub async fn list_events(pool: &PgPool, filter: &EventFilter) -> Result<EventPage, CatalogError> {
    let q = filter.q.as_ref().map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e JOIN venues v ON v.id = e.venue_id
          WHERE e.status <> 'draft'
            AND ($1::timestamptz IS NULL OR e.starts_at >= $1)
            AND ($2::timestamptz IS NULL OR e.starts_at < $2)
            AND ($3::text IS NULL OR e.title ILIKE $3)
            AND ($4::text IS NULL OR e.venue_id = $4)
            AND ($5::text IS NULL OR e.category = $5)
            AND ($6::timestamptz IS NULL OR (e.starts_at, e.id) > ($6, $7))
          ORDER BY e.starts_at, e.id
          LIMIT $8"
    ))
    .bind(filter.from)
    .bind(filter.to)
    .bind(q)
    .bind(&filter.venue)
    .bind(&filter.category)
    .bind(filter.after.as_ref().map(|a| a.0))
    .bind(
        filter
            .after
            .as_ref()
            .map(|a| a.1.clone())
            .unwrap_or_default(),
    )
    .bind(filter.limit + 1)
    .fetch_all(pool)
    .await?;
    let mut events = with_prices(pool, rows).await?;
    let next = if events.len() as i64 > filter.limit {
        events.truncate(filter.limit as usize);
        events.last().map(|e| (e.starts_at, e.id.clone()))
    } else {
        None
    };
    Ok(EventPage { events, next })
}
