//! The chaos suite's books checker (`loadgen chaos-check`): after a sale under faults, proves
//! from Postgres, Redis and the provider's ledger that nothing was lost or sold twice.
//!
//! The checks (each a line of the report, and a non-zero exit when one fails):
//! 1. no seat is live-sold twice (`sold_seats`, live);
//! 2. every order the client saw answered 200 or read back `paid` (`paid.jsonl` of
//!    [`crate::chaos`]) is `paid` in Postgres with exactly the seats the client was told;
//! 3. every payment the provider captured for the event (the sandbox's ledger, status
//!    `succeeded`) is the payment of a paid order, and every paid order's payment is captured
//!    and not refunded (nobody refunded for a seat Postgres says is theirs);
//! 4. the event is not frozen, and no oversell incident was recorded;
//! 5. Redis's sold marks equal Postgres's live sales, section by section.
//!
//! Checks 3 and 5 are about work the reconciler finishes after the sale (refunds of payments
//! without an order, repairs of lost sections): they are read again until they hold or the
//! settle time has passed.
//!
//! It also prints every fault of the schedule (`faults.tsv`, written by `scripts/chaos`:
//! `unix_ms<TAB>name<TAB>detail`) with how long the client saw 5xx (or no answer) after it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

use crate::Target;

/// One fault of the schedule.
#[derive(Debug, Clone)]
pub struct Fault {
    /// When it was done, unix ms.
    pub at_ms: i64,
    /// What (`kill-redis-primary`, `flushall`, ...).
    pub name: String,
    /// Which node, process or setting.
    pub detail: String,
}

/// One answer the client got.
#[derive(Debug, Clone)]
struct Answer {
    at_ms: i64,
    status: u16,
    code: String,
}

impl Answer {
    /// A 5xx or no answer at all: the system failed the client, whatever the reason.
    fn failed(&self) -> bool {
        self.status == 0 || self.status >= 500
    }

    /// A hold on an event or seats that exist answered as if they did not (`unknown_event`,
    /// `unknown_seats`): the inventory was lost from Redis and not rebuilt yet.
    fn lost(&self) -> bool {
        self.status == 404 && (self.code == "unknown_event" || self.code == "unknown_seats")
    }
}

#[derive(Debug, Deserialize)]
struct Paid {
    order_id: String,
    seats: Vec<String>,
}

/// What the books say, read once.
#[derive(Debug, Default)]
struct Reading {
    sold_twice: Vec<String>,
    live_sold: usize,
    paid_orders: i64,
    refunded_orders: i64,
    captured: i64,
    refunded_payments: i64,
    captured_without_order: Vec<String>,
    paid_without_capture: Vec<String>,
    frozen: bool,
    incidents: i64,
    /// Per section: (seats sold in Postgres not marked in Redis, marked in Redis not sold).
    redis_diff: BTreeMap<String, (Vec<String>, Vec<String>)>,
    redis_sold: usize,
}

/// Runs every check, prints the report; `true` when every check held.
pub async fn check(t: &Target, dir: &Path, event: &str, settle: Duration) -> anyhow::Result<bool> {
    let faults = read_faults(&dir.join("faults.tsv"))?;
    let answers = read_answers(&crate::chaos::responses_file(dir))?;
    let paid = read_paid(&crate::chaos::paid_file(dir))?;

    let until = Instant::now() + settle;
    let waited = Instant::now();
    let reading = loop {
        let r = read(t, event).await?;
        let settled = r.captured_without_order.is_empty()
            && r.paid_without_capture.is_empty()
            && r.redis_diff.is_empty();
        if settled || Instant::now() >= until {
            break r;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let (wrong_orders, paid_checked) = check_paid(t, &paid).await?;

    print_faults(&faults, &answers);
    print_answers(dir)?;
    println!("\n== counts (event {event}) ==");
    println!("orders the client saw paid      {}", paid_checked);
    println!("orders paid in Postgres         {}", reading.paid_orders);
    println!(
        "orders refunded                 {}",
        reading.refunded_orders
    );
    println!("seats live-sold in Postgres     {}", reading.live_sold);
    println!("seats marked sold in Redis      {}", reading.redis_sold);
    println!("payments captured (kept)        {}", reading.captured);
    println!(
        "payments refunded               {}",
        reading.refunded_payments
    );
    println!("oversell incidents              {}", reading.incidents);
    println!(
        "books settled after             {:.1} s",
        waited.elapsed().as_secs_f64()
    );

    let sample = |v: &[String]| v.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    let redis_detail = reading
        .redis_diff
        .iter()
        .map(|(s, (missing, extra))| {
            format!(
                "section {s}: {} sold in Postgres not marked in Redis [{}], {} marked in Redis not sold [{}]",
                missing.len(),
                sample(missing),
                extra.len(),
                sample(extra)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let checks = [
        (
            "no seat live-sold twice",
            reading.sold_twice.is_empty(),
            format!(
                "{} seats: {}",
                reading.sold_twice.len(),
                sample(&reading.sold_twice)
            ),
        ),
        (
            "every order seen paid is paid with exactly its seats",
            wrong_orders.is_empty() && paid_checked > 0,
            if paid_checked == 0 {
                "the client saw no order paid: the sale did not run".to_owned()
            } else {
                format!(
                    "{} of {paid_checked}: {}",
                    wrong_orders.len(),
                    sample(&wrong_orders)
                )
            },
        ),
        (
            "every captured payment has a paid order (or was refunded)",
            reading.captured_without_order.is_empty(),
            format!(
                "{} payments: {}",
                reading.captured_without_order.len(),
                sample(&reading.captured_without_order)
            ),
        ),
        (
            "every paid order's payment is captured and not refunded",
            reading.paid_without_capture.is_empty(),
            format!(
                "{} orders: {}",
                reading.paid_without_capture.len(),
                sample(&reading.paid_without_capture)
            ),
        ),
        (
            "the event is not frozen, no oversell incident",
            !reading.frozen && reading.incidents == 0,
            format!(
                "frozen: {}, incidents: {}",
                reading.frozen, reading.incidents
            ),
        ),
        (
            "Redis's sold marks equal Postgres's live sales, per section",
            reading.redis_diff.is_empty(),
            redis_detail,
        ),
    ];
    println!("\n== checks ==");
    let mut all = true;
    for (name, held, detail) in &checks {
        all &= held;
        if *held {
            println!("PASS  {name}");
        } else {
            println!("FAIL  {name}: {detail}");
        }
    }
    println!(
        "\n{}",
        if all {
            "BOOKS BALANCE"
        } else {
            "VIOLATIONS FOUND"
        }
    );
    Ok(all)
}

fn read_faults(path: &Path) -> anyhow::Result<Vec<Fault>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut faults: Vec<Fault> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            Some(Fault {
                at_ms: parts.next()?.trim().parse().ok()?,
                name: parts.next()?.to_owned(),
                detail: parts.next().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    faults.sort_by_key(|f| f.at_ms);
    Ok(faults)
}

fn read_answers(path: &Path) -> anyhow::Result<Vec<Answer>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut answers: Vec<Answer> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some(Answer {
                at_ms: f.first()?.parse().ok()?,
                status: f.get(3)?.parse().ok()?,
                code: f.get(4).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    answers.sort_by_key(|a| a.at_ms);
    Ok(answers)
}

fn read_paid(path: &Path) -> anyhow::Result<Vec<Paid>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| l.to_owned()))
        .collect()
}

/// Each fault, and the answers that failed between it and the next fault: how many, and how
/// long after the fault the last of them came.
fn print_faults(faults: &[Fault], answers: &[Answer]) {
    let Some(start) = answers.first().map(|a| a.at_ms) else {
        println!("no answers logged");
        return;
    };
    let end = answers.last().map(|a| a.at_ms).unwrap_or(start);
    println!("== faults (seconds from the first answer; 5xx = 5xx or no answer, until the next fault) ==");
    let before = answers
        .iter()
        .filter(|a| a.at_ms < faults.first().map(|f| f.at_ms).unwrap_or(i64::MAX))
        .filter(|a| a.failed())
        .count();
    println!("{:>7}  before any fault: {before} 5xx", "");
    for (k, f) in faults.iter().enumerate() {
        let next = faults.get(k + 1).map(|n| n.at_ms).unwrap_or(end + 1);
        let window: Vec<&Answer> = answers
            .iter()
            .filter(|a| a.at_ms >= f.at_ms && a.at_ms < next)
            .collect();
        let failed: Vec<&&Answer> = window.iter().filter(|a| a.failed()).collect();
        let lasted = failed
            .last()
            .map(|a| format!("5xx for {:.1} s", (a.at_ms - f.at_ms) as f64 / 1000.0))
            .unwrap_or_else(|| "no 5xx".to_owned());
        let lost: Vec<&&Answer> = window.iter().filter(|a| a.lost()).collect();
        let lost = match (lost.first(), lost.last()) {
            (Some(a), Some(b)) => format!(
                "; {} holds answered 404 unknown_event/seats from +{:.1} s to +{:.1} s",
                lost.len(),
                (a.at_ms - f.at_ms) as f64 / 1000.0,
                (b.at_ms - f.at_ms) as f64 / 1000.0
            ),
            _ => String::new(),
        };
        println!(
            "{:>+7.1}  {:<20} {lasted} ({} of {} answers){lost}\n          {}",
            (f.at_ms - start) as f64 / 1000.0,
            f.name,
            failed.len(),
            window.len(),
            f.detail,
        );
    }
}

/// Answers by operation and status.
fn print_answers(dir: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(crate::chaos::responses_file(dir))?;
    let mut by: BTreeMap<(String, String), u64> = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(',').collect();
        if let (Some(op), Some(status)) = (f.get(2), f.get(3)) {
            let mut status = if *status == "0" { "none" } else { status }.to_owned();
            if let Some(code) = f.get(4).filter(|c| !c.is_empty()) {
                status = format!("{status} {code}");
            }
            *by.entry(((*op).to_owned(), status)).or_default() += 1;
        }
    }
    println!("\n== answers (operation: status [error code] x count; none = no answer) ==");
    let mut ops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((op, status), n) in by {
        ops.entry(op).or_default().push(format!("{status} x{n}"));
    }
    for (op, counts) in ops {
        println!("{op:<8} {}", counts.join(", "));
    }
    Ok(())
}

/// The orders the client saw paid that Postgres does not have paid with exactly their seats.
async fn check_paid(t: &Target, paid: &[Paid]) -> anyhow::Result<(Vec<String>, usize)> {
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    // Every line is checked, not every order once: an order seen twice (a commit's 200, then
    // read back) must have been told the same seats both times.
    for p in paid {
        seen.insert(p.order_id.clone());
        let Ok(id) = uuid::Uuid::parse_str(&p.order_id) else {
            wrong.push(format!("{:?} (not an order id)", p.order_id));
            continue;
        };
        let status: Option<(String,)> =
            sqlx::query_as("SELECT status::text FROM orders WHERE id = $1")
                .bind(id)
                .fetch_optional(&t.db)
                .await?;
        let seats: Vec<(String,)> =
            sqlx::query_as("SELECT seat_id FROM sold_seats WHERE order_id = $1 AND live")
                .bind(id)
                .fetch_all(&t.db)
                .await?;
        let live: BTreeSet<String> = seats.into_iter().map(|(s,)| s).collect();
        let told: BTreeSet<String> = p.seats.iter().cloned().collect();
        match status {
            Some((s,)) if s == "paid" && live == told => {}
            other => wrong.push(format!(
                "{} ({:?}, told {:?}, live {:?})",
                p.order_id,
                other.map(|(s,)| s),
                told,
                live
            )),
        }
    }
    Ok((wrong, seen.len()))
}

async fn read(t: &Target, event: &str) -> anyhow::Result<Reading> {
    let db = &t.db;
    let sold_twice: Vec<(String,)> = sqlx::query_as(
        "SELECT seat_id FROM sold_seats WHERE event_id = $1 AND live
         GROUP BY seat_id HAVING count(*) > 1",
    )
    .bind(event)
    .fetch_all(db)
    .await?;
    let (paid_orders, refunded_orders): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'paid'), count(*) FILTER (WHERE status = 'refunded')
         FROM orders WHERE event_id = $1",
    )
    .bind(event)
    .fetch_one(db)
    .await?;
    let (captured, refunded_payments): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'refunded')
         FROM sandbox_payments WHERE metadata->>'event_id' = $1",
    )
    .bind(event)
    .fetch_one(db)
    .await?;
    let captured_without_order: Vec<(String,)> = sqlx::query_as(
        "SELECT p.id FROM sandbox_payments p
         WHERE p.status = 'succeeded' AND p.metadata->>'event_id' = $1
           AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.payment_ref = p.id AND o.status = 'paid')",
    )
    .bind(event)
    .fetch_all(db)
    .await?;
    let paid_without_capture: Vec<(String,)> = sqlx::query_as(
        "SELECT o.id::text FROM orders o
         WHERE o.event_id = $1 AND o.status = 'paid'
           AND NOT EXISTS (SELECT 1 FROM sandbox_payments p WHERE p.id = o.payment_ref AND p.status = 'succeeded')",
    )
    .bind(event)
    .fetch_all(db)
    .await?;
    let (status,): (String,) = sqlx::query_as("SELECT status::text FROM events WHERE id = $1")
        .bind(event)
        .fetch_one(db)
        .await?;
    let (incidents,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM oversell_incidents WHERE event_id = $1")
            .bind(event)
            .fetch_one(db)
            .await?;

    // Postgres's live sales and Redis's sold marks, per section.
    let live: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.section_id, ss.seat_id FROM sold_seats ss
         JOIN events e ON e.id = ss.event_id
         JOIN seats s ON s.venue_id = e.venue_id AND s.id = ss.seat_id
         WHERE ss.event_id = $1 AND ss.live",
    )
    .bind(event)
    .fetch_all(db)
    .await?;
    let (sections,): (Vec<String>,) = sqlx::query_as(
        "SELECT coalesce(array_agg(DISTINCT s.section_id), '{}') FROM seats s
         JOIN events e ON e.venue_id = s.venue_id WHERE e.id = $1",
    )
    .bind(event)
    .fetch_one(db)
    .await?;
    let mut in_pg: BTreeMap<String, BTreeSet<String>> =
        sections.into_iter().map(|s| (s, BTreeSet::new())).collect();
    for (section, seat) in &live {
        in_pg
            .entry(section.clone())
            .or_default()
            .insert(seat.clone());
    }
    let id = coordinator::EventId::parse(event).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut in_redis: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // A Redis that does not answer (a failover not finished) reads as nothing marked: the
    // settle loop reads again.
    if let Ok(Some(states)) = t.coordinator.seat_states(&id).await {
        for s in states {
            in_redis.insert(
                s.availability.section.as_str().to_owned(),
                s.sold.iter().map(|x| x.as_str().to_owned()).collect(),
            );
        }
    }
    let redis_sold = in_redis.values().map(BTreeSet::len).sum();
    let mut redis_diff = BTreeMap::new();
    for (section, pg) in &in_pg {
        let empty = BTreeSet::new();
        let (redis, loaded) = match in_redis.get(section) {
            Some(r) => (r, true),
            None => (&empty, false),
        };
        let missing: Vec<String> = pg.difference(redis).cloned().collect();
        let extra: Vec<String> = redis.difference(pg).cloned().collect();
        if !missing.is_empty() || !extra.is_empty() || !loaded {
            let mut missing = missing;
            if !loaded {
                missing.insert(0, "(section not loaded in Redis)".to_owned());
            }
            redis_diff.insert(section.clone(), (missing, extra));
        }
    }
    Ok(Reading {
        sold_twice: sold_twice.into_iter().map(|(s,)| s).collect(),
        live_sold: live.len(),
        paid_orders,
        refunded_orders,
        captured,
        refunded_payments,
        captured_without_order: captured_without_order.into_iter().map(|(s,)| s).collect(),
        paid_without_capture: paid_without_capture.into_iter().map(|(s,)| s).collect(),
        frozen: status == "frozen",
        incidents,
        redis_diff,
        redis_sold,
    })
}
