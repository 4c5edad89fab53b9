//! The open-loop driver: operations start at a constant arrival rate whatever the server does,
//! and each latency is measured from the operation's *intended* start, so a server that stalls
//! is charged for the whole queue it built (no coordinated omission). A closed-loop driver
//! ([`closed_loop`]) is here too, for ceilings: N workers as fast as they go.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stats::{Outcome, Recorder, Stats};

/// How an open-loop run goes.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Operations started per second.
    pub rate: f64,
    /// For how long operations are started.
    pub duration: Duration,
    /// Operations in flight beyond this are not started and count as `not_sent` (the generator
    /// protecting its own memory; a run that hits it is overloaded and says so).
    pub max_in_flight: usize,
    /// After the last start, how long stragglers are awaited before counting as `unfinished`.
    pub drain: Duration,
}

impl Schedule {
    /// `rate` per second for `duration`, with generous defaults for the rest.
    pub fn new(rate: f64, duration: Duration) -> Self {
        Self {
            rate,
            duration,
            max_in_flight: 20_000,
            drain: Duration::from_secs(15),
        }
    }
}

/// Runs `op(i)` for i = 0, 1, ... at `schedule.rate` per second.
pub async fn open_loop<F, Fut>(name: &str, schedule: &Schedule, op: F) -> Stats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let total = (schedule.rate * schedule.duration.as_secs_f64()).round() as u64;
    let interval = 1.0 / schedule.rate.max(f64::MIN_POSITIVE);
    let cpu = crate::procs::snapshot();
    let start = Instant::now();
    let mut not_sent = 0u64;
    // Every operation of this run, so stragglers can be stopped when it ends instead of spilling
    // into the next run's figures.
    let mut running = tokio::task::JoinSet::new();
    for i in 0..total {
        while running.try_join_next().is_some() {}
        let intended = start + Duration::from_secs_f64(i as f64 * interval);
        if intended > Instant::now() {
            tokio::time::sleep_until(intended.into()).await;
        }
        if in_flight.load(Ordering::Relaxed) >= schedule.max_in_flight {
            not_sent += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (op, recorder, in_flight) = (op.clone(), recorder.clone(), in_flight.clone());
        running.spawn(async move {
            let outcome = op(i).await;
            let latency = intended.elapsed();
            if let Ok(mut r) = recorder.lock() {
                r.record(latency, &outcome);
            }
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    let drain_until = Instant::now() + schedule.drain;
    while in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let unfinished = in_flight.load(Ordering::Relaxed) as u64;
    running.shutdown().await;
    let recorder = recorder.lock().map(|r| r.clone()).unwrap_or_default();
    recorder.finish(
        name,
        Some(schedule.rate),
        elapsed,
        not_sent,
        unfinished,
        cpu.delta(),
    )
}

/// `workers` tasks each running `op(worker, i)` back to back for `duration`: the most the target
/// does at that concurrency (latency is per operation, there is no schedule to be late for).
pub async fn closed_loop<F, Fut>(name: &str, workers: usize, duration: Duration, op: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let cpu = crate::procs::snapshot();
    let start = Instant::now();
    let until = start + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut r = Recorder::default();
                let mut i = 0u64;
                while Instant::now() < until {
                    let began = Instant::now();
                    let outcome = op(w, i).await;
                    r.record(began.elapsed(), &outcome);
                    i += 1;
                }
                r
            })
        })
        .collect();
    let mut all = Recorder::default();
    for t in tasks {
        if let Ok(r) = t.await {
            all.merge(&r);
        }
    }
    all.finish(name, None, start.elapsed(), 0, 0, cpu.delta())
}
