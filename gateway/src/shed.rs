//! Load shedding: an adaptive concurrency limit per kind of costly request (holds, commits).
//!
//! Past its capacity a server that accepts everything gets slower for everyone: queues grow
//! until clients time out, and the work done for them is wasted. A concurrency limit keeps the
//! queue short instead: a hold or commit that would exceed it is answered `503 overloaded`
//! with `Retry-After` at once, before any parsing or I/O, and the admitted ones keep their
//! latency.
//!
//! The limit adapts once per window (at least [`WINDOW`] or the target long, whichever is
//! longer, and [`WINDOW_SAMPLES`] answers),
//! additive increase, multiplicative decrease on a latency target: when more than a tenth of the
//! window's answers took longer than the class's target (its 90th percentile is over), the limit
//! shrinks by a tenth; when they did not and the limit was at least half used, it grows by a
//! fifth of its square root. So it settles where the admitted requests' 90th percentile is about
//! the target, whatever the machine, the Redis Cluster or the Postgres behind it can do. The
//! target must sit above a class's normal latency at light load (for commits, the payment
//! provider's answer time included), or the limit would shrink to its floor.
//!
//! A commit over its limit is not shed at once: it waits in line for a place, up to
//! `commit_wait` ([`Shedder::admit_class`]). Its buyer already holds seats and is paying; a 503
//! sends them into a retry loop (or away, their seats held for nothing) and costs the server a
//! parse and an answer per retry, where a short wait costs a parked task. While any commit
//! waits, new holds are shed: they would only lengthen the line.
//!
//! Judging a window by its 90th percentile and not each answer by itself is what keeps goodput
//! under overload: a limit cut on every answer over the target is held at its floor by the tail
//! any busy machine has (a scheduling delay, a slow fsync), and goodput with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::{Body, Method, Request, Response};

/// The kinds of request limited, each on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `POST /events/{id}/reservations`.
    Hold,
    /// `POST /reservations/{id}/commit`.
    Commit,
}

impl Class {
    /// The label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::Commit => "commit",
        }
    }

    /// The class of a request, `None` for the ones not limited. Looks at the method and path
    /// only: it runs before routing.
    pub fn of(request: &Request<Body>) -> Option<Self> {
        if request.method() != Method::POST {
            return None;
        }
        let mut segments = request.uri().path().trim_matches('/').split('/');
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("events"), Some(_), Some("reservations"), None) => Some(Self::Hold),
            (Some("reservations"), Some(_), Some("commit"), None) => Some(Self::Commit),
            _ => None,
        }
    }
}

/// A window closes after this long (or the class's target, if longer) and [`WINDOW_SAMPLES`]
/// answers.
pub const WINDOW: Duration = Duration::from_millis(50);
/// ... and after this many answers (a mean of fewer is noise).
pub const WINDOW_SAMPLES: u32 = 16;
/// A window over its target multiplies the limit by this.
const DECREASE: f64 = 0.9;
/// A window within its target, with the limit at least half used, adds this times the limit's
/// square root (a bigger limit grows faster in absolute terms, slower in relative ones).
const INCREASE: f64 = 0.2;

/// A class's bounds (`shed.*` settings).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The 90th-percentile latency admitted requests must keep: a ceiling on the adaptation.
    pub target: Duration,
    /// The limit at start.
    pub initial: usize,
    /// The limit never goes under this (some work always gets through).
    pub min: usize,
    /// Nor over this.
    pub max: usize,
}

/// One class's limit.
pub struct Limiter {
    class: Class,
    bounds: Bounds,
    in_flight: AtomicUsize,
    /// Requests waiting for a place ([`Limiter::acquire_within`]).
    waiting: AtomicUsize,
    /// Told when a place is given back, so one waiter tries again.
    freed: tokio::sync::Notify,
    adapt: Mutex<Adapt>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

struct Adapt {
    limit: f64,
    window: Window,
}

/// The answers since the window opened.
struct Window {
    opened: Instant,
    samples: u32,
    over_target: u32,
    /// The most requests in flight any answer saw at its admission.
    peak_in_flight: usize,
}

impl Window {
    fn new(opened: Instant) -> Self {
        Self {
            opened,
            samples: 0,
            over_target: 0,
            peak_in_flight: 0,
        }
    }
}

/// An admitted request's place under the limit; dropping it records the request's latency.
pub struct Permit {
    limiter: Arc<Limiter>,
    started: Instant,
    /// Requests in flight when this one was admitted (itself included).
    in_flight: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.limiter.freed.notify_one();
        self.limiter.record(self.started.elapsed(), self.in_flight);
    }
}

impl Limiter {
    /// A limiter starting at `bounds.initial`.
    pub fn new(
        class: Class,
        bounds: Bounds,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Arc<Self> {
        let min = bounds.min.max(1);
        let bounds = Bounds {
            min,
            max: bounds.max.max(min),
            initial: bounds.initial.clamp(min, bounds.max.max(min)),
            ..bounds
        };
        let limiter = Arc::new(Self {
            class,
            bounds,
            in_flight: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            freed: tokio::sync::Notify::new(),
            adapt: Mutex::new(Adapt {
                limit: bounds.initial as f64,
                window: Window::new(Instant::now()),
            }),
            metrics,
        });
        limiter.publish(bounds.initial);
        limiter
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.adapt().limit as usize
    }

    /// Requests admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn adapt(&self) -> std::sync::MutexGuard<'_, Adapt> {
        self.adapt.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests waiting for a place.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Every place under the limit is taken, or someone is waiting for one.
    pub fn saturated(&self) -> bool {
        self.waiting() > 0 || self.in_flight() >= self.limit()
    }

    fn count_shed(&self) {
        if let Some(m) = &self.metrics {
            m.shed_total.with_label_values(&[self.class.label()]).inc();
        }
    }

    /// A place under the limit, or `None`: shed.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let permit = self.try_place();
        if permit.is_none() {
            self.count_shed();
        }
        permit
    }

    /// A place under the limit, waiting up to `wait` for one to be given back; `None`: shed.
    /// At most the limit's ceiling wait at once (past that, a wait would not end in time).
    /// Places go to the waiters about in the order they came (tokio's `Notify` wakes the
    /// longest waiting first; a waiter woken whose place was taken meanwhile by one joining the
    /// line goes back to its end, so the order is not strict); the adaptation measures from
    /// admission, so it still judges the work and not the line.
    pub async fn acquire_within(self: &Arc<Self>, wait: Duration) -> Option<Permit> {
        // While others wait, a newcomer does not take the place just given back to the first
        // of them: it joins the line.
        if self.waiting() == 0 {
            if let Some(permit) = self.try_place() {
                return Some(permit);
            }
        }
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        // Out of the line however the wait ends: a client that goes away drops this future
        // mid-wait, and a waiter counted forever would have every hold shed from then on.
        let in_line = InLine(&self.waiting);
        let permit = if queued < self.bounds.max && !wait.is_zero() {
            self.wait_for_place(Instant::now() + wait).await
        } else {
            None
        };
        drop(in_line);
        if permit.is_none() {
            self.count_shed();
            // A place given back while this one was giving up is passed on.
            if self.in_flight() < self.limit() {
                self.freed.notify_one();
            }
        }
        permit
    }

    async fn wait_for_place(self: &Arc<Self>, deadline: Instant) -> Option<Permit> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check: a place given back in between still wakes it.
            freed.as_mut().enable();
            if let Some(permit) = self.try_place() {
                return Some(permit);
            }
            let woken = tokio::time::timeout_at(deadline.into(), freed).await;
            if woken.is_err() {
                return self.try_place();
            }
        }
    }

    /// A place under the limit, or `None`.
    fn try_place(self: &Arc<Self>) -> Option<Permit> {
        let limit = self.limit();
        let before = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        Some(Permit {
            limiter: Arc::clone(self),
            started: Instant::now(),
            in_flight: before + 1,
        })
    }

    fn record(&self, latency: Duration, in_flight: usize) {
        self.record_at(latency, in_flight, Instant::now());
    }

    /// Counts one answer in the window; closes the window and adapts the limit when it is due.
    fn record_at(&self, latency: Duration, in_flight: usize, now: Instant) {
        let mut adapt = self.adapt();
        let window = &mut adapt.window;
        window.samples += 1;
        window.over_target += u32::from(latency > self.bounds.target);
        window.peak_in_flight = window.peak_in_flight.max(in_flight);
        // A window lasts at least the target: a cut shows in the answers only once requests
        // admitted under it finish, and commits take about the provider's answer time.
        let length = WINDOW.max(self.bounds.target);
        if window.samples < WINDOW_SAMPLES || now.duration_since(window.opened) < length {
            return;
        }
        let window = std::mem::replace(&mut adapt.window, Window::new(now));
        let before = adapt.limit;
        adapt.limit = self.next_limit(before, &window);
        let (before, after) = (before as usize, adapt.limit as usize);
        drop(adapt);
        if before != after {
            self.publish(after);
        }
    }

    /// The limit after `window`, from the limit before it.
    fn next_limit(&self, limit: f64, window: &Window) -> f64 {
        let (min, max) = (self.bounds.min as f64, self.bounds.max as f64);
        if window.over_target * 10 > window.samples {
            (limit * DECREASE).max(min)
        } else if (window.peak_in_flight * 2) as f64 >= limit {
            (limit + INCREASE * limit.sqrt()).min(max)
        } else {
            // Not limited by us: the answers say nothing about a higher limit.
            limit
        }
    }

    fn publish(&self, limit: usize) {
        if let Some(m) = &self.metrics {
            m.concurrency_limit
                .with_label_values(&[self.class.label()])
                .set(i64::try_from(limit).unwrap_or(i64::MAX));
        }
    }
}

/// One request counted in a limiter's line while it lives.
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The limits of a gateway.
#[derive(Clone)]
pub struct Shedder {
    holds: Arc<Limiter>,
    commits: Arc<Limiter>,
    /// How long a commit waits for a place.
    commit_wait: Duration,
}

impl Shedder {
    /// From the settings; metrics when given.
    pub fn new(
        settings: &settings::Shed,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Option<Self> {
        if !settings.enabled {
            return None;
        }
        let bounds = |target: Duration| Bounds {
            target: target.max(Duration::from_millis(1)),
            initial: settings.initial_limit,
            min: settings.min_limit,
            max: settings.max_limit,
        };
        Some(Self {
            holds: Limiter::new(Class::Hold, bounds(settings.hold_target), metrics.clone()),
            commits: Limiter::new(Class::Commit, bounds(settings.commit_target), metrics),
            commit_wait: settings.commit_wait,
        })
    }

    /// The limiter of a class.
    pub fn limiter(&self, class: Class) -> &Arc<Limiter> {
        match class {
            Class::Hold => &self.holds,
            Class::Commit => &self.commits,
        }
    }

    /// A place for a request of `class`, or the class it is shed from (answer it with
    /// [`overloaded`]). A hold is where a checkout starts: while commits are at their limit
    /// (or waiting for a place), a new hold would only add a commit that cannot be taken, and
    /// its seats would sit held for nothing. Holds are shed first then, at once, so the
    /// checkouts already under way finish (goodput) instead of all slowing down. A commit over
    /// its limit waits up to `commit_wait` for a place (see the module documentation).
    pub async fn admit_class(&self, class: Class) -> Result<Permit, Class> {
        match class {
            Class::Hold if self.commits.saturated() => {
                self.holds.count_shed();
                Err(class)
            }
            Class::Hold => self.holds.try_acquire().ok_or(class),
            Class::Commit => self
                .commits
                .acquire_within(self.commit_wait)
                .await
                .ok_or(class),
        }
    }
}

/// The answer to a shed request: the one error shape, `Retry-After: 1`.
pub fn overloaded(class: Class) -> Response<Body> {
    crate::errors::reply(
        warp::http::StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        &format!(
            "too many {}s in progress on this server; retry in 1 s",
            class.label()
        ),
        &serde_json::json!({"retry_after_secs": 1, "class": class.label()}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(target_ms: u64) -> Bounds {
        Bounds {
            target: Duration::from_millis(target_ms),
            initial: 4,
            min: 2,
            max: 8,
        }
    }

    fn request(method: Method, path: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .expect("a request")
    }

    #[test]
    fn only_holds_and_commits_are_limited() {
        assert_eq!(
            Class::of(&request(Method::POST, "/events/e1/reservations")),
            Some(Class::Hold)
        );
        assert_eq!(
            Class::of(&request(Method::POST, "/reservations/h1/commit")),
            Some(Class::Commit)
        );
        for (method, path) in [
            (Method::GET, "/events/e1/reservations"),
            (Method::GET, "/events/e1"),
            (Method::POST, "/events/e1/reservations/x"),
            (Method::POST, "/reservations/h1/extend"),
            (Method::POST, "/webhooks/payments"),
            (Method::GET, "/healthz"),
        ] {
            assert_eq!(Class::of(&request(method.clone(), path)), None, "{path}");
        }
    }

    #[test]
    fn past_the_limit_requests_are_shed_and_a_finished_one_frees_its_place() {
        let limiter = Limiter::new(Class::Hold, bounds(1_000), None);
        let permits: Vec<_> = (0..4).filter_map(|_| limiter.try_acquire()).collect();
        assert_eq!(permits.len(), 4);
        assert!(limiter.try_acquire().is_none(), "the fifth is shed");
        drop(permits);
        assert_eq!(limiter.in_flight(), 0);
        assert!(limiter.try_acquire().is_some());
    }

    /// `windows` windows of answers, each taking `latency` with `in_flight` in flight, on a
    /// clock of their own (a window closes every [`WINDOW`] or target, whichever is longer).
    fn feed(limiter: &Limiter, windows: u32, latency: Duration, in_flight: usize) {
        let start = limiter.adapt().window.opened;
        let length = WINDOW.max(limiter.bounds.target);
        for w in 1..=windows {
            for _ in 0..WINDOW_SAMPLES {
                limiter.record_at(latency, in_flight, start + length * w);
            }
        }
    }

    #[test]
    fn a_window_lasts_at_least_the_target() {
        let limiter = Limiter::new(Class::Commit, bounds(1_000), None);
        let start = limiter.adapt().window.opened;
        // Slow answers for half a target: the window is still open, nothing is cut yet.
        for _ in 0..WINDOW_SAMPLES * 4 {
            limiter.record_at(
                Duration::from_secs(2),
                4,
                start + Duration::from_millis(500),
            );
        }
        assert_eq!(limiter.limit(), 4);
        limiter.record_at(Duration::from_secs(2), 4, start + Duration::from_secs(1));
        assert_eq!(limiter.limit(), 3, "one cut for the whole window");
    }

    #[test]
    fn windows_over_the_target_lower_the_limit_to_its_floor() {
        let limiter = Limiter::new(Class::Commit, bounds(10), None);
        feed(&limiter, 20, Duration::from_millis(50), 4);
        assert_eq!(limiter.limit(), 2);
    }

    #[test]
    fn steady_answers_under_load_raise_the_limit_to_its_ceiling_and_light_load_leaves_it() {
        let limiter = Limiter::new(Class::Commit, bounds(60_000), None);
        feed(&limiter, 200, Duration::from_millis(5), 8);
        assert_eq!(limiter.limit(), 8);
        let limiter = Limiter::new(Class::Commit, bounds(60_000), None);
        feed(&limiter, 200, Duration::from_millis(5), 1);
        assert_eq!(limiter.limit(), 4, "half used at most: left alone");
    }

    #[test]
    fn a_tail_of_slow_answers_does_not_cut_the_limit_but_a_slow_tenth_does() {
        let limiter = Limiter::new(Class::Hold, bounds(20), None);
        let start = limiter.adapt().window.opened;
        let window = |w: u32, slow: u32| {
            let last = WINDOW_SAMPLES * 2 - 1;
            for i in 0..=last {
                let latency = Duration::from_millis(if i < slow { 100 } else { 5 });
                // The window closes on its last answer, not before.
                let at = start + WINDOW * if i == last { w } else { w - 1 };
                limiter.record_at(latency, 4, at);
            }
        };
        // Three answers of 32 over the target in every window: the 90th percentile is within.
        for w in 1..=50 {
            window(w, 3);
        }
        assert_eq!(limiter.limit(), 8, "grew to its ceiling");
        // Four of 32: over.
        window(51, 4);
        assert_eq!(limiter.limit(), 7);
    }

    fn shedder(limit: usize, commit_wait_ms: u64) -> Shedder {
        let settings = settings::Shed {
            initial_limit: limit,
            min_limit: 1,
            commit_wait: Duration::from_millis(commit_wait_ms),
            ..settings::Shed::default()
        };
        Shedder::new(&settings, None).expect("enabled")
    }

    #[tokio::test]
    async fn holds_are_shed_while_commits_are_at_their_limit() {
        let shedder = shedder(2, 0);
        let hold = shedder
            .admit_class(Class::Hold)
            .await
            .expect("a hold while commits are idle");
        let mut commits = Vec::new();
        for _ in 0..2 {
            commits.push(
                shedder
                    .admit_class(Class::Commit)
                    .await
                    .expect("under the limit"),
            );
        }
        assert_eq!(
            shedder.admit_class(Class::Hold).await.err(),
            Some(Class::Hold)
        );
        assert_eq!(
            shedder.admit_class(Class::Commit).await.err(),
            Some(Class::Commit),
            "no wait: shed at once"
        );
        drop(commits);
        assert!(
            shedder.admit_class(Class::Hold).await.is_ok(),
            "a commit finished"
        );
        drop(hold);
    }

    /// A shedder with one commit place, taken (`first`), and a second commit waiting for it
    /// (its task answers whether it got a place).
    async fn one_commit_waiting() -> (Shedder, Permit, tokio::task::JoinHandle<bool>) {
        let shedder = shedder(1, 10_000);
        let first = shedder.admit_class(Class::Commit).await.expect("a place");
        let waiting = {
            let shedder = shedder.clone();
            tokio::spawn(async move { shedder.admit_class(Class::Commit).await.is_ok() })
        };
        while shedder.commits.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        (shedder, first, waiting)
    }

    #[tokio::test]
    async fn a_commit_over_its_limit_waits_for_a_place_and_holds_are_shed_meanwhile() {
        let (shedder, first, waiting) = one_commit_waiting().await;
        assert!(!waiting.is_finished(), "it waits, it is not shed");
        assert_eq!(
            shedder.admit_class(Class::Hold).await.err(),
            Some(Class::Hold),
            "a commit waits: new holds are shed"
        );
        drop(first);
        assert!(
            waiting.await.expect("joined"),
            "the place given back is its"
        );
        assert_eq!(shedder.commits.waiting(), 0);
        assert_eq!(
            shedder.commits.in_flight(),
            0,
            "its permit is dropped with it"
        );
    }

    #[tokio::test]
    async fn a_commit_whose_client_goes_away_while_it_waits_leaves_the_line() {
        let (shedder, first, waiting) = one_commit_waiting().await;
        // The connection closes: hyper drops the request's future, as this does.
        waiting.abort();
        assert!(waiting.await.expect_err("aborted").is_cancelled());
        assert_eq!(shedder.commits.waiting(), 0, "no one is left in line");
        drop(first);
        assert!(
            shedder.admit_class(Class::Hold).await.is_ok(),
            "holds are admitted again"
        );
    }

    #[tokio::test]
    async fn a_commit_waiting_past_its_wait_is_shed_and_the_waiters_take_places_in_turn() {
        let shedder = shedder(1, 50);
        let first = shedder.admit_class(Class::Commit).await.expect("a place");
        let started = Instant::now();
        assert_eq!(
            shedder.admit_class(Class::Commit).await.err(),
            Some(Class::Commit)
        );
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "it waited first"
        );
        drop(first);
        // Three waiters for one place, each keeping it a little: all three get it, one by one.
        let shedder = self::shedder(1, 10_000);
        let first = shedder.admit_class(Class::Commit).await.expect("a place");
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let shedder = shedder.clone();
                tokio::spawn(async move {
                    let permit = shedder.admit_class(Class::Commit).await;
                    let in_flight = shedder.commits.in_flight();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    (permit.is_ok(), in_flight)
                })
            })
            .collect();
        while shedder.commits.waiting() < 3 {
            tokio::task::yield_now().await;
        }
        drop(first);
        for waiter in waiters {
            assert_eq!(
                waiter.await.expect("joined"),
                (true, 1),
                "never over the limit"
            );
        }
    }

    #[test]
    fn a_shed_request_gets_the_error_shape_and_retry_after() {
        let response = overloaded(Class::Hold);
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
    }
}
