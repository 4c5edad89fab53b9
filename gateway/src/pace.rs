//! Back-pressure from checkout to the waiting room, per gateway process.
//!
//! A waiting room exists to send checkout what it can take. The organizer's rate is a guess made
//! before the sale; on the day, checkout may be slower (a slow provider, a busy database, cores
//! shared with a storm of polls). Admitting at the full rate then only queues the admitted
//! buyers in checkout, where they time out holding seats nobody else may buy. So the gateway
//! watches how long its commits take and tells the room's script a [`Pace`], the share of the
//! rate to admit at (`lua/queue.lua`, ARGV[5]):
//!
//! - every [`TICK`], the slowest sign of trouble is taken: the 90th percentile of the commits
//!   finished in the tick, or the age of the oldest commit still running (a checkout that hangs
//!   finishes nothing, and must slow the room all the same); a commit is timed from its
//!   arrival, so the time it waited in line for a place ([`crate::shed`]) counts: a line is
//!   checkout saying it is full;
//! - above the target, the pace is cut ([`CUT`], down to [`FLOOR`]); under half the target (or
//!   with no commits at all), it grows back by [`REGROW`] a tick; in between it stays.
//!
//! Additive increase, multiplicative decrease, as TCP does: a few ticks of slow commits slow the
//! room a lot, and it speeds up gently. The floor keeps a room moving (at 5% of its rate) even
//! when every commit fails fast or slow: buyers admitted then find out, and the room does not
//! look frozen. Only commits are watched: the hold before them is Redis alone, and cheap.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use coordinator::queue::Pace;

/// How often the pace changes.
pub const TICK: Duration = Duration::from_millis(500);
/// The pace is multiplied by this on a tick with commits slower than the target.
pub const CUT: f64 = 0.7;
/// The pace grows by this on a tick with commits under half the target.
pub const REGROW: f64 = 0.05;
/// The pace never goes under this.
pub const FLOOR: f64 = 0.05;

/// See the module documentation.
#[derive(Debug)]
pub struct Pacer {
    /// The commit latency to stay under; `None`: never slow a room.
    target: Option<Duration>,
    gauge: prometheus::Gauge,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    pace: f64,
    tick_started: Instant,
    next_id: u64,
    /// Commits running, by start and a unique id: the first is the oldest.
    running: BTreeSet<(Instant, u64)>,
    /// How long the commits finished in this tick took.
    finished: Vec<Duration>,
}

/// A commit being timed; dropping it (answered, failed or abandoned) records it.
#[derive(Debug)]
pub struct Timed<'a> {
    pacer: &'a Pacer,
    key: Option<(Instant, u64)>,
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        let Some(target) = self.pacer.target else {
            return;
        };
        if let Ok(mut s) = self.pacer.state.lock() {
            // Ticks run here too: with no room polled, the samples must not pile up.
            self.pacer.advance(&mut s, target);
            if let Some(key) = self.key.filter(|key| s.running.remove(key)) {
                s.finished.push(key.0.elapsed());
            }
        }
    }
}

impl Pacer {
    /// A pacer keeping commits under `target` (`None`: the pace stays full). `gauge` shows the
    /// pace (`gateway_admission_pace`).
    pub fn new(target: Option<Duration>, gauge: prometheus::Gauge) -> Self {
        gauge.set(1.0);
        Self {
            target,
            gauge,
            state: Mutex::new(State {
                pace: 1.0,
                tick_started: Instant::now(),
                next_id: 0,
                running: BTreeSet::new(),
                finished: Vec::new(),
            }),
        }
    }

    /// Times a commit until the returned guard is dropped.
    pub fn time(&self) -> Timed<'_> {
        self.time_from(Instant::now())
    }

    /// Times a commit that arrived at `arrived` until the returned guard is dropped.
    pub fn time_from(&self, arrived: Instant) -> Timed<'_> {
        let key = match self.state.lock() {
            Ok(_) if self.target.is_none() => None,
            Ok(mut s) => {
                s.next_id += 1;
                let key = (arrived, s.next_id);
                s.running.insert(key);
                Some(key)
            }
            // A poisoned lock (a panic elsewhere) leaves the pace where it was.
            Err(_) => None,
        };
        Timed { pacer: self, key }
    }

    /// The pace now (moved on first if a tick has passed).
    pub fn pace(&self) -> Pace {
        let Some(target) = self.target else {
            return Pace::FULL;
        };
        let Ok(mut s) = self.state.lock() else {
            return Pace::FULL;
        };
        self.advance(&mut s, target);
        Pace::new(s.pace)
    }

    /// Moves the pace on if a tick has passed.
    fn advance(&self, s: &mut State, target: Duration) {
        if s.tick_started.elapsed() < TICK {
            return;
        }
        let oldest = s.running.first().map(|(started, _)| started.elapsed());
        let slowest = p90(&mut s.finished).max(oldest);
        s.pace = step(s.pace, slowest, target);
        s.finished.clear();
        s.tick_started = Instant::now();
        self.gauge.set(s.pace);
    }
}

/// The 90th percentile (nearest rank), `None` for no samples.
fn p90(samples: &mut [Duration]) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = (samples.len() * 9).div_ceil(10).max(1);
    Some(samples[rank - 1])
}

/// One tick of the controller: `slowest` is the tick's sign of trouble (`None`: no commits).
pub fn step(pace: f64, slowest: Option<Duration>, target: Duration) -> f64 {
    match slowest {
        Some(s) if s > target => (pace * CUT).max(FLOOR),
        Some(s) if s * 2 > target => pace,
        _ => (pace + REGROW).min(1.0),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(1000);

    #[test]
    fn slow_commits_cut_the_pace_to_the_floor_and_quick_ones_regrow_it() {
        let mut pace = 1.0;
        let mut ticks = 0;
        while pace > FLOOR {
            pace = step(pace, Some(Duration::from_millis(1500)), TARGET);
            ticks += 1;
        }
        // 0.7^8 < 0.06: about four seconds of slow commits slow the room twenty-fold.
        assert_eq!((pace, ticks), (FLOOR, 9));
        assert_eq!(step(pace, Some(Duration::from_secs(60)), TARGET), FLOOR);
        // Between half the target and the target: steady.
        assert_eq!(step(0.5, Some(Duration::from_millis(700)), TARGET), 0.5);
        // Quick commits, or none: back up, a step a tick, never above full.
        let quick = step(0.5, Some(Duration::from_millis(100)), TARGET);
        assert!((quick - 0.55).abs() < 1e-9, "{quick}");
        assert!((step(0.5, None, TARGET) - 0.55).abs() < 1e-9);
        assert_eq!(step(1.0, None, TARGET), 1.0);
    }

    #[test]
    fn the_tick_s_ninetieth_percentile_is_its_sign() {
        let ms = Duration::from_millis;
        let mut v: Vec<Duration> = (1..=10).rev().map(|i| ms(i * 100)).collect();
        assert_eq!(p90(&mut v), Some(ms(900)));
        assert_eq!(p90(&mut [ms(5)]), Some(ms(5)));
        assert_eq!(p90(&mut []), None);
    }

    #[test]
    fn a_commit_still_running_past_the_target_slows_the_room() {
        let gauge = prometheus::Gauge::new("pace", "pace").unwrap();
        let pacer = Pacer::new(Some(Duration::from_millis(20)), gauge.clone());
        let hung = pacer.time();
        // Quick commits finish around it.
        for _ in 0..20 {
            drop(pacer.time());
        }
        std::thread::sleep(TICK + Duration::from_millis(30));
        assert!((pacer.pace().get() - CUT).abs() < 1e-9);
        assert!((gauge.get() - CUT).abs() < 1e-9);
        drop(hung);
        // The hung commit, finished, is this tick's slowest: one more cut.
        std::thread::sleep(TICK + Duration::from_millis(30));
        assert!((pacer.pace().get() - CUT * CUT).abs() < 1e-9);
        // Nothing running, nothing finished: it grows back.
        std::thread::sleep(TICK + Duration::from_millis(30));
        assert!((pacer.pace().get() - (CUT * CUT + REGROW)).abs() < 1e-9);
        // A commit that waited in line is timed from its arrival: quick once admitted, it is
        // still slow as the buyer saw it, and slows the room.
        let arrived = Instant::now() - Duration::from_millis(50);
        std::thread::sleep(TICK + Duration::from_millis(30));
        let regrown = pacer.pace().get();
        drop(pacer.time_from(arrived));
        std::thread::sleep(TICK + Duration::from_millis(30));
        assert!((pacer.pace().get() - regrown * CUT).abs() < 1e-9);
        // Without a target, never slowed.
        let off = Pacer::new(None, prometheus::Gauge::new("p2", "p2").unwrap());
        let _t = off.time();
        assert_eq!(off.pace(), Pace::FULL);
    }
}
