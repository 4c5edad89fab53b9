//! The limits of the parts, measured in the same run as the scenarios, so a scenario's figure
//! can be read as a share of what its bottleneck allows.

use std::sync::Arc;
use std::time::Duration;

use coordinator::hold::{HoldOutcome, HoldRequest};
use coordinator::{Caller, ClientReservationId, EventId, SeatId, UserId};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::open_loop::closed_loop;
use crate::stats::{Outcome, Stats};
use crate::Target;

/// One hold through the coordinator (the gateway's own path to Redis, minus HTTP), released at
/// once so the seat is free for the next round: the hold scripts' ceiling, in pairs.
pub async fn hold_release(
    t: &Target,
    event: &EventId,
    user: &UserId,
    seats: &[SeatId],
    client_id: String,
) -> Outcome {
    let Ok(client) = ClientReservationId::parse(&client_id) else {
        return Outcome::Failed("bad_client_id".into());
    };
    let limits = t.coordinator.limits().clone();
    let request = match HoldRequest::new(
        event.clone(),
        user.clone(),
        client,
        seats.to_vec(),
        Some(60),
        &limits,
    ) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("invalid: {e}")),
    };
    match t.coordinator.hold(&request).await {
        Ok(HoldOutcome::Created(hold)) => {
            match t.coordinator.release(&hold.id, Caller::System).await {
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Failed("release_error".into()),
            }
        }
        Ok(HoldOutcome::Unavailable(_)) => Outcome::Refused("seat_taken"),
        Ok(other) => Outcome::Failed(format!("{other:?}").chars().take(40).collect()),
        Err(_) => Outcome::Failed("redis_error".into()),
    }
}

/// The Redis ceiling: `workers` tasks doing hold + release pairs on distinct seats through the
/// coordinator for `duration` (fred pipelines concurrent EVALSHAs on each connection).
pub async fn redis_holds(
    t: &Target,
    event: &str,
    seats: Arc<Vec<String>>,
    workers: usize,
    duration: Duration,
) -> anyhow::Result<Stats> {
    let event = EventId::parse(event).map_err(|e| anyhow::anyhow!("{e}"))?;
    // A buyer per worker, as in a sale: a buyer's hold records share one slot (the buyer's tag
    // in the hold id), so one buyer for everything would put every record on one primary.
    let users: Arc<Vec<UserId>> = Arc::new(
        (0..workers)
            .map(|w| UserId::parse(&format!("bench-ceiling-{w}")))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let seats: Arc<Vec<SeatId>> =
        Arc::new(seats.iter().filter_map(|s| SeatId::parse(s).ok()).collect());
    let per = (seats.len() / workers.max(1)).max(1);
    let (t, run) = (t.clone(), crate::run_id());
    Ok(closed_loop(
        &format!("ceiling: hold+release pairs via the coordinator, {workers} in flight"),
        workers,
        duration,
        move |w, i| {
            let (t, event, user, seats, run) = (
                t.clone(),
                event.clone(),
                users[w % users.len()].clone(),
                seats.clone(),
                run.clone(),
            );
            async move {
                // Each worker cycles through its own slice: no two workers ask the same seat.
                let seat = &seats[(w * per + (i as usize % per)) % seats.len()];
                hold_release(
                    &t,
                    &event,
                    &user,
                    std::slice::from_ref(seat),
                    format!("c{run}-{w}-{i}"),
                )
                .await
            }
        },
    )
    .await)
}

/// The HTTP ceiling: `GET /healthz` (no work behind it) as fast as `workers` connections go.
pub async fn http(t: &Target, workers: usize, duration: Duration) -> Stats {
    let t = t.clone();
    closed_loop(
        &format!("ceiling: GET /healthz, {workers} in flight"),
        workers,
        duration,
        move |_, _| {
            let t = t.clone();
            async move {
                match t.http.get(format!("{}/healthz", t.api)).send().await {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let _ = r.bytes().await;
                        Outcome::from_status(s, &[200], &[])
                    }
                    Err(e) => Outcome::transport(&e),
                }
            }
        },
    )
    .await
}

/// What `pgbench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct PgBench {
    /// Client connections.
    pub clients: u32,
    /// Orders per transaction (the writer's batch).
    pub batch: u32,
    /// Transactions per second.
    pub tps: f64,
    /// Orders per second (tps × batch).
    pub orders_per_sec: f64,
    /// Mean transaction latency, ms.
    pub latency_ms: f64,
}

/// The Postgres ceiling: `pgbench` running the durable writer's batch (orders and sold seats,
/// multi-row `UNNEST` inserts, `synchronous_commit = on`, one transaction per batch) on the
/// same server and the same schema, in a scratch database of its own (see [`scratch_database`]).
pub async fn pgbench(
    t: &Target,
    event: &str,
    clients: u32,
    batch: u32,
    duration: Duration,
) -> anyhow::Result<PgBench> {
    anyhow::ensure!(
        event
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "event id {event:?} is not safe to write into a script"
    );
    let script = format!(
        "BEGIN;
SET LOCAL synchronous_commit = on;
WITH j AS (
  SELECT gen_random_uuid() AS o, 'pgb-' || gen_random_uuid() AS p FROM generate_series(1, {batch})
), o AS (
  INSERT INTO orders (id, event_id, hold_id, user_id, status, total_cents, currency, payment_ref, idempotency_key)
  SELECT o, e, h, u, 'paid', t, c, p, k FROM UNNEST(
    (SELECT array_agg(o) FROM j), array_fill('{event}'::text, ARRAY[{batch}]),
    (SELECT array_agg(gen_random_uuid()) FROM j), array_fill('pgbench'::text, ARRAY[{batch}]),
    array_fill(5000::bigint, ARRAY[{batch}]), array_fill('USD'::text, ARRAY[{batch}]),
    (SELECT array_agg(p) FROM j), (SELECT array_agg(p) FROM j)
  ) AS x(o, e, h, u, t, c, p, k)
  RETURNING id
)
INSERT INTO sold_seats (order_id, event_id, seat_id) SELECT id, '{event}', 'pgb-' || id FROM o;
COMMIT;
"
    );
    let (scratch, scratch_url) = scratch_database(t, event).await?;
    let dir = std::env::temp_dir().join(format!("loadgen-{}", crate::run_id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("writer_batch.sql");
    std::fs::write(&file, script)?;
    let out = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c"])
        .arg(clients.to_string())
        .args(["-j", "2", "-T"])
        .arg(duration.as_secs().max(1).to_string())
        .arg("-f")
        .arg(&file)
        .arg(&scratch_url)
        .output()
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        .execute(&t.db)
        .await;
    let out = out?;
    dropped?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join(" / ")
    );
    let field = |prefix: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split('=').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let tps = field("tps").ok_or_else(|| anyhow::anyhow!("no tps in pgbench output"))?;
    Ok(PgBench {
        clients,
        batch,
        tps,
        orders_per_sec: tps * batch as f64,
        latency_ms: field("latency average").unwrap_or(f64::NAN),
    })
}

/// A scratch database on the system's server, migrated like the system's and holding one event
/// (`event`, the demo's): the ceiling's hundreds of thousands of orders are not sales,
/// and in the system's own database the reconciler would take them for sales Redis lost and
/// keep trying to mark them sold through every later run, slowing what those runs measure.
/// Returns its name and URL; the caller drops it.
async fn scratch_database(t: &Target, event: &str) -> anyhow::Result<(String, String)> {
    let url = t.database_url.expose_secret();
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (server, db) = base
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("//"))
        .ok_or_else(|| anyhow::anyhow!("no database name in the database URL"))?;
    let scratch = format!("{db}_pgbench");
    anyhow::ensure!(
        scratch
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {db:?} is not safe to write into SQL"
    );
    let scratch_url = format!(
        "{server}/{scratch}{}",
        query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    sqlx::query(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        .execute(&t.db)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {scratch}"))
        .execute(&t.db)
        .await?;
    let pool = catalog::pool::options(2).connect(&scratch_url).await?;
    catalog::migrate(&pool).await?;
    catalog::create_demo_event(&pool, &coordinator::EventId::parse(event)?).await?;
    pool.close().await;
    Ok((scratch, scratch_url))
}
