//! The scenarios, over HTTP against a running gateway, each driven open-loop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway::auth::Role;
use rand::Rng;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

use crate::open_loop::{open_loop, Schedule};
use crate::stats::{Outcome, Recorder, Stats};
use crate::Target;

/// Buyers with their tokens, minted once (minting is not what is measured).
#[derive(Clone)]
pub struct Buyers(Arc<Vec<(String, String)>>);

impl Buyers {
    /// `n` buyers named `{prefix}-{k}`.
    pub fn new(t: &Target, prefix: &str, n: usize) -> anyhow::Result<Self> {
        let all = (0..n)
            .map(|k| {
                let user = format!("{prefix}-{k}");
                let token = t.token(&user, Role::Buyer)?;
                Ok((user, token))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self(Arc::new(all)))
    }

    /// The buyer for operation `i`.
    pub fn get(&self, i: u64) -> &(String, String) {
        &self.0[(i as usize) % self.0.len()]
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Requests in flight at most, for the whole process: each holds a socket, and the gateway and
/// this generator share one machine's file-descriptor limit (20,000 on the benchmark machine).
/// Past it the gateway's accept loop fails ("too many open files") and pauses, which measured the
/// machine's limit rather than the system. A request waiting for a slot is still timed from its
/// intended start (open loop), so the wait is charged as latency. Real buyers come through an
/// ingress that keeps a bounded pool of connections to the gateways in the same way.
pub const MAX_IN_FLIGHT: usize = 6_000;
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_IN_FLIGHT);

/// Sends `req` in one of the [`SLOTS`], held until the whole body is read: the status and body.
async fn fetch(req: reqwest::RequestBuilder) -> Result<(StatusCode, bytes::Bytes), Outcome> {
    let _slot = SLOTS.acquire().await.ok();
    let res = req.send().await.map_err(|e| Outcome::transport(&e))?;
    let status = res.status();
    // The body is read: a client that does not read it measures only the headers.
    let body = res.bytes().await.map_err(|e| Outcome::transport(&e))?;
    Ok((status, body))
}

async fn get(t: &Target, path: &str) -> Outcome {
    match fetch(t.http.get(format!("{}{path}", t.api))).await {
        Ok((status, _)) => Outcome::from_status(status.as_u16(), &[200, 304], &[]),
        Err(o) => o,
    }
}

/// Browsing: the events list, one event, its availability, in turn.
pub async fn browse(t: &Target, event: &str, schedule: &Schedule) -> Stats {
    let t = t.clone();
    let paths = Arc::new([
        "/events?limit=20".to_owned(),
        format!("/events/{event}"),
        format!("/events/{event}/availability"),
    ]);
    open_loop(
        &format!("browse (events, event, availability) {event}"),
        schedule,
        move |i| {
            let (t, paths) = (t.clone(), paths.clone());
            async move { get(&t, &paths[(i % 3) as usize]).await }
        },
    )
    .await
}

/// The seat map of one event (served from the gateway's cache after the first request).
pub async fn seatmap(t: &Target, event: &str, seats: usize, schedule: &Schedule) -> Stats {
    let t = t.clone();
    let path = Arc::new(format!("/events/{event}/seatmap"));
    open_loop(&format!("seat map, {seats} seats"), schedule, move |_| {
        let (t, path) = (t.clone(), path.clone());
        async move { get(&t, &path).await }
    })
    .await
}

/// How the hold storm picks seats.
#[derive(Clone, Debug)]
pub struct Storm {
    /// The event and its seats.
    pub event: String,
    /// Its seat ids.
    pub seats: Arc<Vec<String>>,
    /// 0.0: every hold asks seats nobody else asks for (until the pool wraps); 1.0: every hold
    /// asks one of the same `hot` seats; in between, that share of holds goes to the hot seats.
    pub contention: f64,
    /// How many seats are hot.
    pub hot: usize,
    /// Successful holds are released at once (not timed), so a long run does not sell out the
    /// venue and the hot seats become free again: the server does that work too.
    pub release: bool,
    /// Holds by quantity on this general-admission area instead of seats: (area id, quantity,
    /// capacity, shards), the last two for the run's name. `seats`, `contention` and `hot` are
    /// then unused.
    pub area: Option<(String, u32, u32, u32)>,
}

/// A venue whose seats are the theatre's and whose standing floor holds `capacity` places over
/// `shards` shard sections (general admission, area id `floor`).
pub fn floor_venue(venue_id: &str, capacity: u32, shards: u32) -> catalog::seatmap::SeatMap {
    let mut map = catalog::seatmap::demo_theatre_as(venue_id);
    let category = map
        .categories
        .last()
        .map(|c| c.id.clone())
        .unwrap_or_default();
    map.areas.push(catalog::seatmap::Area {
        id: "floor".into(),
        name: "Standing floor".into(),
        capacity,
        category,
        shards: Some(shards),
    });
    map
}

/// The hold storm: `POST /events/{id}/reservations` for one seat each (or by quantity on a
/// floor, [`Storm::area`]).
pub async fn holds(t: &Target, buyers: &Buyers, storm: &Storm, schedule: &Schedule) -> Stats {
    let (t, buyers, storm) = (t.clone(), buyers.clone(), Arc::new(storm.clone()));
    let run = crate::run_id();
    let cold = Arc::new(AtomicU64::new(0));
    let released = if storm.release { ", each released" } else { "" };
    let name = match &storm.area {
        Some((_, quantity, capacity, shards)) => format!(
            "holds, GA floor of {capacity} places over {shards} shards, {quantity} a hold{released}"
        ),
        None => format!(
            "holds, contention {:.2} ({} hot seats){released}",
            storm.contention, storm.hot
        ),
    };
    open_loop(&name, schedule, move |i| {
        let (t, buyers, storm, cold, run) = (
            t.clone(),
            buyers.clone(),
            storm.clone(),
            cold.clone(),
            run.clone(),
        );
        async move {
            let (user, token) = buyers.get(i);
            let mut body = json!({"client_reservation_id": format!("{run}-{i}"), "user_id": user,
                "ttl_seconds": 60});
            if let Some((area, quantity, _, _)) = &storm.area {
                body["area"] = json!(area);
                body["quantity"] = json!(quantity);
            } else {
                let n = storm.seats.len();
                let hot = storm.hot.min(n);
                let seat = if rand::thread_rng().gen_bool(storm.contention.clamp(0.0, 1.0)) {
                    &storm.seats[rand::thread_rng().gen_range(0..hot.max(1))]
                } else {
                    let k = cold.fetch_add(1, Ordering::Relaxed) as usize;
                    &storm.seats[hot + k % (n - hot).max(1)]
                };
                body["seat_ids"] = json!([seat]);
            }
            let req = t
                .http
                .post(format!("{}/events/{}/reservations", t.api, storm.event))
                .bearer_auth(token)
                .json(&body);
            let (status, body) = match call_json(req).await {
                Ok(r) => r,
                Err(o) => return o,
            };
            if shed(status, &body) {
                return Outcome::Refused("shed");
            }
            if status == StatusCode::CREATED && storm.release {
                if let Some(hold) = body["hold_id"].as_str() {
                    let req = t
                        .http
                        .delete(format!("{}/reservations/{hold}", t.api))
                        .bearer_auth(token);
                    tokio::spawn(fetch(req));
                }
            }
            // A floor refuses with what is left, a seat with who has it.
            let taken = if storm.area.is_some() {
                "not_enough_seats"
            } else {
                "seat_taken"
            };
            Outcome::from_status(status.as_u16(), &[201], &[(409, taken)])
        }
    })
    .await
}

/// Checkout: hold one seat nobody else asks for, then commit with the sandbox's `tok_visa`;
/// the latency is the pair's, from the intended start to the 200 (the order durably written).
pub async fn checkout(
    t: &Target,
    buyers: &Buyers,
    event: &str,
    seats: Arc<Vec<String>>,
    schedule: &Schedule,
) -> Stats {
    let (t, buyers) = (t.clone(), buyers.clone());
    let event = Arc::new(event.to_owned());
    let run = crate::run_id();
    let next = Arc::new(AtomicU64::new(0));
    open_loop("checkout (hold + commit, sandbox at zero latency)", schedule, move |i| {
        let (t, buyers, event, run, seats, next) = (
            t.clone(),
            buyers.clone(),
            event.clone(),
            run.clone(),
            seats.clone(),
            next.clone(),
        );
        async move {
            let k = next.fetch_add(1, Ordering::Relaxed) as usize;
            let Some(seat) = seats.get(k) else {
                return Outcome::Failed("generator_out_of_seats".into());
            };
            let (user, token) = buyers.get(i);
            let hold = match post(&t, token, &format!("/events/{event}/reservations"), None,
                json!({"client_reservation_id": format!("{run}-{i}"), "user_id": user, "seat_ids": [seat]}))
            .await
            {
                Ok((StatusCode::CREATED, v)) => v,
                Ok((s, v)) if shed(s, &v) => return Outcome::Refused("shed"),
                Ok((s, _)) => return Outcome::Failed(format!("hold_http_{}", s.as_u16())),
                Err(o) => return o,
            };
            let hold_id = hold["hold_id"].as_str().unwrap_or_default();
            match post(&t, token, &format!("/reservations/{hold_id}/commit"), None,
                json!({"idempotency_key": format!("k-{run}-{i}"), "payment_token": "tok_visa"}))
            .await
            {
                Ok((StatusCode::OK, _)) => Outcome::Ok,
                Ok((s, v)) if shed(s, &v) => Outcome::Refused("shed"),
                Ok((StatusCode::ACCEPTED, _)) => Outcome::Failed("commit_pending".into()),
                Ok((s, _)) => Outcome::Failed(format!("commit_http_{}", s.as_u16())),
                Err(o) => o,
            }
        }
    })
    .await
}

/// A `503 overloaded`: the gateway's load shedding refused the request at once (a correct,
/// fast answer under overload, not an error).
fn shed(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE && body["error"]["code"] == "overloaded"
}

async fn post(
    t: &Target,
    token: &str,
    path: &str,
    admission: Option<&str>,
    body: Value,
) -> Result<(StatusCode, Value), Outcome> {
    let mut req = t
        .http
        .post(format!("{}{path}", t.api))
        .bearer_auth(token)
        .json(&body);
    if let Some(a) = admission {
        req = req.header("x-admission-token", a);
    }
    call_json(req).await
}

/// Sends `req`; the status and the JSON body (null when there is none).
async fn call_json(req: reqwest::RequestBuilder) -> Result<(StatusCode, Value), Outcome> {
    let (status, body) = fetch(req).await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// A flash-sale buyer's look at their ticket: the room's answer, or the outcome a failed look
/// ends the buyer with (`poll_http_{status}`, or the transport error).
async fn poll_ticket(t: &Target, token: &str, event: &str, ticket: &str) -> Result<Value, Outcome> {
    let req = t
        .http
        .get(format!("{}/events/{event}/queue/{ticket}", t.api))
        .bearer_auth(token);
    match call_json(req).await? {
        (StatusCode::OK, v) => Ok(v),
        (s, _) => Err(Outcome::Failed(format!("poll_http_{}", s.as_u16()))),
    }
}

/// Puts an event behind a waiting room admitting `rate` buyers a second.
pub async fn set_queue(t: &Target, event: &str, rate: f64, burst: u64) -> anyhow::Result<()> {
    let org = t.token("bench-organizer", Role::Admin)?;
    let res = t
        .http
        .put(format!("{}/events/{event}/admission", t.api))
        .bearer_auth(org)
        .json(&json!({"mode": "queue", "rate_per_second": rate, "burst": burst, "window_seconds": 600}))
        .send()
        .await?;
    anyhow::ensure!(
        res.status().is_success(),
        "admission not set: {} {}",
        res.status(),
        res.text().await.unwrap_or_default()
    );
    Ok(())
}

/// An event of the demo theatre behind a waiting room admitting one buyer a second: its buyers
/// stay waiting, so their polls measure the room, not admissions.
pub async fn waiting_room_event(t: &Target, event: &str) -> anyhow::Result<()> {
    let theatre = catalog::seatmap::demo_theatre_as(&format!("{event}-venue"));
    t.setup_event(event, &theatre, 8).await?;
    set_queue(t, event, 1.0, 1).await
}

/// Queue polling: `buyers` join the room once (not timed), then polls at the schedule's rate.
pub async fn queue_polls(
    t: &Target,
    buyers: &Buyers,
    event: &str,
    schedule: &Schedule,
) -> anyhow::Result<Stats> {
    let mut tickets = Vec::with_capacity(buyers.len());
    for k in 0..buyers.len() as u64 {
        let (_, token) = buyers.get(k);
        let (s, v) = post(t, token, &format!("/events/{event}/queue"), None, json!({}))
            .await
            .map_err(|o| anyhow::anyhow!("join failed: {o:?}"))?;
        anyhow::ensure!(s == StatusCode::OK, "join: {s} {v}");
        tickets.push(v["ticket"].as_str().unwrap_or_default().to_owned());
    }
    let (t, buyers, tickets) = (t.clone(), buyers.clone(), Arc::new(tickets));
    let event = Arc::new(event.to_owned());
    Ok(open_loop("queue polls", schedule, move |i| {
        let (t, buyers, tickets, event) =
            (t.clone(), buyers.clone(), tickets.clone(), event.clone());
        async move {
            let k = i as usize % tickets.len();
            let (_, token) = buyers.get(k as u64);
            let req = t
                .http
                .get(format!("{}/events/{event}/queue/{}", t.api, tickets[k]))
                .bearer_auth(token);
            // The body is read, not parsed: only the status is judged here.
            match fetch(req).await {
                Ok((s, _)) => Outcome::from_status(s.as_u16(), &[200], &[]),
                Err(o) => o,
            }
        }
    })
    .await)
}

/// A flash sale's parameters.
#[derive(Clone, Debug, Serialize)]
pub struct FlashSale {
    /// The event (behind a waiting room).
    pub event: String,
    /// Seats on sale.
    pub seats: usize,
    /// Buyers arriving.
    pub users: usize,
    /// Buyers arriving per second (open loop).
    pub arrival_rate: f64,
    /// Buyers the room admits per second.
    pub admit_rate: f64,
    /// Give up after this long.
    pub deadline: Duration,
}

/// What a flash sale did, and its correctness checks.
#[derive(Clone, Debug, Serialize)]
pub struct FlashReport {
    /// The parameters.
    pub sale: FlashSale,
    /// Seconds from the first buyer's arrival to the last seat sold (or the deadline).
    pub sold_out_after_s: f64,
    /// Orders answered 200.
    pub orders_200: u64,
    /// Commits answered 202 and later seen paid.
    pub orders_pending_then_paid: u64,
    /// Buyers who left without seats (sold out while they waited, or no seat left to hold).
    pub left_without_seats: u64,
    /// Errors by kind.
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Live sold seats in Postgres for the event.
    pub sold_in_postgres: i64,
    /// Seats sold more than once (must be 0).
    pub seats_sold_twice: i64,
    /// 200 answers whose order Postgres does not have as paid (must be 0).
    pub confirmed_orders_missing: i64,
    /// Captured, unrefunded payments for the event without a paid order, plus paid orders
    /// without their captured payment (must be 0).
    pub payments_without_order: i64,
    /// Oversells Postgres refused (recorded incidents; must be 0: Redis is the first guard).
    pub oversell_incidents: i64,
    /// Whether the event ended frozen (the oversell playbook; must be false).
    pub frozen: bool,
    /// 5xx answers other than 503 (must be 0).
    pub server_errors: u64,
    /// Every check held.
    pub correct: bool,
    /// Step latencies.
    pub join: Stats,
    /// Polls.
    pub poll: Stats,
    /// Best-available holds.
    pub hold: Stats,
    /// Commits.
    pub commit: Stats,
    /// The gateway's admission pace (`gateway_admission_pace`), read once a second during the
    /// sale: how much the room slowed itself for checkout.
    pub pace: PaceSeen,
}

/// The admission pace as read during a flash sale.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PaceSeen {
    /// Readings taken.
    pub readings: usize,
    /// The lowest.
    pub lowest: Option<f64>,
    /// Their mean.
    pub mean: Option<f64>,
    /// Readings under 1 (the room slowed).
    pub slowed: usize,
}

impl PaceSeen {
    fn of(readings: &[f64]) -> Self {
        let n = readings.len();
        Self {
            readings: n,
            lowest: readings.iter().copied().reduce(f64::min),
            mean: (n > 0).then(|| readings.iter().sum::<f64>() / n as f64),
            slowed: readings.iter().filter(|p| **p < 1.0).count(),
        }
    }
}

/// Reads `gateway_admission_pace` from the gateway's metrics once a second until `stop`.
fn watch_pace(t: &Target, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<f64>> {
    let (http, url) = (t.http.clone(), format!("{}/metrics", t.admin));
    tokio::spawn(async move {
        let mut readings = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let text = match http.get(&url).send().await {
                Ok(res) => res.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let pace = text
                .lines()
                .find_map(|l| l.strip_prefix("gateway_admission_pace "))
                .and_then(|v| v.trim().parse::<f64>().ok());
            readings.extend(pace);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        readings
    })
}

/// The flash sale end to end: buyers join the room, poll until admitted, take a best-available
/// hold of one seat, commit. Then the books are checked in Postgres.
pub async fn flash_sale(t: &Target, sale: &FlashSale) -> anyhow::Result<FlashReport> {
    let buyers = Buyers::new(t, &format!("fan-{}", crate::run_id()), sale.users)?;
    let started = Instant::now();
    let stop_watching = Arc::new(AtomicBool::new(false));
    let pace_watch = watch_pace(t, stop_watching.clone());
    let schedule = Schedule {
        rate: sale.arrival_rate,
        duration: Duration::from_secs_f64(sale.users as f64 / sale.arrival_rate),
        max_in_flight: sale.users + 1,
        drain: sale.deadline,
    };
    let floor = Arc::new(SaleFloor {
        t: t.clone(),
        buyers,
        sale: sale.clone(),
        started,
        steps: Mutex::new(Default::default()),
        sold: AtomicU64::new(0),
        sold_out: AtomicBool::new(false),
        confirmed: Mutex::new(Vec::new()),
        last_sale: Mutex::new(started),
    });
    let buying = floor.clone();
    let overall = open_loop("flash sale buyers", &schedule, move |i| {
        let floor = buying.clone();
        async move { floor.buyer(i).await }
    })
    .await;
    stop_watching.store(true, Ordering::Relaxed);
    let pace = PaceSeen::of(&pace_watch.await.unwrap_or_default());
    let sold_out_after_s = floor
        .last_sale
        .lock()
        .map(|l| l.duration_since(started).as_secs_f64())
        .unwrap_or_default();
    // Pending commits get the reconciler's time to settle before the books are read.
    let pending = overall.outcomes.get("pending").copied().unwrap_or(0);
    let confirmed = floor
        .confirmed
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let books = check_books(t, &sale.event, &confirmed, pending > 0).await?;
    let steps = floor.steps.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(flash_report(
        sale,
        &overall,
        &books,
        &steps,
        confirmed.len() as u64,
        sold_out_after_s,
        pace,
    ))
}

/// What every buyer of a flash sale shares: the sale, each step's timings (join, poll, hold,
/// commit), and what was sold.
struct SaleFloor {
    t: Target,
    buyers: Buyers,
    sale: FlashSale,
    started: Instant,
    steps: Mutex<[Recorder; 4]>,
    sold: AtomicU64,
    sold_out: AtomicBool,
    confirmed: Mutex<Vec<String>>,
    last_sale: Mutex<Instant>,
}

/// The steps a buyer is timed at.
const JOIN: usize = 0;
const POLL: usize = 1;
const HOLD: usize = 2;
const COMMIT: usize = 3;

impl SaleFloor {
    fn timed(&self, step: usize, began: Instant, o: &Outcome) {
        if let Ok(mut s) = self.steps.lock() {
            s[step].record(began.elapsed(), o);
        }
    }

    /// Why a waiting buyer leaves now, if they do: the sale sold out, or its deadline passed.
    fn leaving(&self) -> Option<Outcome> {
        if self.sold_out.load(Ordering::Relaxed) {
            return Some(Outcome::Refused("left_sold_out"));
        }
        if self.started.elapsed() > self.sale.deadline {
            return Some(Outcome::Refused("left_at_deadline"));
        }
        None
    }

    /// Buyer `i` from arrival to the end: join, wait to be admitted, hold a seat, commit.
    async fn buyer(&self, i: u64) -> Outcome {
        let (user, token) = self.buyers.get(i);
        let bought = async {
            let (ticket, admission) = self.admitted(token).await?;
            let hold = self.hold(i, user, token, &ticket, &admission).await?;
            let hold_id = hold["hold_id"].as_str().unwrap_or_default();
            Ok(self.commit(i, token, hold_id).await)
        };
        bought.await.unwrap_or_else(|left: Outcome| left)
    }

    /// Joins the room and polls it until admitted: the ticket and the admission token.
    async fn admitted(&self, token: &str) -> Result<(String, String), Outcome> {
        let (t, sale) = (&self.t, &self.sale);
        let began = Instant::now();
        let (s, ticket) = post(
            t,
            token,
            &format!("/events/{}/queue", sale.event),
            None,
            json!({}),
        )
        .await
        .inspect_err(|o| self.timed(JOIN, began, o))?;
        let o = Outcome::from_status(s.as_u16(), &[200], &[]);
        self.timed(JOIN, began, &o);
        if !matches!(o, Outcome::Ok) {
            return Err(o);
        }
        let id = ticket["ticket"].as_str().unwrap_or_default().to_owned();
        let mut view = ticket;
        loop {
            if view["status"] == "admitted" {
                let admission = view["admission_token"].as_str().unwrap_or_default();
                return Ok((id, admission.to_owned()));
            }
            // The room says nothing is left: leave, as a buyer would.
            if view["status"] == "sold_out" {
                return Err(Outcome::Refused("left_sold_out"));
            }
            if let Some(left) = self.leaving() {
                return Err(left);
            }
            let wait = view["poll_after_ms"].as_u64().unwrap_or(1000).max(100);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            if self.sold_out.load(Ordering::Relaxed) {
                return Err(Outcome::Refused("left_sold_out"));
            }
            view = self.poll(token, &id).await?;
        }
    }

    async fn poll(&self, token: &str, ticket: &str) -> Result<Value, Outcome> {
        let began = Instant::now();
        let polled = poll_ticket(&self.t, token, &self.sale.event, ticket).await;
        self.timed(POLL, began, polled.as_ref().err().unwrap_or(&Outcome::Ok));
        polled
    }

    /// A best-available hold of one seat (a shed one is sent again after its Retry-After, ten
    /// times at most). A hold refused because others were faster
    /// (seat_taken) is tried again after a short random pause, as a buyer would. "Not enough
    /// seats" while some are held is not the end (a held seat may come back): the buyer looks at
    /// the room again, and tries again once seats are free; only a room that says sold out
    /// (nothing free, nothing held), or the deadline, sends them away.
    async fn hold(
        &self,
        i: u64,
        user: &str,
        token: &str,
        ticket: &str,
        admission: &str,
    ) -> Result<Value, Outcome> {
        let (t, sale) = (&self.t, &self.sale);
        let (mut tries, mut shed_tries) = (0, 0);
        loop {
            if self.started.elapsed() > sale.deadline {
                return Err(Outcome::Refused("left_at_deadline"));
            }
            let began = Instant::now();
            match post(t, token, &format!("/events/{}/reservations", sale.event), Some(admission),
                json!({"client_reservation_id": format!("fan-{i}"), "user_id": user, "quantity": 1, "category": "standard"}))
            .await
            {
                Ok((StatusCode::CREATED, v)) => {
                    self.timed(HOLD, began, &Outcome::Ok);
                    return Ok(v);
                }
                Ok((StatusCode::CONFLICT, v)) if v["error"]["code"] == "not_enough_seats" => {
                    self.timed(HOLD, began, &Outcome::Refused("not_enough_seats"));
                    self.until_seats_free(token, ticket).await?;
                }
                Ok((StatusCode::CONFLICT, _)) => {
                    tries += 1;
                    self.timed(HOLD, began, &Outcome::Refused("seat_taken"));
                    if self.sold_out.load(Ordering::Relaxed) {
                        return Err(Outcome::Refused("left_sold_out"));
                    }
                    if tries >= 20 {
                        return Err(Outcome::Refused("gave_up_contended"));
                    }
                    let pause = rand::thread_rng().gen_range(100..400);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                // Shed (503 overloaded, Retry-After 1): the buyer waits as told and tries again,
                // as a client library would; the refusal is counted as shed, not as an error.
                Ok((status, v)) if shed(status, &v) && shed_tries < 10 => {
                    shed_tries += 1;
                    self.timed(HOLD, began, &Outcome::Refused("shed"));
                    let pause = rand::thread_rng().gen_range(1000..1500);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                // Shed ten times over: the buyer gives up, as a person would. The gateway
                // answered correctly and at once every time: a refusal, not an error.
                Ok((status, v)) if shed(status, &v) => {
                    self.timed(HOLD, began, &Outcome::Refused("shed"));
                    return Err(Outcome::Refused("gave_up_shed"));
                }
                Ok((s, _)) => {
                    let o = Outcome::Failed(format!("hold_http_{}", s.as_u16()));
                    self.timed(HOLD, began, &o);
                    return Err(o);
                }
                Err(o) => {
                    self.timed(HOLD, began, &o);
                    return Err(o);
                }
            }
        }
    }

    /// Back to the room until it shows seats free again (`Ok`), or says sold out.
    async fn until_seats_free(&self, token: &str, ticket: &str) -> Result<(), Outcome> {
        loop {
            if let Some(left) = self.leaving() {
                return Err(left);
            }
            let pause = rand::thread_rng().gen_range(500..1500);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let v = self.poll(token, ticket).await?;
            match v["status"].as_str() {
                Some("admitted") if v["seats_left"].as_u64() != Some(0) => return Ok(()),
                Some("admitted") => {}
                Some("sold_out") => return Err(Outcome::Refused("left_sold_out")),
                // The shopping window ended.
                _ => return Err(Outcome::Refused("left_at_deadline")),
            }
        }
    }

    /// Commits the hold. A commit that got no answer (a timeout, a dropped connection) or a 503
    /// is sent again with the same idempotency key, as a client library would: the buyer was
    /// told nothing, and the key makes a second send safe. Each send is timed apart.
    async fn commit(&self, i: u64, token: &str, hold_id: &str) -> Outcome {
        let mut sends = 0;
        let (began, outcome) = loop {
            sends += 1;
            let began = Instant::now();
            let answer = post(
                &self.t,
                token,
                &format!("/reservations/{hold_id}/commit"),
                None,
                json!({"idempotency_key": format!("fan-{i}"), "payment_token": "tok_visa"}),
            )
            .await;
            let outcome = match answer {
                Ok((StatusCode::OK, v)) => {
                    if let Ok(mut c) = self.confirmed.lock() {
                        c.push(v["order_id"].as_str().unwrap_or_default().to_owned());
                    }
                    Outcome::Ok
                }
                Ok((StatusCode::ACCEPTED, _)) => Outcome::Refused("pending"),
                // The first send is still running (its client gave up, the server did not).
                Ok((StatusCode::CONFLICT, v)) if v["error"]["code"] == "request_in_progress" => {
                    Outcome::Failed("commit_in_progress".into())
                }
                // Shed: sent again after its Retry-After, like any 503, but not an error.
                Ok((status, v)) if shed(status, &v) => Outcome::Refused("shed"),
                Ok((s, _)) => Outcome::Failed(format!("commit_http_{}", s.as_u16())),
                Err(o) => o,
            };
            let unanswered = match &outcome {
                Outcome::Failed(k) => k == "commit_http_503" || !k.starts_with("commit_http_"),
                Outcome::Refused(k) => *k == "shed",
                _ => false,
            };
            if !unanswered || sends >= 10 || self.started.elapsed() > self.sale.deadline {
                break (began, outcome);
            }
            self.timed(COMMIT, began, &outcome);
            let pause = rand::thread_rng().gen_range(200..1000);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        };
        self.timed(COMMIT, began, &outcome);
        if matches!(outcome, Outcome::Ok) {
            if let Ok(mut l) = self.last_sale.lock() {
                *l = Instant::now();
            }
            if self.sold.fetch_add(1, Ordering::Relaxed) + 1 >= self.sale.seats as u64 {
                self.sold_out.store(true, Ordering::Relaxed);
            }
        }
        outcome
    }
}

/// The sale's report and verdict, from what the buyers saw and what Postgres holds.
fn flash_report(
    sale: &FlashSale,
    overall: &Stats,
    books: &Books,
    steps: &[Recorder; 4],
    orders_200: u64,
    sold_out_after_s: f64,
    pace: PaceSeen,
) -> FlashReport {
    let pending = overall.outcomes.get("pending").copied().unwrap_or(0);
    let cpu = crate::procs::CpuDelta::default();
    let finish =
        |name: &str, r: &Recorder| r.finish(name, None, overall_secs(overall), 0, 0, cpu.clone());
    let errors = overall
        .outcomes
        .iter()
        .filter(|(k, _)| {
            !["ok", "pending"].contains(&k.as_str()) && !LEFT_WITHOUT_SEATS.contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    // 503 under overload is an honest answer; any other 5xx is a bug (invariant 4).
    let server_errors: u64 = overall
        .outcomes
        .iter()
        .filter(|(k, _)| k.contains("http_5") && !k.ends_with("http_503"))
        .map(|(_, v)| *v)
        .sum();
    let correct = books.sold <= sale.seats as i64
        && books.twice == 0
        && books.incidents == 0
        && !books.frozen
        && books.missing == 0
        && books.unmatched_payments == 0
        && server_errors == 0;
    FlashReport {
        sale: sale.clone(),
        sold_out_after_s,
        orders_200,
        orders_pending_then_paid: books.pending_paid.min(pending as i64).max(0) as u64,
        left_without_seats: LEFT_WITHOUT_SEATS
            .iter()
            .map(|k| overall.outcomes.get(*k).copied().unwrap_or(0))
            .sum(),
        errors,
        sold_in_postgres: books.sold,
        seats_sold_twice: books.twice,
        confirmed_orders_missing: books.missing,
        payments_without_order: books.unmatched_payments,
        oversell_incidents: books.incidents,
        frozen: books.frozen,
        server_errors,
        correct,
        join: finish("flash: join", &steps[JOIN]),
        poll: finish("flash: poll", &steps[POLL]),
        hold: finish("flash: best-available hold", &steps[HOLD]),
        commit: finish("flash: commit", &steps[COMMIT]),
        pace,
    }
}

/// How a flash-sale buyer leaves without seats (business outcomes, not errors).
const LEFT_WITHOUT_SEATS: [&str; 4] = [
    "left_sold_out",
    "left_at_deadline",
    "gave_up_contended",
    "gave_up_shed",
];

fn overall_secs(s: &Stats) -> Duration {
    Duration::from_secs_f64(s.seconds.max(1e-3))
}

struct Books {
    sold: i64,
    twice: i64,
    incidents: i64,
    frozen: bool,
    missing: i64,
    unmatched_payments: i64,
    pending_paid: i64,
}

/// Captured payments of `event` without a paid order, plus paid orders without a captured
/// payment: the provider's own records (listed page by page, as reconciliation reads them)
/// against Postgres.
async fn unmatched_payments(t: &Target, event: &str) -> anyhow::Result<i64> {
    let mut captured = std::collections::HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = t
            .payments
            .list_succeeded_page(0, payments::now_unix() + 86_400, after.as_deref())
            .await?;
        captured.extend(
            page.payments
                .into_iter()
                .filter(|p| p.metadata.get(orders::meta::EVENT).map(String::as_str) == Some(event))
                .map(|p| p.id),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let paid: std::collections::HashSet<String> = sqlx::query_as::<_, (String,)>(
        "SELECT payment_ref FROM orders WHERE event_id = $1 AND status = 'paid'",
    )
    .bind(event)
    .fetch_all(&t.db)
    .await?
    .into_iter()
    .map(|(p,)| p)
    .collect();
    Ok(captured.symmetric_difference(&paid).count() as i64)
}

/// The invariants, read from Postgres: sold at most once, every 200 durable, every captured
/// payment an order (or refunded). With commits still pending, waits (bounded) for them to settle.
async fn check_books(
    t: &Target,
    event: &str,
    confirmed: &[String],
    wait_for_pending: bool,
) -> anyhow::Result<Books> {
    // A 200 without a readable order id counts as missing (the nil id matches no order).
    let ids: Vec<uuid::Uuid> = confirmed
        .iter()
        .map(|o| uuid::Uuid::parse_str(o).unwrap_or_default())
        .collect();
    let until = Instant::now() + Duration::from_secs(if wait_for_pending { 30 } else { 10 });
    loop {
        let (sold,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM sold_seats WHERE event_id = $1 AND live")
                .bind(event)
                .fetch_one(&t.db)
                .await?;
        let (twice,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM (SELECT seat_id FROM sold_seats WHERE event_id = $1 AND live
             GROUP BY seat_id HAVING count(*) > 1) x",
        )
        .bind(event)
        .fetch_one(&t.db)
        .await?;
        let (present,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM orders WHERE id = ANY($1) AND status = 'paid'")
                .bind(&ids)
                .fetch_one(&t.db)
                .await?;
        let (paid_orders,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM orders WHERE event_id = $1 AND status = 'paid'")
                .bind(event)
                .fetch_one(&t.db)
                .await?;
        // The sandbox's ledger: captured and not refunded, matched to paid orders one by one,
        // both ways. (With the Stripe provider the same check is the reconciler's.)
        let unmatched = unmatched_payments(t, event).await?;
        let (incidents,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM oversell_incidents WHERE event_id = $1")
                .bind(event)
                .fetch_one(&t.db)
                .await?;
        let (status,): (String,) = sqlx::query_as("SELECT status::text FROM events WHERE id = $1")
            .bind(event)
            .fetch_one(&t.db)
            .await?;
        let books = Books {
            sold,
            twice,
            incidents,
            frozen: status == "frozen",
            missing: ids.len() as i64 - present,
            unmatched_payments: unmatched,
            pending_paid: paid_orders - present,
        };
        if books.unmatched_payments == 0 || Instant::now() >= until {
            return Ok(books);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
