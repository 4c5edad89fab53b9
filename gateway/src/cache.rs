//! In-process caches, per gateway process: event data (status, prices), venue layouts (immutable
//! once imported) and rendered seat maps. Pub/sub announcements (coordinator::updates) invalidate
//! them; each also has an age bound, so a lost announcement costs at most that much staleness.
//! Gateways share nothing but Redis and Postgres, so any number of them behave as one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use catalog::events::Event;
use catalog::seatmap::SeatMap;
use coordinator::{EventId, SeatId, SectionId};
use sha2::{Digest, Sha256};

use crate::errors::ApiError;
use crate::App;

/// How long event data (status, prices) is trusted without an announcement.
pub const EVENT_MAX_AGE: Duration = Duration::from_secs(2);
/// How often [`Caches::warm`] looks for sales to be ready for.
pub const WARM_EVERY: Duration = Duration::from_secs(5);
/// How far ahead of a sale's opening [`Caches::warm`] loads its venue.
pub const WARM_AHEAD: Duration = Duration::from_secs(15 * 60);
/// How long a rendered seat map is served without an announcement (also its Cache-Control).
pub const SEATMAP_MAX_AGE: Duration = Duration::from_secs(5);
/// A seat map announced as changed is still served until it is this old: during a sale every
/// hold announces a change, and rebuilding on each request would make the 50,000-seat map
/// expensive exactly when it is hottest. At most a few rebuilds a second per event and process,
/// and staleness stays far inside [`SEATMAP_MAX_AGE`].
pub const SEATMAP_MIN_REBUILD: Duration = Duration::from_millis(250);

/// A seat's place in its venue.
#[derive(Debug, Clone)]
pub struct SeatPlace {
    /// Index into [`VenueLayout::rows`].
    pub row: usize,
    /// Number in the row.
    pub number: i32,
    /// Price category.
    pub category: String,
}

/// A row, its seats sorted by number.
#[derive(Debug, Clone)]
pub struct RowLayout {
    /// The section.
    pub section: SectionId,
    /// Rank of the section in the seat map (listed order: best first).
    pub section_rank: usize,
    /// Rank of the row in its section (front first).
    pub row_rank: usize,
    /// Seats `(number, id, category)`, by number.
    pub seats: Vec<(i32, SeatId, String)>,
}

/// A venue's layout, indexed for holds and best-available seating, and pre-rendered as JSON.
#[derive(Debug)]
pub struct VenueLayout {
    /// Seat id -> place.
    pub seats: HashMap<SeatId, SeatPlace>,
    /// Every row, in seat-map order.
    pub rows: Vec<RowLayout>,
    /// The seat map as JSON (rendered once: a 50,000-seat map is several MB).
    pub json: String,
}

impl VenueLayout {
    /// Indexes a seat map.
    pub fn new(map: &SeatMap) -> Result<Self, String> {
        let mut seats = HashMap::with_capacity(map.seat_count());
        let mut rows = Vec::new();
        for (section_rank, section) in map.sections.iter().enumerate() {
            let section_id = SectionId::parse(&section.id).map_err(|e| e.to_string())?;
            for (row_rank, row) in section.rows.iter().enumerate() {
                let mut row_seats = Vec::with_capacity(row.seats.len());
                for seat in &row.seats {
                    let id = SeatId::parse(&seat.id).map_err(|e| e.to_string())?;
                    seats.insert(
                        id.clone(),
                        SeatPlace {
                            row: rows.len(),
                            number: seat.number,
                            category: seat.category.clone(),
                        },
                    );
                    row_seats.push((seat.number, id, seat.category.clone()));
                }
                row_seats.sort_by_key(|(n, _, _)| *n);
                rows.push(RowLayout {
                    section: section_id.clone(),
                    section_rank,
                    row_rank,
                    seats: row_seats,
                });
            }
        }
        let json = serde_json::to_string(map).map_err(|e| e.to_string())?;
        Ok(Self { seats, rows, json })
    }
}

/// Reads a venue from Postgres, indexes it and keeps it in `app`'s cache.
async fn load_venue(app: &App, venue_id: &str) -> Result<Arc<VenueLayout>, ApiError> {
    let began = Instant::now();
    let map = catalog::venues::seat_map(&app.db, venue_id)
        .await?
        .ok_or_else(|| {
            ApiError::unavailable(
                "postgres",
                format!("venue {venue_id} of an event is missing"),
            )
        })?;
    let read = began.elapsed();
    // Indexing and rendering a stadium's 50,000 seats takes about 100 ms of CPU: on a blocking
    // thread, so requests whose venue is loaded go on meanwhile (with one worker thread they
    // all stopped behind it). Requests for this venue wait either way, which is why
    // `Caches::warm` loads the venues of sales before they open.
    let layout = tokio::task::spawn_blocking(move || VenueLayout::new(&map))
        .await
        .map_err(|e| ApiError::unavailable("gateway", e.to_string()))?
        .map_err(|e| ApiError::unavailable("postgres", e))?;
    let layout = Arc::new(layout);
    tracing::info!(
        venue = venue_id,
        seats = layout.seats.len(),
        read_ms = read.as_millis() as u64,
        total_ms = began.elapsed().as_millis() as u64,
        "venue layout loaded"
    );
    put(&app.caches.venues, venue_id.to_owned(), layout.clone());
    Ok(layout)
}

/// A rendered seat map.
#[derive(Debug)]
pub struct Seatmap {
    /// The JSON body.
    pub body: Bytes,
    /// Strong ETag of the body.
    pub etag: String,
    /// Seats not free when it was built.
    pub taken: HashSet<SeatId>,
    /// Seats free when it was built.
    pub free: u64,
    /// Seats held when it was built.
    pub held: u64,
    built: Instant,
    /// When the Redis read it shows began.
    began: Instant,
    /// An announcement said availability changed since it was built.
    stale: std::sync::atomic::AtomicBool,
}

impl Seatmap {
    /// The seat map of `event` from a read of its sections that began at `began`.
    fn render(
        id: &EventId,
        event: &Event,
        layout: &VenueLayout,
        sections: &[coordinator::snapshot::SectionSeats],
        began: Instant,
    ) -> Self {
        let mut taken = HashSet::new();
        let availability: Vec<serde_json::Value> = sections
            .iter()
            .map(|s| {
                taken.extend(s.held.iter().chain(&s.sold).chain(&s.blocked).cloned());
                serde_json::json!({
                    "section": s.availability.section,
                    "capacity": s.availability.capacity,
                    "free": s.availability.free,
                    "held": s.availability.held,
                    "sold": s.availability.sold,
                    "blocked": s.availability.blocked,
                    "version": s.availability.version,
                    "held_seats": s.held,
                    "sold_seats": s.sold,
                    "blocked_seats": s.blocked,
                })
            })
            .collect();
        let version: Vec<String> = sections
            .iter()
            .map(|s| format!("{}:{}", s.availability.section, s.availability.version))
            .collect();
        // The layout is spliced in as already-rendered JSON: no re-serialisation of 50,000 seats.
        let body = format!(
            "{{\"event_id\":{},\"status\":{},\"version\":{},\"layout\":{},\"availability\":{}}}",
            serde_json::to_string(id.as_str()).unwrap_or_default(),
            serde_json::to_string(&event.status).unwrap_or_default(),
            serde_json::to_string(&version.join(",")).unwrap_or_default(),
            layout.json,
            serde_json::to_string(&availability).unwrap_or_default(),
        );
        Self {
            etag: etag_of(body.as_bytes()),
            body: Bytes::from(body),
            taken,
            free: sections.iter().map(|s| s.availability.free).sum(),
            held: sections.iter().map(|s| s.availability.held).sum(),
            built: Instant::now(),
            began,
            stale: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// When the Redis read it shows began: changes after that are not in it.
    pub fn began(&self) -> Instant {
        self.began
    }

    fn servable(&self) -> bool {
        let age = self.built.elapsed();
        if self.stale.load(std::sync::atomic::Ordering::Relaxed) {
            age < SEATMAP_MIN_REBUILD
        } else {
            age < SEATMAP_MAX_AGE
        }
    }
}

/// All caches of one process.
#[derive(Default)]
pub struct Caches {
    events: RwLock<HashMap<String, (Instant, Arc<Event>)>>,
    venues: RwLock<HashMap<String, Arc<VenueLayout>>>,
    seatmaps: RwLock<HashMap<EventId, Arc<Seatmap>>>,
    /// When each event's availability was last announced as changed: a map whose build began
    /// before that is born stale (the announcement raced the build).
    changed_at: RwLock<HashMap<EventId, Instant>>,
    /// Availability counts per event, with when their read began.
    availability: RwLock<HashMap<EventId, (Instant, Arc<serde_json::Value>)>>,
    /// One Redis read at a time per event and kind (see [`Caches::flight`]).
    flights: std::sync::Mutex<HashMap<(EventId, &'static str), Flight>>,
    /// When the last failed read of each flight began: requests that waited for it fail at once
    /// (503) instead of each retrying in turn behind the same dead node.
    failed: RwLock<HashMap<(EventId, &'static str), Instant>>,
    /// Held while a venue layout is read from Postgres (once per venue and process): when a
    /// sale opens, every request misses at once, and each would read every seat of the venue.
    venue_loading: tokio::sync::Mutex<()>,
    /// Seats best-available picks of this process took or found taken, and when, per event
    /// (see [`Caches::taken_since`]).
    picked: std::sync::Mutex<HashMap<EventId, std::collections::VecDeque<(Instant, SeatId)>>>,
    /// The waiting rooms' counts and tickets, for polls answered from memory.
    pub rooms: crate::room::Boards,
}

/// Held while one read of an event's state from Redis runs.
type Flight = Arc<tokio::sync::Mutex<()>>;

/// A strong ETag for a body.
pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn get<K: std::hash::Hash + Eq, V: Clone>(map: &RwLock<HashMap<K, V>>, key: &K) -> Option<V> {
    map.read().ok().and_then(|m| m.get(key).cloned())
}

fn put<K: std::hash::Hash + Eq, V>(map: &RwLock<HashMap<K, V>>, key: K, value: V) {
    if let Ok(mut m) = map.write() {
        m.insert(key, value);
    }
}

impl Caches {
    /// Applies an announcement.
    pub fn invalidate(&self, update: &coordinator::updates::Update) {
        match update {
            coordinator::updates::Update::Seats { event, .. } => {
                put(&self.changed_at, event.clone(), Instant::now());
                if let Some(map) = get(&self.seatmaps, event) {
                    map.stale.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            coordinator::updates::Update::Event(event) => {
                put(&self.changed_at, event.clone(), Instant::now());
                if let Ok(mut m) = self.events.write() {
                    m.remove(event.as_str());
                }
                if let Ok(mut m) = self.seatmaps.write() {
                    m.remove(event);
                }
                // Announced when a room's settings change, among others.
                self.rooms.forget(event);
            }
            // Order outcomes are for checkout's waiters, not for caches.
            coordinator::updates::Update::Order(_) => {}
        }
    }

    /// An event (any status), `None` when it does not exist.
    pub async fn event(&self, app: &App, id: &EventId) -> Result<Option<Arc<Event>>, ApiError> {
        if let Some((at, event)) = get(&self.events, &id.to_string()) {
            if at.elapsed() < EVENT_MAX_AGE {
                app.metrics
                    .cache_total
                    .with_label_values(&["event", "hit"])
                    .inc();
                return Ok(Some(event));
            }
        }
        app.metrics
            .cache_total
            .with_label_values(&["event", "miss"])
            .inc();
        let Some(event) = catalog::events::get_event(&app.db, id.as_str()).await? else {
            return Ok(None);
        };
        let event = Arc::new(event);
        put(
            &self.events,
            id.to_string(),
            (Instant::now(), event.clone()),
        );
        Ok(Some(event))
    }

    /// A venue's layout (immutable once imported, so cached for the life of the process).
    pub async fn venue(&self, app: &App, venue_id: &str) -> Result<Arc<VenueLayout>, ApiError> {
        if let Some(layout) = get(&self.venues, &venue_id.to_owned()) {
            app.metrics
                .cache_total
                .with_label_values(&["venue", "hit"])
                .inc();
            return Ok(layout);
        }
        let _one_load = self.venue_loading.lock().await;
        if let Some(layout) = get(&self.venues, &venue_id.to_owned()) {
            return Ok(layout);
        }
        app.metrics
            .cache_total
            .with_label_values(&["venue", "miss"])
            .inc();
        // Its own task: a load finishes and is kept even when the request that began it goes
        // away (a client that gave up must not cost the next one the whole read again).
        let (app, id) = (app.clone(), venue_id.to_owned());
        tokio::spawn(async move { load_venue(&app, &id).await })
            .await
            .map_err(|e| ApiError::unavailable("gateway", e.to_string()))?
    }

    /// Whether this process has the venue's layout loaded.
    pub fn has_venue(&self, venue_id: &str) -> bool {
        get(&self.venues, &venue_id.to_owned()).is_some()
    }

    /// Loads the layouts of the venues of sales open or opening within [`WARM_AHEAD`]
    /// ([`catalog::venues_of_sales_within`]) that this process has not loaded yet. Run every
    /// [`WARM_EVERY`] by [`crate::serve`]: the first buyers of a sale would otherwise all wait
    /// for the venue's first read (240-280 ms for a 50,000-seat stadium on the benchmark
    /// machine) at the one moment a sale is busiest, and a gateway started during a sale is
    /// warm before long too. Returns how many were loaded; a venue that fails is logged and
    /// the others are still loaded.
    pub async fn warm(&self, app: &App) -> Result<usize, ApiError> {
        let venues = catalog::venues_of_sales_within(&app.db, WARM_AHEAD).await?;
        let mut loaded = 0;
        for venue in venues {
            if self.has_venue(&venue) {
                continue;
            }
            match self.venue(app, &venue).await {
                Ok(_) => loaded += 1,
                Err(e) => tracing::warn!(venue, error = ?e, "venue not loaded ahead of its sale"),
            }
        }
        Ok(loaded)
    }

    /// A failed read of this kind that began after `asked` (the request waited for it) answers
    /// for this request too: 503 at once, instead of each waiter retrying in turn behind the
    /// same dead node.
    fn failed_since(
        &self,
        id: &EventId,
        kind: &'static str,
        asked: Instant,
    ) -> Result<(), ApiError> {
        match get(&self.failed, &(id.clone(), kind)) {
            Some(began) if began >= asked => Err(ApiError::unavailable(
                "redis",
                format!("the {kind} read this request waited for failed"),
            )),
            _ => Ok(()),
        }
    }

    /// The lock that lets one read of an event's state from Redis run at a time. Requests that
    /// arrive while a read runs wait for it, then take the next read's result, which began after
    /// they arrived: as fresh as reading themselves, but under a rush there is one read in flight
    /// per event and process instead of one per request (a 50,000-seat event is 40 scripts).
    /// Seats this process's best-available picks took (or were refused) since `since`, the
    /// start of the read of the seat map a pick uses. In a rush every pick reads the same cached
    /// map, a quarter of a second old: without this, every buyer in that quarter picks the same
    /// best window, all but one are refused, and each retry waited for a fresh read of the whole
    /// event from Redis (the flash sale's holds timed out at 30 s that way). With it, concurrent
    /// picks in one process pass over each other's seats, and a retry needs no fresh read.
    /// Older entries are in the map already and are dropped.
    pub fn taken_since(&self, id: &EventId, since: Instant) -> HashSet<SeatId> {
        let mut picked = self
            .picked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(list) = picked.get_mut(id) else {
            return HashSet::new();
        };
        // The map a pick uses may be older than another's: keep what a map up to its maximum
        // age could still miss.
        while list
            .front()
            .is_some_and(|(at, _)| at.elapsed() > SEATMAP_MAX_AGE)
        {
            list.pop_front();
        }
        list.iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Records seats as taken for [`Caches::taken_since`].
    pub fn note_taken(&self, id: &EventId, seats: impl IntoIterator<Item = SeatId>) {
        let now = Instant::now();
        let mut picked = self
            .picked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        picked
            .entry(id.clone())
            .or_default()
            .extend(seats.into_iter().map(|s| (now, s)));
    }

    fn flight(&self, id: &EventId, kind: &'static str) -> Flight {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        flights.entry((id.clone(), kind)).or_default().clone()
    }

    /// Availability counts per section and in total, read from Redis for this request (or by a
    /// read that began after it arrived).
    pub async fn availability(
        &self,
        app: &App,
        id: &EventId,
    ) -> Result<Option<Arc<serde_json::Value>>, ApiError> {
        let asked = Instant::now();
        let flight = self.flight(id, "availability");
        let _one_read = flight.lock().await;
        if let Some((began, counts)) = get(&self.availability, id) {
            if began >= asked {
                app.metrics
                    .cache_total
                    .with_label_values(&["availability", "hit"])
                    .inc();
                return Ok(Some(counts));
            }
        }
        app.metrics
            .cache_total
            .with_label_values(&["availability", "miss"])
            .inc();
        self.failed_since(id, "availability", asked)?;
        let began = Instant::now();
        let read = app.coordinator.availability(id).await.inspect_err(|_| {
            put(&self.failed, (id.clone(), "availability"), began);
        });
        let Some(sections) = read? else {
            return Ok(None);
        };
        let totals = sections.iter().fold([0u64; 5], |t, s| {
            [
                t[0] + s.capacity,
                t[1] + s.free,
                t[2] + s.held,
                t[3] + s.sold,
                t[4] + s.blocked,
            ]
        });
        let counts = Arc::new(serde_json::json!({
            "event_id": id,
            "capacity": totals[0], "free": totals[1], "held": totals[2], "sold": totals[3], "blocked": totals[4],
            "sections": sections,
        }));
        put(&self.availability, id.clone(), (began, counts.clone()));
        Ok(Some(counts))
    }

    /// The event's seat map with availability, rendered; rebuilt when older than
    /// [`SEATMAP_MAX_AGE`], announced as changed, or when `fresh` is asked for (then from a read
    /// that began after the request arrived). One rebuild at a time per event ([`Caches::flight`]).
    pub async fn seatmap(
        &self,
        app: &App,
        event: &Event,
        id: &EventId,
        fresh: bool,
    ) -> Result<Option<Arc<Seatmap>>, ApiError> {
        let asked = Instant::now();
        let usable = |map: &Seatmap| {
            if fresh {
                map.began >= asked
            } else {
                map.servable()
            }
        };
        let hit = |map: Arc<Seatmap>| {
            app.metrics
                .cache_total
                .with_label_values(&["seatmap", "hit"])
                .inc();
            Ok(Some(map))
        };
        if let Some(map) = get(&self.seatmaps, id).filter(|m| usable(m)) {
            return hit(map);
        }
        let flight = self.flight(id, "seatmap");
        let _one_build = match flight.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // A rebuild is running: a reader that did not ask for fresh seats takes the map
                // there is, if it is within its age bound, instead of queueing behind the build
                // (under a rush every poll and page view would otherwise wait for it).
                if !fresh {
                    if let Some(map) =
                        get(&self.seatmaps, id).filter(|m| m.built.elapsed() < SEATMAP_MAX_AGE)
                    {
                        return hit(map);
                    }
                }
                flight.lock().await
            }
        };
        if let Some(map) = get(&self.seatmaps, id).filter(|m| usable(m)) {
            return hit(map);
        }
        app.metrics
            .cache_total
            .with_label_values(&["seatmap", "miss"])
            .inc();
        self.failed_since(id, "seatmap", asked)?;
        let layout = self.venue(app, &event.venue_id).await?;
        let build_started = Instant::now();
        let read = app.coordinator.seat_states(id).await.inspect_err(|_| {
            put(&self.failed, (id.clone(), "seatmap"), build_started);
        });
        let Some(sections) = read? else {
            return Ok(None);
        };
        let mut map = Seatmap::render(id, event, &layout, &sections, build_started);
        // Read once rendered: a change announced while a large map rendered makes it stale.
        let stale = get(&self.changed_at, id).is_some_and(|at| at > build_started);
        *map.stale.get_mut() = stale;
        let map = Arc::new(map);
        put(&self.seatmaps, id.clone(), map.clone());
        Ok(Some(map))
    }
}
