//! The chaos suite's client (`loadgen chaos-sale`, driven by `scripts/chaos`): a flash sale
//! against several gateways at once, logging every answer and every order it saw paid, for the
//! books checker ([`crate::books`]) to verify afterwards.
//!
//! Buyers arrive open-loop; each takes one best-available hold (of the hot category most of
//! the time, so one section is the hottest) and then does one of: pays (`tok_visa`), is declined
//! (`tok_chargeDeclined`) and pays again with another card or walks away, goes through 3-D
//! Secure (`tok_requires_action`, completed at the sandbox as the buyer's bank would), pays
//! slowly (`tok_timeout`: the answer comes after checkout's deadline), cancels, or abandons the
//! hold to expire. Like a client behind a load balancer, a request that got no answer or a 503
//! is sent again, to the other gateway, with the same idempotency key.
//!
//! Files written in `--dir` (read by [`crate::books`]):
//! - `responses.csv`: `unix_ms,gateway,op,status,error_code` for every answer (status 0: no
//!   answer);
//! - `paid.jsonl`: `{"order_id","user","seats","seen"}` for every order answered 200 or read
//!   back `paid`;
//! - `sale.json`: the event, its sections and the hot section's hash tag (for the fault
//!   schedule: the Redis primary that owns it).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};

use crate::open_loop::{open_loop, Schedule};
use crate::scenarios::Buyers;
use crate::stats::Outcome;
use crate::Target;

/// The sale's parameters.
#[derive(Clone, Debug, Serialize)]
pub struct ChaosSale {
    /// The event.
    pub event: String,
    /// Public API base URLs of the gateways (requests are spread over them).
    pub gateways: Vec<String>,
    /// Buyers arriving.
    pub buyers: usize,
    /// Seats on sale (rounded up to whole rows of 25), in three sections: `hot` (the hot
    /// category, two fifths of the seats, asked for by three buyers in five) and `s1`, `s2`.
    pub seats: usize,
    /// Buyers arriving per second.
    pub arrival_rate: f64,
    /// A buyer still busy this long after the first arrival gives up.
    pub deadline: Duration,
    /// Where the logs go.
    pub dir: PathBuf,
}

/// What a buyer sets out to do once they hold seats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    Pay,
    Declined,
    ThreeDSecure,
    SlowPayment,
    Cancel,
    Abandon,
}

impl Plan {
    /// The mix: mostly buyers who pay, and every other path often enough to be hit by faults.
    fn pick(rng: &mut impl Rng) -> Self {
        match rng.gen_range(0..100) {
            0..50 => Plan::Pay,
            50..62 => Plan::Declined,
            62..72 => Plan::ThreeDSecure,
            72..80 => Plan::SlowPayment,
            80..90 => Plan::Cancel,
            _ => Plan::Abandon,
        }
    }
}

/// The hot section's id: the seats of the hot category, asked for by most buyers.
pub const HOT_SECTION: &str = "hot";

/// The client's files, shared by the buyers.
struct Logs {
    started: Instant,
    responses: Mutex<std::io::BufWriter<std::fs::File>>,
    paid: Mutex<std::fs::File>,
    paid_count: AtomicU64,
}

impl Logs {
    fn answer(&self, gateway: usize, op: &str, status: u16, body: &Value) {
        let ms = chrono::Utc::now().timestamp_millis();
        // The error code says which 409 or 404 it was (codes are snake_case: no comma).
        let code = body["error"]["code"].as_str().unwrap_or_default();
        if let Ok(mut w) = self.responses.lock() {
            let _ = writeln!(w, "{ms},{gateway},{op},{status},{code}");
        }
    }

    fn paid(&self, order: &str, user: &str, seats: &Value, seen: &str) {
        let line = json!({"order_id": order, "user": user, "seats": seats, "seen": seen});
        if let Ok(mut w) = self.paid.lock() {
            // Written through at once: a client that dies still leaves what it saw.
            let _ = writeln!(w, "{line}");
        }
        self.paid_count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The response log's file name.
const RESPONSES: &str = "responses.csv";
/// The paid orders' file name.
const PAID: &str = "paid.jsonl";

/// The response log of a sale logged in `dir`.
pub fn responses_file(dir: &Path) -> PathBuf {
    dir.join(RESPONSES)
}

/// The orders seen paid in a sale logged in `dir`.
pub fn paid_file(dir: &Path) -> PathBuf {
    dir.join(PAID)
}

/// One buyer's context.
struct Ctx {
    t: Target,
    sale: ChaosSale,
    logs: Logs,
    sandbox: payments::sandbox::Sandbox,
}

/// Sets the event up (three sections, four tickets per buyer) and writes `sale.json`.
pub async fn setup(t: &Target, sale: &ChaosSale) -> anyhow::Result<()> {
    // At least a row in each section.
    let rows = sale.seats.div_ceil(25).max(5);
    let hot_rows = (rows * 2).div_ceil(5);
    let rest = rows - hot_rows;
    let map = catalog::seatmap::theatre(
        &format!("{}-venue", sale.event),
        "Chaos hall",
        &[
            (HOT_SECTION, "Hot", "premium", hot_rows),
            ("s1", "Section 1", "standard", rest.div_ceil(2)),
            ("s2", "Section 2", "standard", rest / 2),
        ],
        25,
    );
    t.setup_event(&sale.event, &map, 4).await?;
    // A sale against an event that is not on sale would serve nobody and prove nothing.
    let on_sale: Option<(String,)> =
        sqlx::query_as("SELECT status::text FROM events WHERE id = $1")
            .bind(&sale.event)
            .fetch_optional(&t.db)
            .await?;
    anyhow::ensure!(
        on_sale.as_ref().is_some_and(|(s,)| s == "on_sale"),
        "event {} not on sale after setup: {on_sale:?}",
        sale.event
    );
    let event = coordinator::EventId::parse(&sale.event).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hot = coordinator::SectionId::parse(HOT_SECTION).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(&sale.dir)?;
    std::fs::write(
        sale.dir.join("sale.json"),
        serde_json::to_string_pretty(&json!({
            "event": sale.event,
            "hot_section": HOT_SECTION,
            "hot_tag": coordinator::keys::section_tag(&event, &hot),
            "seats": map.seats().count(),
        }))?,
    )?;
    Ok(())
}

/// Runs the sale; returns a summary of what the buyers did.
pub async fn run(
    t: &Target,
    sale: &ChaosSale,
    sandbox: payments::sandbox::Sandbox,
) -> anyhow::Result<Value> {
    anyhow::ensure!(!sale.gateways.is_empty(), "no gateway");
    std::fs::create_dir_all(&sale.dir)?;
    let file = |name: &str| -> anyhow::Result<std::fs::File> {
        std::fs::File::create(sale.dir.join(name)).with_context(|| name.to_owned())
    };
    let logs = Logs {
        started: Instant::now(),
        responses: Mutex::new(std::io::BufWriter::new(file(RESPONSES)?)),
        paid: Mutex::new(file(PAID)?),
        paid_count: AtomicU64::new(0),
    };
    let buyers = Buyers::new(t, &format!("chaos-{}", crate::run_id()), sale.buyers)?;
    let ctx = Arc::new(Ctx {
        t: t.clone(),
        sale: sale.clone(),
        logs,
        sandbox,
    });
    let outcomes = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let schedule = Schedule {
        rate: sale.arrival_rate,
        duration: Duration::from_secs_f64(sale.buyers as f64 / sale.arrival_rate),
        max_in_flight: sale.buyers + 1,
        drain: sale.deadline + Duration::from_secs(5),
    };
    let stats = open_loop("chaos sale buyers", &schedule, {
        let (ctx, buyers, outcomes) = (ctx.clone(), buyers.clone(), outcomes.clone());
        move |i| {
            let (ctx, buyers, outcomes) = (ctx.clone(), buyers.clone(), outcomes.clone());
            async move {
                let (user, token) = buyers.get(i).clone();
                let ended = buyer(&ctx, i, &user, &token).await;
                if let Ok(mut o) = outcomes.lock() {
                    *o.entry(ended.to_owned()).or_default() += 1;
                }
                Outcome::Ok
            }
        }
    })
    .await;
    if let Ok(mut w) = ctx.logs.responses.lock() {
        w.flush()?;
    }
    let outcomes = outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    Ok(json!({
        "buyers": sale.buyers,
        "seconds": stats.seconds,
        "paid_seen": ctx.logs.paid_count.load(Ordering::Relaxed),
        "buyers_ended": outcomes,
    }))
}

/// A request's answer: the status (0: none) and the JSON body.
type Answer = (u16, Value);

impl Ctx {
    fn past_deadline(&self) -> bool {
        self.logs.started.elapsed() > self.sale.deadline
    }

    /// Sends one request to gateway `g`, logged.
    async fn send(
        &self,
        g: usize,
        op: &str,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Answer {
        let base = &self.sale.gateways[g % self.sale.gateways.len()];
        let mut req = self
            .t
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(15));
        if let Some(b) = body {
            req = req.json(b);
        }
        let answer = match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let body = res
                    .bytes()
                    .await
                    .map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null));
                match body {
                    Ok(v) => (status, v),
                    Err(_) => (0, Value::Null),
                }
            }
            Err(_) => (0, Value::Null),
        };
        self.logs
            .answer(g % self.sale.gateways.len(), op, answer.0, &answer.1);
        answer
    }

    /// Sends a request until it gets an answer that is not "try again" (no answer, 503, 409
    /// `request_in_progress`), switching gateways each time, for at most ten sends or the
    /// deadline. The request must be idempotent (a client reservation id, an idempotency key).
    async fn call(
        &self,
        first: usize,
        op: &str,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Answer {
        let mut g = first;
        let mut sends = 0;
        loop {
            sends += 1;
            let answer = self.send(g, op, method.clone(), path, token, body).await;
            let again = answer.0 == 0
                || answer.0 == 503
                || (answer.0 == 409 && answer.1["error"]["code"] == "request_in_progress");
            if !again || sends >= 10 || self.past_deadline() {
                return answer;
            }
            g += 1;
            let pause = rand::thread_rng().gen_range(200..800);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    /// Reads the order back until it is settled (paid, or anything but pending), bounded.
    async fn follow(&self, g: usize, order: &str, user: &str, token: &str) -> &'static str {
        for _ in 0..40 {
            if self.past_deadline() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(750)).await;
            let (status, v) = self
                .call(
                    g,
                    "order",
                    reqwest::Method::GET,
                    &format!("/orders/{order}"),
                    token,
                    None,
                )
                .await;
            if status != 200 {
                continue;
            }
            match v["status"].as_str() {
                Some("paid") => {
                    self.logs.paid(order, user, &v["seats"], "read_back");
                    return "paid_later";
                }
                Some("pending") | Some("requires_action") | Some("charging") => {}
                _ => return "not_paid",
            }
        }
        "unsettled_at_deadline"
    }
}

/// One buyer, start to end; what they ended with.
async fn buyer(ctx: &Ctx, i: u64, user: &str, token: &str) -> &'static str {
    let (plan, quantity, hot, first_gateway) = {
        let mut rng = rand::thread_rng();
        (
            Plan::pick(&mut rng),
            rng.gen_range(1..=2u32),
            rng.gen_bool(0.6),
            rng.gen_range(0..ctx.sale.gateways.len()),
        )
    };
    let g = first_gateway;
    let ttl = if plan == Plan::Abandon { 8 } else { 120 };
    let category = if hot { "premium" } else { "standard" };
    // Not enough seats free now: a held seat may come back (a cancel, an expiry, a decline),
    // so the buyer looks again a few times before leaving.
    let mut hold = None;
    for attempt in 0..4 {
        let body = json!({"client_reservation_id": format!("r-{i}-{attempt}"), "user_id": user,
            "quantity": quantity, "category": category, "ttl_seconds": ttl});
        let (status, v) = ctx
            .call(
                g,
                "hold",
                reqwest::Method::POST,
                &format!("/events/{}/reservations", ctx.sale.event),
                token,
                Some(&body),
            )
            .await;
        match status {
            200 | 201 => {
                hold = Some(v);
                break;
            }
            409 | 429 => {}
            0 | 503 => return "hold_unanswered",
            _ => return "hold_refused",
        }
        if ctx.past_deadline() {
            break;
        }
        let pause = rand::thread_rng().gen_range(1_000..3_000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let Some(hold) = hold else {
        return "left_without_seats";
    };
    let hold_id = hold["hold_id"].as_str().unwrap_or_default().to_owned();
    match plan {
        Plan::Abandon => return "abandoned",
        Plan::Cancel => {
            let pause = rand::thread_rng().gen_range(200..2_000);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let (status, _) = ctx
                .call(
                    g,
                    "cancel",
                    reqwest::Method::DELETE,
                    &format!("/reservations/{hold_id}"),
                    token,
                    None,
                )
                .await;
            return if status == 204 {
                "cancelled"
            } else {
                "cancel_unanswered"
            };
        }
        _ => {}
    }
    let commit = |key: String, card: &'static str| {
        let hold_id = hold_id.clone();
        async move {
            let body = json!({"idempotency_key": key, "payment_token": card});
            ctx.call(
                g,
                "commit",
                reqwest::Method::POST,
                &format!("/reservations/{hold_id}/commit"),
                token,
                Some(&body),
            )
            .await
        }
    };
    let card = match plan {
        Plan::Declined => "tok_chargeDeclined",
        Plan::ThreeDSecure => "tok_requires_action",
        Plan::SlowPayment => "tok_timeout",
        _ => "tok_visa",
    };
    let (mut status, mut v) = commit(format!("k-{i}"), card).await;
    if plan == Plan::Declined && status == 402 {
        if rand::thread_rng().gen_bool(0.5) {
            return "declined_and_left";
        }
        (status, v) = commit(format!("k-{i}-again"), "tok_visa").await;
    }
    let order = v["order_id"].as_str().unwrap_or_default().to_owned();
    match status {
        200 if v["status"] == "paid" => {
            ctx.logs.paid(&order, user, &v["seats"], "commit_200");
            "paid"
        }
        202 => {
            if v["status"] == "requires_action" {
                // The buyer passes 3-D Secure at their bank a moment later.
                let pause = rand::thread_rng().gen_range(300..2_000);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                if let Some(payment) = v["payment_id"].as_str() {
                    if ctx.sandbox.complete_action(payment).await.is_err() {
                        return "3ds_not_completed";
                    }
                }
            }
            if order.is_empty() {
                return "pending_without_order";
            }
            ctx.follow(g, &order, user, token).await
        }
        402 => "declined",
        409 | 410 => "commit_refused",
        0 | 503 => "commit_unanswered",
        _ => "commit_error",
    }
}
