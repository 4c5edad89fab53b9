//! Request rate limits (`governor`): per client IP on every public route, and per user on every
//! authenticated one. Over the limit: 429 `rate_limited` with `Retry-After`. Keys idle for a
//! while are evicted, so memory stays bounded however many distinct clients come.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use warp::http::StatusCode;

use crate::errors::ApiError;

/// The limits.
pub struct Limits {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    user: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    header: Option<String>,
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

impl Limits {
    /// From the settings.
    pub fn new(s: &settings::RateLimits) -> Self {
        Self {
            ip: RateLimiter::keyed(quota(s.per_ip_per_sec, s.per_ip_burst)),
            user: RateLimiter::keyed(quota(s.per_user_per_sec, s.per_user_burst)),
            clock: DefaultClock::default(),
            header: s.client_ip_header.as_ref().map(|h| h.to_ascii_lowercase()),
        }
    }

    /// The client's IP: the trusted proxy's header when configured (its first address), else
    /// the peer.
    pub fn client_ip(
        &self,
        peer: Option<SocketAddr>,
        headers: &warp::http::HeaderMap,
    ) -> Option<IpAddr> {
        if let Some(name) = &self.header {
            if let Some(ip) = headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
            {
                return Some(ip);
            }
        }
        peer.map(|p| p.ip())
    }

    fn refused(&self, reason: &'static str, wait: Duration) -> ApiError {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        ApiError::client(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests from this {reason}; retry in {secs} s"),
        )
        .with_details(serde_json::json!({"reason": reason, "retry_after_secs": secs}))
    }

    /// Counts a request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.ip
            .check_key(&ip)
            .map_err(|n| self.refused("ip", n.wait_time_from(self.clock.now())))
    }

    /// Counts a request of `user`.
    pub fn check_user(&self, user: &str) -> Result<(), ApiError> {
        self.user
            .check_key(&user.to_owned())
            .map_err(|n| self.refused("user", n.wait_time_from(self.clock.now())))
    }

    /// Forgets keys whose limit has fully recovered (they would behave as new anyway).
    pub fn evict_idle(&self) {
        self.ip.retain_recent();
        self.ip.shrink_to_fit();
        self.user.retain_recent();
        self.user.shrink_to_fit();
    }

    /// Keys tracked now (for the memory bound).
    pub fn tracked(&self) -> usize {
        self.ip.len() + self.user.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_keys_are_evicted_so_memory_stays_bounded() {
        let limits = Limits::new(&settings::RateLimits {
            per_ip_per_sec: 20,
            per_ip_burst: 1,
            per_user_per_sec: 20,
            per_user_burst: 1,
            client_ip_header: None,
        });
        for i in 0..1_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            assert!(limits.check_ip(ip).is_ok());
            assert!(limits.check_user(&format!("u{i}")).is_ok());
        }
        assert!(
            limits.check_ip(IpAddr::from(0u32.to_be_bytes())).is_err(),
            "over its burst"
        );
        assert_eq!(limits.tracked(), 2_000);
        tokio::time::sleep(Duration::from_millis(200)).await;
        limits.evict_idle();
        assert_eq!(
            limits.tracked(),
            0,
            "every key recovered, every key forgotten"
        );
    }
}
