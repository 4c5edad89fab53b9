//! The run's verdicts, computed from what it measured: whether a ladder climbs on, the rates
//! later phases are offered (what holds and checkout sustained), and each design target met or
//! not.

use crate::baselines::{Comparison, Strategy};
use crate::scenarios::FlashReport;
use crate::stats::Stats;

use super::report::Target_;

/// The p99 a hold rate must keep to count as sustained, ms.
pub(super) const HOLD_P99_MS: f64 = 50.0;

/// The fastest rate of the hold ladder kept up with within [`HOLD_P99_MS`] (`fallback` when
/// none was), and the fastest step kept up with whatever its p99.
pub(super) fn holds_sustained(steps: &[(f64, Stats)], fallback: f64) -> (f64, Option<Stats>) {
    let best = steps
        .iter()
        .rev()
        .find(|(_, s)| s.kept_up() && s.p99_ms <= HOLD_P99_MS)
        .map_or(fallback, |(rate, _)| *rate);
    let fastest = steps
        .iter()
        .rev()
        .find(|(_, s)| s.kept_up())
        .map(|(_, s)| s.clone());
    (best, fastest)
}

/// The fastest checkout step kept up with (0 when none was): the flash sale's admission rate
/// is a share of it.
pub(super) fn checkout_capacity(runs: &[Stats]) -> f64 {
    runs.iter()
        .filter(|r| r.name.starts_with("checkout") && r.kept_up())
        .map(|r| r.achieved_rate)
        .fold(0.0_f64, f64::max)
}

/// What checkout sustained: its capacity; when no step kept up (a loaded machine), what the
/// first step achieved.
pub(super) fn checkout_sustained(runs: &[Stats]) -> f64 {
    let capacity = checkout_capacity(runs);
    if capacity > 0.0 {
        capacity
    } else {
        runs.iter()
            .find(|r| r.name.starts_with("checkout"))
            .map_or(0.0, |r| r.achieved_rate.floor())
    }
}

pub(super) fn targets(
    redis: &Stats,
    runs: &[Stats],
    sustained: &Stats,
    flash: &FlashReport,
    compared: &[Comparison],
) -> Vec<Target_> {
    let best = |prefix: &str| -> Option<&Stats> {
        runs.iter()
            .filter(|s| s.name.starts_with(prefix) && s.kept_up())
            .max_by(|a, b| a.achieved_rate.total_cmp(&b.achieved_rate))
    };
    let describe = |s: Option<&Stats>| {
        s.map(|s| {
            format!(
                "{:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
                s.achieved_rate, s.p50_ms, s.p99_ms
            )
        })
        .unwrap_or_else(|| "no step kept up".into())
    };
    // Redis ceiling in holds/s: each pair is one hold.
    let ratio = sustained.ok as f64 / sustained.seconds.max(1e-9) / redis.achieved_rate.max(1e-9);
    let holds_per_sec = sustained.ok as f64 / sustained.seconds.max(1e-9);
    let checkout = best("checkout");
    let browse = runs
        .iter()
        .filter(|s| s.name.starts_with("browse"))
        .min_by(|a, b| a.p50_ms.total_cmp(&b.p50_ms));
    let seatmap = runs.iter().find(|s| s.name.starts_with("seat map"));
    let polls = best("queue polls");
    let high = |s: Strategy| {
        compared
            .iter()
            .find(|c| c.strategy == s && c.contention == "high")
            .map(|c| c.holds_per_sec)
            .unwrap_or(0.0)
    };
    let (ours, a) = (high(Strategy::Ours), high(Strategy::PessimisticA));
    vec![
        Target_ {
            target: "holds: ≥ 20,000/s sustained 60 s, p99 ≤ 50 ms, ≥ 0.5 of the Redis ceiling".into(),
            measured: format!(
                "{:.0} holds/s over {:.0} s (offered {:.0}/s), p99 {:.2} ms, {:.2} of the Redis ceiling ({:.0} pairs/s), failed {}, not sent {}",
                holds_per_sec,
                sustained.seconds,
                sustained.target_rate.unwrap_or(0.0),
                sustained.p99_ms,
                ratio,
                redis.achieved_rate,
                sustained.failed,
                sustained.not_sent + sustained.unfinished
            ),
            met: holds_per_sec >= 20_000.0 && sustained.p99_ms <= 50.0 && ratio >= 0.5 && sustained.kept_up(),
        },
        Target_ {
            target: "checkout: ≥ 3,000 commits/s durably, p99 ≤ 250 ms".into(),
            measured: describe(checkout),
            met: checkout.is_some_and(|s| s.achieved_rate >= 3_000.0 * 0.98 && s.p99_ms <= 250.0),
        },
        Target_ {
            target: "browse p50 ≤ 2 ms".into(),
            measured: describe(browse),
            met: browse.is_some_and(|s| s.p50_ms <= 2.0 && s.kept_up()),
        },
        Target_ {
            target: "seat map (50,000 seats) p50 ≤ 10 ms from cache".into(),
            measured: describe(seatmap),
            met: seatmap.is_some_and(|s| s.p50_ms <= 10.0 && s.kept_up() && s.name.contains("50000")),
        },
        Target_ {
            target: "queue polls ≥ 30,000/s".into(),
            measured: describe(polls),
            met: polls.is_some_and(|s| s.achieved_rate >= 30_000.0 * 0.98),
        },
        Target_ {
            target: "flash sale: 100,000 users for 20,000 seats sells out, zero oversell, zero lost orders".into(),
            measured: format!(
                "{} users, {} seats: {} sold in {:.1} s; sold twice {}, confirmed orders missing {}, payments without order {}",
                flash.sale.users,
                flash.sale.seats,
                flash.sold_in_postgres,
                flash.sold_out_after_s,
                flash.seats_sold_twice,
                flash.confirmed_orders_missing,
                flash.payments_without_order
            ),
            met: flash.correct
                && flash.sold_in_postgres == flash.sale.seats as i64
                && flash.sale.users >= 100_000,
        },
        Target_ {
            target: "ours ≥ 10× Option A's holds/s at high contention".into(),
            measured: format!("ours {ours:.0}/s, Option A {a:.0}/s: {:.1}×", ours / a.max(1e-9)),
            met: ours >= 10.0 * a,
        },
    ]
}
