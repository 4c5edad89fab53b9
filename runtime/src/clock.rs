//! The process's wall clock in unix units. For timestamps a process reports or signs (payments'
//! `created`, webhook signatures, JWTs' `exp`, a commit's queue lag), never for a hold's expiry,
//! which Redis `TIME` judges inside the scripts. A clock before 1970 reads 0.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Now, in unix seconds.
pub fn unix_secs() -> u64 {
    since_epoch().as_secs()
}

/// Now, in unix milliseconds.
pub fn unix_ms() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn seconds_and_milliseconds_agree() {
        let (s, ms) = (super::unix_secs(), super::unix_ms());
        assert!(s > 1_700_000_000, "after 2023: {s}");
        assert!(ms / 1000 >= s && ms / 1000 <= s + 1, "{s} s vs {ms} ms");
    }
}
