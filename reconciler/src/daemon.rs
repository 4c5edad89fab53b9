//! The daemon's loops (reconciliation, durable writer, sweeper), all stopped by one
//! [`CancellationToken`].

use std::sync::Arc;
use std::time::Duration;

use orders::settle::Settled;
use orders::writer::WriterConfig;
use tokio_util::sync::CancellationToken;

use crate::audit;
use crate::cursors::RepairCursor;
use crate::inventory::reconcile_inventory;
use crate::metrics::Metrics;
use orders::repair::repair_sales;

/// The daemon's tuning.
#[derive(Debug, Clone)]
pub struct Config {
    /// Inventory, payments and sold-seat repair, every this long.
    pub interval: Duration,
    /// Expiry sweep and audit copy, every this long.
    pub sweep_interval: Duration,
    /// The durable writer.
    pub writer: WriterConfig,
    /// Captured payments without an order are settled once this old.
    pub payment_grace: Duration,
    /// Most pages of the provider's listing of captured payments a pass reads.
    pub payment_pages_per_pass: usize,
    /// How long a waiting-list offer holds its seats (offers are made every `sweep_interval`).
    pub waitlist_offer_ttl: Duration,
}

impl Config {
    /// From the settings; `consumer` names this process in the writers' group.
    pub fn from_settings(s: &settings::Reconciler, consumer: String) -> Self {
        Self {
            interval: s.interval,
            sweep_interval: s.sweep_interval,
            writer: WriterConfig {
                consumer,
                batch: s.writer_batch.max(1),
                stale_after: s.writer_stale_after,
                pause_in_batch: s.writer_pause_in_batch,
            },
            payment_grace: s.payment_grace,
            payment_pages_per_pass: s.payment_pages_per_pass.max(1),
            waitlist_offer_ttl: s.waitlist_offer_ttl,
        }
    }
}

/// Runs every loop until `shutdown` is cancelled. A failed pass is logged and retried.
pub async fn run(
    svc: orders::Services,
    metrics: Arc<Metrics>,
    config: Config,
    shutdown: CancellationToken,
) {
    if let Err(e) = svc.coordinator.ensure_commit_group().await {
        tracing::error!(error = %e, "commit queue group not created yet; the writer retries");
    }
    let writer = tokio::spawn(writer_loop(
        svc.clone(),
        metrics.clone(),
        config.writer.clone(),
        shutdown.clone(),
    ));
    let sweeper = tokio::spawn(sweep_loop(
        svc.clone(),
        metrics.clone(),
        config.sweep_interval,
        shutdown.clone(),
    ));
    let offers = tokio::spawn(crate::waitlist::offer_loop(
        svc.clone(),
        metrics.clone(),
        config.sweep_interval,
        config.waitlist_offer_ttl,
        shutdown.clone(),
    ));
    let mut repaired = RepairCursor::default();
    let counts = catalog::SectionCounts::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = reconcile_once(&svc, &metrics, &config, &mut repaired, &counts) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
    // The sweeper stops at once (a pass cut short is done again by the next one). The writer
    // finishes the batch it is in (written, acknowledged, announced: its buyers get their answer
    // now, not after another writer's takeover), then stops; bounded, so a stuck batch cannot
    // hold up the shutdown (another writer claims it).
    let _ = sweeper.await;
    let _ = offers.await;
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(10), &mut writer)
        .await
        .is_err()
    {
        tracing::warn!("the writer did not finish its batch in 10 s; stopping it");
        writer.abort();
    }
}

/// One reconciliation pass: inventory, payments, recent sales.
pub async fn reconcile_once(
    svc: &orders::Services,
    metrics: &Metrics,
    config: &Config,
    repaired: &mut RepairCursor,
    counts: &catalog::SectionCounts,
) {
    let label = |ok: bool| {
        if ok {
            "inventory_ok"
        } else {
            "inventory_error"
        }
    };
    let inventory = reconcile_inventory(&svc.db, &svc.coordinator, metrics, counts).await;
    if let Err(e) = &inventory {
        tracing::error!(error = %e, "inventory pass failed");
    }
    metrics
        .passes_total
        .with_label_values(&[label(inventory.is_ok())])
        .inc();
    // Where the last pass stopped is in Postgres: the listing resumes there, whichever
    // reconciler reads it, and however long ago that was.
    let settled =
        orders::settle::settle_pages(svc, config.payment_grace, config.payment_pages_per_pass)
            .await;
    match settled {
        Ok(settlement) => {
            tracing::debug!(
                pages = settlement.pages,
                listing_done = settlement.listing_done,
                "captured payments reconciled"
            );
            for outcome in settlement.done {
                if outcome != Settled::Paid {
                    tracing::warn!(?outcome, "captured payment without an order settled");
                }
                metrics
                    .payments_settled_total
                    .with_label_values(&[&format!("{outcome:?}").to_lowercase()])
                    .inc();
            }
            metrics
                .passes_total
                .with_label_values(&["payments_ok"])
                .inc();
        }
        Err(e) => {
            tracing::error!(error = %e, "payment reconciliation failed");
            metrics
                .passes_total
                .with_label_values(&["payments_error"])
                .inc();
        }
    }
    let started = std::time::Instant::now();
    // Read before the sales are: a loss after this read changes the next pass's epoch.
    let epoch = match svc.coordinator.data_epoch().await {
        Ok(epoch) => Some(epoch),
        Err(e) => {
            tracing::warn!(error = %e, "Redis's data epoch not read; recent sales are told again");
            None
        }
    };
    let retold = match repaired.window(epoch.as_ref()) {
        None => Ok(None),
        Some((window, why)) => repair_sales(&svc.db, &svc.coordinator, None, window)
            .await
            .map(|r| Some((r, why))),
    };
    match retold {
        Ok(retold) => {
            repaired.passed(started, epoch);
            if let Some((r, why)) = retold {
                metrics
                    .sales_repaired_total
                    .with_label_values(&["recent"])
                    .inc_by(r.changed);
                metrics
                    .sales_retold_total
                    .with_label_values(&[why.label()])
                    .inc_by(r.told);
            }
            metrics.passes_total.with_label_values(&["repair_ok"]).inc();
        }
        Err(e) => {
            tracing::error!(error = %e, "sold-seat repair failed");
            metrics
                .passes_total
                .with_label_values(&["repair_error"])
                .inc();
        }
    }
}

/// The longest an idle writer's read waits for a job before it looks again (for stale jobs,
/// and for a shutdown).
const WRITER_WAIT: Duration = Duration::from_millis(250);

async fn writer_loop(
    svc: orders::Services,
    metrics: Arc<Metrics>,
    config: WriterConfig,
    shutdown: CancellationToken,
) {
    let mut group_ready = false;
    // Stale jobs are idle for `stale_after` before anyone may take them: looking a few times
    // in that span finds them soon enough, where looking on every step cost a call each time.
    let claim_every =
        (config.stale_after / 5).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut claimed_at: Option<std::time::Instant> = None;
    while !shutdown.is_cancelled() {
        if !group_ready {
            group_ready = svc.coordinator.ensure_commit_group().await.is_ok();
        }
        let started = std::time::Instant::now();
        let claim_stale = claimed_at.is_none_or(|at| at.elapsed() >= claim_every);
        if claim_stale {
            claimed_at = Some(started);
        }
        // An idle writer waits on its own connection for the next job (answered the moment it
        // is queued) instead of polling: bounded, so a shutdown is seen within WRITER_WAIT.
        let reading = orders::writer::Reading {
            claim_stale,
            wait: WRITER_WAIT,
        };
        match orders::writer::step_reading(&svc, &config, reading).await {
            Ok(report) if report.jobs + report.malformed == 0 => {}
            Ok(report) => {
                metrics.batch_size.observe(report.jobs as f64);
                metrics
                    .batch_seconds
                    .observe(started.elapsed().as_secs_f64());
                for (label, n) in [
                    ("paid", report.paid),
                    ("superseded", report.superseded),
                    ("oversold", report.oversold),
                    ("expired", report.expired),
                    ("malformed", report.malformed),
                ] {
                    metrics
                        .commits_total
                        .with_label_values(&[label])
                        .inc_by(n as u64);
                }
                for lag in &report.lag_ms {
                    metrics.commit_lag_seconds.observe(*lag as f64 / 1000.0);
                }
                metrics
                    .commits_claimed_total
                    .with_label_values(&["writer_stopped"])
                    .inc_by(report.claimed as u64);
                if report.untold > 0 {
                    tracing::warn!(
                        jobs = report.untold,
                        "paid jobs left in the commit queue: Redis not told of their sale yet"
                    );
                }
                if report.oversold > 0 {
                    metrics
                        .oversell_total
                        .with_label_values(&["any"])
                        .inc_by(report.oversold as u64);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "durable writer step failed; retrying");
                metrics
                    .passes_total
                    .with_label_values(&["writer_error"])
                    .inc();
                group_ready = false;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn sweep_loop(
    svc: orders::Services,
    metrics: Arc<Metrics>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let copied = audit::CopiedUpTo::default();
    loop {
        let pass = tokio::select! {
            _ = shutdown.cancelled() => return,
            pass = audit::sweep_and_copy(&svc.db, &svc.coordinator, &metrics, &copied) => pass,
        };
        match pass {
            Ok(()) => metrics.passes_total.with_label_values(&["sweep_ok"]).inc(),
            Err(e) => {
                tracing::error!(error = %e, "sweep/audit pass failed");
                metrics
                    .passes_total
                    .with_label_values(&["sweep_error"])
                    .inc();
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
