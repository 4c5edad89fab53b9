//! Load shedding: an adaptive concurrency limit per kind of costly request (holds, commits).
//!
//! Past its capacity a server that accepts everything gets slower for everyone: queues grow
//! until clients time out, and the work done for them is wasted. A concurrency limit keeps the
//! queue short instead: a hold or commit that would exceed it is answered `503 overloaded`
//! with `Retry-After` at once, before any parsing or I/O, and the admitted ones keep their
//! latency.
//!
//! The limit adapts (AIMD, as TCP's congestion window and Netflix's `AIMDLimit`): a request
//! that finishes within its class's latency target, while the limit was at least half used,
//! raises the limit by `1/limit` (about one per limit's worth of requests); one that took
//! longer than the target lowers it by a tenth, at most once per target interval (a burst of
//! late answers is one signal, not many). So the limit settles where the latency of admitted
//! requests is about the target, whatever the machine, the Redis Cluster or the Postgres behind
//! it can do. The target must sit above a class's normal latency at light load (for commits,
//! the payment provider's answer time included), or the limit would shrink to its floor.

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

/// A class's bounds (`shed.*` settings).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The latency admitted requests should keep.
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
    adapt: Mutex<Adapt>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

struct Adapt {
    limit: f64,
    last_decrease: Instant,
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
            adapt: Mutex::new(Adapt {
                limit: bounds.initial as f64,
                last_decrease: Instant::now(),
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

    /// A place under the limit, or `None`: shed.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let limit = self.limit();
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            });
        match admitted {
            Ok(before) => Some(Permit {
                limiter: Arc::clone(self),
                started: Instant::now(),
                in_flight: before + 1,
            }),
            Err(_) => {
                if let Some(m) = &self.metrics {
                    m.shed_total.with_label_values(&[self.class.label()]).inc();
                }
                None
            }
        }
    }

    fn record(&self, latency: Duration, in_flight: usize) {
        let mut adapt = self.adapt();
        let before = adapt.limit;
        if latency > self.bounds.target {
            if adapt.last_decrease.elapsed() >= self.bounds.target {
                adapt.limit = (adapt.limit * 0.9).max(self.bounds.min as f64);
                adapt.last_decrease = Instant::now();
            }
        } else if (in_flight * 2) as f64 >= adapt.limit {
            adapt.limit = (adapt.limit + 1.0 / adapt.limit).min(self.bounds.max as f64);
        }
        let (before, after) = (before as usize, adapt.limit as usize);
        drop(adapt);
        if before != after {
            self.publish(after);
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

/// The limits of a gateway.
#[derive(Clone)]
pub struct Shedder {
    holds: Arc<Limiter>,
    commits: Arc<Limiter>,
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
        })
    }

    /// The limiter of a class.
    pub fn limiter(&self, class: Class) -> &Arc<Limiter> {
        match class {
            Class::Hold => &self.holds,
            Class::Commit => &self.commits,
        }
    }

    /// Admits `request`: a permit to hold until it is answered (`None` for a request of no
    /// limited class), or the class it is shed from (answer it with [`overloaded`]).
    pub fn admit(&self, request: &Request<Body>) -> Result<Option<Permit>, Class> {
        let Some(class) = Class::of(request) else {
            return Ok(None);
        };
        match self.limiter(class).try_acquire() {
            Some(permit) => Ok(Some(permit)),
            None => Err(class),
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

    #[test]
    fn slow_answers_lower_the_limit_to_its_floor_and_fast_ones_under_load_raise_it() {
        let limiter = Limiter::new(Class::Commit, bounds(0), None);
        // Every answer is over a zero target: each lowers the limit (the cooldown is the
        // target, zero here), never under the floor.
        for _ in 0..20 {
            drop(limiter.try_acquire());
        }
        assert_eq!(limiter.limit(), 2);
        let limiter = Limiter::new(Class::Commit, bounds(60_000), None);
        // Fast answers with the limit at least half used raise it, never over the ceiling.
        for _ in 0..200 {
            let held: Vec<_> = (0..4).filter_map(|_| limiter.try_acquire()).collect();
            drop(held);
        }
        assert_eq!(limiter.limit(), 8);
        // Fast answers at light load leave it alone.
        let limiter = Limiter::new(Class::Commit, bounds(60_000), None);
        for _ in 0..200 {
            drop(limiter.try_acquire());
        }
        assert_eq!(limiter.limit(), 4);
    }

    #[test]
    fn a_shed_request_gets_the_error_shape_and_retry_after() {
        let response = overloaded(Class::Hold);
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
    }
}
