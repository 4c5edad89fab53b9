//! The waiting list: buyers who want seats of an event that has none left, and the offers of
//! seats that come back.
//!
//! The list is `waitlist_entries` in Postgres (who, how many, which categories, in what order).
//! Redis knows only how many entries want each section (`lua/include/waitlist.lua`): while
//! that is above 0, a seat that comes back (a hold that ends, a release, a refunded sale, a
//! lifted block) is set aside in the same script that returns it, so the open sale never sees
//! it. [`offer_pass`] (run by the reconciler) re-derives the counts from the list, and offers
//! set-aside seats, in list order, as holds made for the next waiting buyer
//! ([`coordinator::hold::HoldRequest::as_offer`]); the buyer commits that hold as any other. An
//! offer that is not taken ends like any hold, its seats are set aside again, and the next
//! entry gets them. General-admission areas are not covered: their places come back to the open
//! sale (their holds pick free places by count, `lua/hold_area.lua`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use coordinator::hold::{HoldOutcome, HoldRequest, HoldState, ReadOutcome};
use coordinator::{
    Caller, ClientReservationId, Coordinator, EventId, HoldId, SeatId, SectionId, UserId,
};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::OrdersError;

/// Where an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "waitlist_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In line.
    Waiting,
    /// Seats are held for the buyer until the offer lapses.
    Offered,
    /// The buyer paid for the offer.
    Taken,
    /// The offer ended unpaid, or could not be made (the buyer's ticket limit).
    Lapsed,
    /// The buyer left the list.
    Left,
}

/// One entry of the list, as its buyer sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Entry {
    /// Its id.
    pub id: Uuid,
    /// The event.
    pub event_id: String,
    /// The buyer.
    #[serde(skip)]
    pub user_id: String,
    /// How many seats, in one section.
    pub quantity: i32,
    /// Categories the buyer takes; empty: any.
    pub categories: Vec<String>,
    /// Where it is.
    pub status: Status,
    /// Waiting entries ahead of this one (0 when it is not waiting).
    pub ahead: i64,
    /// The offer's hold, to commit as any hold.
    pub hold_id: Option<Uuid>,
    /// The offer's seats.
    pub seats: Vec<String>,
    /// When the offer lapses.
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// When the buyer joined.
    pub created_at: DateTime<Utc>,
}

/// The columns [`Entry`] reads, with `$ahead` the SQL of its place in line.
macro_rules! entry_columns {
    ($ahead:literal) => {
        concat!(
            "w.id, w.event_id, w.user_id, w.quantity, w.categories, w.status, ",
            $ahead,
            " AS ahead, w.hold_id, w.seats, w.offer_expires_at, w.created_at"
        )
    };
}

/// One entry's columns: its place counted among the waiting entries before it.
const ENTRY_COLUMNS: &str = entry_columns!(
    "CASE WHEN w.status = 'waiting' THEN (SELECT count(*) FROM waitlist_entries a
        WHERE a.event_id = w.event_id AND a.status = 'waiting' AND a.position < w.position)
     ELSE 0 END"
);

/// What joining came to.
#[derive(Debug, Clone)]
pub enum Joined {
    /// A new entry at the end of the list.
    New(Entry),
    /// The buyer was already on the list (waiting or offered): that entry, unchanged.
    Existing(Entry),
}

/// Puts `user` on `event`'s list for `quantity` seats of `categories` (empty: any), or finds
/// the entry they have. The caller has checked the event, the quantity and the categories.
pub async fn join(
    db: &PgPool,
    event: &EventId,
    user: &UserId,
    quantity: u32,
    categories: &[String],
) -> Result<Joined, OrdersError> {
    let inserted: Option<(Uuid,)> = sqlx::query_as(
        "INSERT INTO waitlist_entries (id, event_id, user_id, quantity, categories)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (event_id, user_id) WHERE status IN ('waiting', 'offered') DO NOTHING
         RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(event.as_str())
    .bind(user.as_str())
    .bind(quantity as i32)
    .bind(categories)
    .fetch_optional(db)
    .await?;
    let found: Entry = sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM waitlist_entries w
          WHERE w.event_id = $1 AND w.user_id = $2 AND w.status IN ('waiting', 'offered')"
    ))
    .bind(event.as_str())
    .bind(user.as_str())
    .fetch_one(db)
    .await?;
    Ok(match inserted {
        Some(_) => Joined::New(found),
        None => Joined::Existing(found),
    })
}

/// An entry of `event`, if it is `user`'s.
pub async fn entry(
    db: &PgPool,
    event: &EventId,
    id: Uuid,
    user: &UserId,
) -> Result<Option<Entry>, OrdersError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM waitlist_entries w
          WHERE w.id = $1 AND w.event_id = $2 AND w.user_id = $3"
    ))
    .bind(id)
    .bind(event.as_str())
    .bind(user.as_str())
    .fetch_optional(db)
    .await?)
}

/// What leaving came to.
#[derive(Debug, Clone)]
pub enum Left {
    /// Off the list; an offer it had is released (its seats go to the next entry).
    Left(Entry),
    /// No such entry of this buyer.
    NotFound,
    /// The entry is no longer on the list (taken, lapsed or left): unchanged.
    NotLive(Entry),
}

/// Takes `user`'s entry off `event`'s list; an offer it had is released, so its seats are set
/// aside for the next entry.
pub async fn leave(
    db: &PgPool,
    coordinator: &Coordinator,
    event: &EventId,
    id: Uuid,
    user: &UserId,
) -> Result<Left, OrdersError> {
    let left: Option<(Option<Uuid>,)> = sqlx::query_as(
        "UPDATE waitlist_entries SET status = 'left', updated_at = now()
          WHERE id = $1 AND event_id = $2 AND user_id = $3 AND status IN ('waiting', 'offered')
          RETURNING hold_id",
    )
    .bind(id)
    .bind(event.as_str())
    .bind(user.as_str())
    .fetch_optional(db)
    .await?;
    if let Some((Some(hold),)) = left {
        if let Ok(hold) = HoldId::parse(&hold.to_string()) {
            // Not while a payment is in flight (pinned): then the offer simply ends unpaid or paid.
            coordinator.release(&hold, Caller::User(user)).await?;
        }
    }
    if left.is_some() {
        // One fewer waiting: a section nobody waits for any more gives its set-aside seats back
        // now (the pass would too, but only while the event still has a live list).
        tell_sections(db, coordinator, event).await?;
    }
    Ok(match entry(db, event, id, user).await? {
        None => Left::NotFound,
        Some(e) if left.is_some() => Left::Left(e),
        Some(e) => Left::NotLive(e),
    })
}

/// The seated sections of `event` with the categories each sells (general-admission shards,
/// `ga.*`, are left out: see the module doc).
async fn section_categories(
    db: &PgPool,
    event: &EventId,
) -> Result<Vec<(String, Vec<String>)>, OrdersError> {
    Ok(sqlx::query_as(
        "SELECT s.section_id, array_agg(DISTINCT s.category)
           FROM events e JOIN seats s ON s.venue_id = e.venue_id
          WHERE e.id = $1 AND s.section_id NOT LIKE 'ga.%'
          GROUP BY s.section_id ORDER BY s.section_id",
    )
    .bind(event.as_str())
    .fetch_all(db)
    .await?)
}

/// Does an entry taking `wanted` (empty: any) take a seat of `category`.
fn takes(wanted: &[String], category: &str) -> bool {
    wanted.is_empty() || wanted.iter().any(|c| c == category)
}

/// Waiting entries of `event`, in list order (their place from one window function, not a count
/// per entry: the pass reads this twice a second).
async fn waiting(db: &PgPool, event: &EventId) -> Result<Vec<Entry>, OrdersError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        entry_columns!("row_number() OVER (ORDER BY w.position) - 1"),
        " FROM waitlist_entries w
          WHERE w.event_id = $1 AND w.status = 'waiting' ORDER BY w.position LIMIT 10000"
    ))
    .bind(event.as_str())
    .fetch_all(db)
    .await?)
}

/// Whether [`lock_event`] waits for the lock.
enum Wait {
    Yes,
    No,
}

/// Takes `event`'s waiting-list lock (a Postgres advisory lock) for the rest of `tx`, waiting
/// for it or not; returns whether it is held. A transaction that writes nothing holds it, so a
/// holder stopped anywhere (an error, a crash, a cancelled future) lets it go.
async fn lock_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    event: &EventId,
    wait: Wait,
) -> Result<bool, OrdersError> {
    let sql = match wait {
        Wait::Yes => "SELECT true FROM pg_advisory_xact_lock(hashtext('waitlist:' || $1)::bigint)",
        Wait::No => "SELECT pg_try_advisory_xact_lock(hashtext('waitlist:' || $1)::bigint)",
    };
    Ok(sqlx::query_scalar(sql)
        .bind(event.as_str())
        .fetch_one(&mut **tx)
        .await?)
}

/// Tells each seated section of `event` how many waiting entries want it (Redis then sets aside
/// the seats that come back), and gives back to the open sale the set-aside seats of categories
/// nobody waits for. The gateway runs it when a buyer joins, so the list protects the next seat
/// that comes back; the offer pass runs it every time.
pub async fn tell_sections(
    db: &PgPool,
    coordinator: &Coordinator,
    event: &EventId,
) -> Result<(), OrdersError> {
    // Under the event's lock: a pass that read the list before this buyer joined must not write
    // its older count after this one.
    let mut lock = db.begin().await?;
    lock_event(&mut lock, event, Wait::Yes).await?;
    let entries = waiting(db, event).await?;
    tell(db, coordinator, event, &entries).await?;
    lock.rollback().await?;
    Ok(())
}

/// [`tell_sections`] with the entries read; returns the sections someone waits for.
async fn tell(
    db: &PgPool,
    coordinator: &Coordinator,
    event: &EventId,
    entries: &[Entry],
) -> Result<Vec<SectionId>, OrdersError> {
    let mut wanted = Vec::new();
    for (section, categories) in section_categories(db, event).await? {
        let Ok(section) = SectionId::parse(&section) else {
            continue;
        };
        let count = entries
            .iter()
            .filter(|e| categories.iter().any(|c| takes(&e.categories, c)))
            .count() as u64;
        // Set-aside seats of a category nobody on the list takes go back to the open sale.
        let give_back = if count > 0 && categories.len() > 1 {
            let aside = coordinator.set_aside(event, &section).await?;
            let cats = seat_categories(db, event, aside.iter().map(|(s, _)| s)).await?;
            aside
                .into_iter()
                .map(|(seat, _)| seat)
                .filter(|seat| {
                    let category = cats.get(seat.as_str()).map(String::as_str).unwrap_or("");
                    !entries.iter().any(|e| takes(&e.categories, category))
                })
                .collect()
        } else {
            Vec::new()
        };
        coordinator
            .set_waiting(event, &section, count, &give_back)
            .await?;
        if count > 0 {
            wanted.push(section);
        }
    }
    Ok(wanted)
}

/// The category of each of `seats` at `event`'s venue.
async fn seat_categories<'a>(
    db: &PgPool,
    event: &EventId,
    seats: impl Iterator<Item = &'a SeatId>,
) -> Result<HashMap<String, String>, OrdersError> {
    let ids: Vec<String> = seats.map(ToString::to_string).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.id, s.category FROM events e JOIN seats s ON s.venue_id = e.venue_id
          WHERE e.id = $1 AND s.id = ANY($2)",
    )
    .bind(event.as_str())
    .bind(&ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// How an offer pass is configured.
#[derive(Debug, Clone)]
pub struct OfferSettings {
    /// How long an offer's hold lasts.
    pub offer_ttl: Duration,
    /// The coordinator's bounds (seats per hold).
    pub limits: coordinator::Limits,
}

/// What one offer pass did, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfferPass {
    /// Entries still waiting after the pass.
    pub waiting: u64,
    /// Offers made.
    pub offered: u64,
    /// Offers found paid.
    pub taken: u64,
    /// Offers found ended unpaid (or not makeable).
    pub lapsed: u64,
}

impl std::ops::AddAssign for OfferPass {
    fn add_assign(&mut self, other: Self) {
        self.waiting += other.waiting;
        self.offered += other.offered;
        self.taken += other.taken;
        self.lapsed += other.lapsed;
    }
}

/// Events on sale with a live list (someone waiting, or an offer out), or one that changed in
/// the last ten minutes: a list that just emptied still needs its sections told 0, so their
/// set-aside seats go back to the open sale.
pub async fn live_events(db: &PgPool) -> Result<Vec<EventId>, OrdersError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT w.event_id FROM waitlist_entries w JOIN events e ON e.id = w.event_id
          WHERE (w.status IN ('waiting', 'offered') OR w.updated_at > now() - interval '10 minutes')
            AND e.status = 'on_sale'",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(e,)| EventId::parse(&e).ok())
        .collect())
}

/// One pass over `event`'s list: offers found paid are taken, offers whose hold ended unpaid
/// lapse, the sections are told who waits, ended holds are swept into the list's seats, and
/// the set-aside seats are offered to waiting entries in list order. One pass per event at a
/// time (a Postgres advisory lock, so two reconcilers may run): a pass that finds it taken does
/// nothing.
pub async fn offer_pass(
    db: &PgPool,
    coordinator: &Coordinator,
    event: &EventId,
    settings: &OfferSettings,
) -> Result<OfferPass, OrdersError> {
    let mut lock = db.begin().await?;
    if !lock_event(&mut lock, event, Wait::No).await? {
        return Ok(OfferPass::default());
    }
    let pass = locked_pass(db, coordinator, event, settings).await;
    lock.rollback().await?;
    pass
}

async fn locked_pass(
    db: &PgPool,
    coordinator: &Coordinator,
    event: &EventId,
    settings: &OfferSettings,
) -> Result<OfferPass, OrdersError> {
    let mut pass = settle_offers(db, coordinator, event).await?;
    let entries = waiting(db, event).await?;
    let sections = tell(db, coordinator, event, &entries).await?;
    // Seats whose holds ended are set aside by the sweep (the same script as the expiry).
    let mut aside: BTreeMap<SectionId, Vec<SeatId>> = BTreeMap::new();
    for section in sections {
        coordinator.sweep_expired(event, &section, 1000).await?;
        let seats: Vec<SeatId> = coordinator
            .set_aside(event, &section)
            .await?
            .into_iter()
            .map(|(seat, _)| seat)
            .collect();
        if !seats.is_empty() {
            aside.insert(section, seats);
        }
    }
    let limit: Option<(i32,)> =
        sqlx::query_as("SELECT max_tickets_per_buyer FROM events WHERE id = $1")
            .bind(event.as_str())
            .fetch_optional(db)
            .await?;
    let ticket_limit = limit.map_or(0, |(n,)| u64::try_from(n).unwrap_or(0));
    let mut categories = seat_categories(db, event, aside.values().flatten()).await?;
    let mut left = entries.len() as u64;
    let mut lapsed_now = false;
    for entry in &entries {
        if aside.is_empty() {
            break;
        }
        let Some((section, seats)) = pick(&aside, &categories, entry) else {
            continue;
        };
        // What leaves the set-aside seats of this pass, and whether the entry still waits.
        let (gone, still_waiting) = match offer(
            db,
            coordinator,
            event,
            entry,
            &seats,
            settings,
            ticket_limit,
        )
        .await?
        {
            Offered::Made => {
                pass.offered += 1;
                (seats, false)
            }
            Offered::Lapsed => {
                pass.lapsed += 1;
                lapsed_now = true;
                (Vec::new(), false)
            }
            // Seats the hold refused (sold or blocked since they were set aside) are no one's
            // to offer: the next entries pick among the others.
            Offered::NotNow(refused) => (refused, true),
        };
        if !still_waiting {
            left -= 1;
        }
        if let Some(rest) = aside.get_mut(&section) {
            rest.retain(|s| !gone.contains(s));
            if rest.is_empty() {
                aside.remove(&section);
            }
        }
        for seat in &gone {
            categories.remove(seat.as_str());
        }
    }
    if lapsed_now {
        // Entries that lapsed here no longer wait: the sections' counts are told again.
        tell(db, coordinator, event, &waiting(db, event).await?).await?;
    }
    pass.waiting = left;
    Ok(pass)
}

/// `entry.quantity` set-aside seats of one section in categories the entry takes: the first
/// section (by id) that has them, seats in the order they came back.
fn pick(
    aside: &BTreeMap<SectionId, Vec<SeatId>>,
    categories: &HashMap<String, String>,
    entry: &Entry,
) -> Option<(SectionId, Vec<SeatId>)> {
    let quantity = usize::try_from(entry.quantity).ok()?;
    aside.iter().find_map(|(section, seats)| {
        let fitting: Vec<SeatId> = seats
            .iter()
            .filter(|s| {
                categories
                    .get(s.as_str())
                    .is_some_and(|c| takes(&entry.categories, c))
            })
            .take(quantity)
            .cloned()
            .collect();
        (fitting.len() == quantity).then(|| (section.clone(), fitting))
    })
}

enum Offered {
    Made,
    Lapsed,
    /// Not now; the seats the hold refused (taken since they were set aside), if any.
    NotNow(Vec<SeatId>),
}

/// Holds `seats` for `entry`'s buyer in offer mode, counted against the event's ticket limit.
///
/// The offer is written before it is held: a pass that stops between the two leaves an entry
/// `offered` with no expiry yet, which the next pass confirms (its hold exists) or puts back in
/// line where it was (it does not); held first, a stop would leave seats held for nobody and
/// the entry unable to get another offer (its hold id is derived from it).
#[allow(clippy::too_many_arguments)]
async fn offer(
    db: &PgPool,
    coordinator: &Coordinator,
    event: &EventId,
    entry: &Entry,
    seats: &[SeatId],
    settings: &OfferSettings,
    ticket_limit: u64,
) -> Result<Offered, OrdersError> {
    let (Ok(user), Ok(client_id)) = (
        UserId::parse(&entry.user_id),
        ClientReservationId::parse(&format!("waitlist-{}", entry.id.simple())),
    ) else {
        return Ok(Offered::NotNow(Vec::new()));
    };
    let Ok(request) = HoldRequest::new(
        event.clone(),
        user,
        client_id,
        seats.to_vec(),
        None,
        &settings.limits,
    ) else {
        return Ok(Offered::NotNow(Vec::new()));
    };
    let request = request
        .with_ticket_limit(ticket_limit)
        .as_offer(settings.offer_ttl);
    let hold_uuid = Uuid::parse_str(&request.hold_id().to_string()).ok();
    let names: Vec<String> = seats.iter().map(ToString::to_string).collect();
    let claimed = sqlx::query(
        "UPDATE waitlist_entries
            SET status = 'offered', hold_id = $2, seats = $3, offered_at = now(),
                offer_expires_at = NULL, updated_at = now()
          WHERE id = $1 AND status = 'waiting'",
    )
    .bind(entry.id)
    .bind(hold_uuid)
    .bind(&names)
    .execute(db)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        // The buyer left since the list was read: nothing is held for them.
        return Ok(Offered::NotNow(Vec::new()));
    }
    // An error here leaves the offer unconfirmed: the next pass finds out whether it was held.
    let hold = match coordinator.hold(&request).await? {
        HoldOutcome::Created(hold) | HoldOutcome::Replayed(hold)
            if matches!(hold.state, HoldState::Held | HoldState::Pinned) =>
        {
            hold
        }
        // An offer this entry had before, ended; or the buyer's ticket limit.
        HoldOutcome::Replayed(_) | HoldOutcome::OverLimit { .. } => {
            mark(db, entry.id, Status::Offered, Status::Lapsed).await?;
            return Ok(Offered::Lapsed);
        }
        other => {
            tracing::info!(entry = %entry.id, outcome = ?other, "waiting-list offer not made now");
            unclaim(db, entry.id).await?;
            let refused = match other {
                HoldOutcome::Unavailable(list) => list.into_iter().map(|u| u.seat).collect(),
                _ => Vec::new(),
            };
            return Ok(Offered::NotNow(refused));
        }
    };
    confirm(db, entry.id, &hold).await?;
    tracing::info!(entry = %entry.id, hold = %hold.id, seats = ?names, "waiting-list offer made");
    Ok(Offered::Made)
}

/// An offer written and held: its seats and expiry, as the hold has them.
async fn confirm(db: &PgPool, id: Uuid, hold: &coordinator::hold::Hold) -> Result<(), OrdersError> {
    let expires =
        DateTime::<Utc>::from_timestamp_millis(hold.expires_at_ms).unwrap_or_else(Utc::now);
    let seats: Vec<String> = hold.seats.iter().map(ToString::to_string).collect();
    sqlx::query(
        "UPDATE waitlist_entries SET seats = $2, offer_expires_at = $3, updated_at = now()
          WHERE id = $1 AND status = 'offered'",
    )
    .bind(id)
    .bind(&seats)
    .bind(expires)
    .execute(db)
    .await?;
    Ok(())
}

/// An offer written but not held: the entry waits again, in its place.
async fn unclaim(db: &PgPool, id: Uuid) -> Result<(), OrdersError> {
    sqlx::query(
        "UPDATE waitlist_entries
            SET status = 'waiting', hold_id = NULL, seats = '{}', offered_at = NULL, updated_at = now()
          WHERE id = $1 AND status = 'offered' AND offer_expires_at IS NULL",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

async fn mark(db: &PgPool, id: Uuid, from: Status, to: Status) -> Result<bool, OrdersError> {
    Ok(sqlx::query(
        "UPDATE waitlist_entries SET status = $3, updated_at = now() WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Offers whose hold was paid are taken; offers whose hold ended unpaid lapse (their seats are
/// set aside again by the script that ended them, for the next entry); offers written but not
/// confirmed (a pass stopped between the two) are confirmed or put back in line.
async fn settle_offers(
    db: &PgPool,
    coordinator: &Coordinator,
    event: &EventId,
) -> Result<OfferPass, OrdersError> {
    // Paid, even if refunded since: the offer was taken.
    let taken = sqlx::query(
        "UPDATE waitlist_entries w SET status = 'taken', updated_at = now()
          WHERE w.event_id = $1 AND w.status = 'offered'
            AND EXISTS (SELECT 1 FROM orders o
                         WHERE o.hold_id = w.hold_id AND o.status IN ('paid', 'refunded'))",
    )
    .bind(event.as_str())
    .execute(db)
    .await?
    .rows_affected();
    // Every open offer is looked at (a hold its buyer cancelled ends the offer at once), the
    // oldest first, at most 500 a pass.
    let out: Vec<(Uuid, Uuid, bool)> = sqlx::query_as(
        "SELECT id, hold_id, offer_expires_at IS NOT NULL FROM waitlist_entries
          WHERE event_id = $1 AND status = 'offered' AND hold_id IS NOT NULL
            AND (offer_expires_at IS NOT NULL OR offered_at < now() - interval '5 seconds')
          ORDER BY offered_at LIMIT 500",
    )
    .bind(event.as_str())
    .fetch_all(db)
    .await?;
    let mut lapsed = 0;
    for (id, hold, confirmed) in out {
        let Ok(hold) = HoldId::parse(&hold.to_string()) else {
            continue;
        };
        // A pinned hold is being paid for: it outlives its offer until the payment ends.
        let ended = match coordinator.read_hold(&hold, Caller::System).await? {
            ReadOutcome::Found(h) => match h.state {
                HoldState::Expired | HoldState::Released => true,
                HoldState::Held | HoldState::Pinned if !confirmed => {
                    confirm(db, id, &h).await?;
                    false
                }
                _ => false,
            },
            // Never held: back in line. Held once and gone: it ended.
            ReadOutcome::NotFound | ReadOutcome::NotOwner if !confirmed => {
                unclaim(db, id).await?;
                false
            }
            ReadOutcome::NotFound | ReadOutcome::NotOwner => true,
        };
        if ended && mark(db, id, Status::Offered, Status::Lapsed).await? {
            lapsed += 1;
        }
    }
    Ok(OfferPass {
        taken,
        lapsed,
        ..OfferPass::default()
    })
}
