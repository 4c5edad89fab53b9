//! Layered configuration of every process: built-in defaults (each section's `Default`, the
//! only place a default is written), then an optional TOML file (`SEATS_CONFIG`), then
//! environment variables prefixed `SEATS_` with `__` between levels (`SEATS_REDIS__NODES`,
//! `SEATS_HTTP__ADDR`). `DATABASE_URL` is honoured as the conventional name. Secrets are wrapped
//! so they never print.

use std::net::SocketAddr;
use std::time::Duration;

use coordinator::{Limits, RedisSettings};
// Each domain crate owns its configuration types, as the coordinator owns `Limits`: these
// sections are `orders`'s, layered here with the rest.
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
pub use orders::config::{Payments, ProviderKind, Tickets};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_with::{serde_as, DurationMilliSeconds};

/// Where the HTTP listeners bind.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Http {
    /// Buyer-facing API.
    pub addr: SocketAddr,
    /// Admin and metrics: a separate listener, kept off the public network.
    pub admin_addr: SocketAddr,
    /// Longest wait for a complete request head, ms; also the idle timeout of a kept-alive
    /// connection. A client that sends its head slower than this is disconnected.
    #[serde(rename = "header_read_timeout_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub header_read_timeout: Duration,
    /// Most connections open at once per listener; past it new ones get 503 and are closed.
    pub max_connections: usize,
    /// The URL clients reach the public listener at (e.g. `https://tickets.example.com` behind
    /// a TLS proxy), named as the server of the public OpenAPI document; unset: `http://` and
    /// `addr`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The built web app (`web/dist`), served under `/app/`; unset: no `/app/`.
    #[serde(default)]
    pub web_dir: Option<String>,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 20_000,
            public_url: None,
            web_dir: None,
        }
    }
}

/// Postgres.
#[derive(Debug, Clone, Deserialize)]
pub struct Database {
    /// Connection URL (may hold a password: never printed).
    pub url: SecretString,
    /// Pool size.
    pub max_connections: u32,
}

/// The reconciler daemon.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reconciler {
    /// Health and metrics listener.
    pub addr: SocketAddr,
    /// Pause between two reconciliation passes (inventory, payments, sold-seat repair), ms.
    #[serde(rename = "interval_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub interval: Duration,
    /// Pause between two expiry sweeps and audit copies, ms.
    #[serde(rename = "sweep_interval_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub sweep_interval: Duration,
    /// Most commits per durable-writer transaction.
    pub writer_batch: u64,
    /// A commit delivered to a writer that has not acknowledged it for this long is taken over
    /// by another writer, ms.
    #[serde(rename = "writer_stale_after_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub writer_stale_after: Duration,
    /// Fault injection for tests only: the writer sleeps this long inside each batch's
    /// transaction, ms. 0 in production.
    #[serde(rename = "writer_pause_in_batch_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub writer_pause_in_batch: Duration,
    /// Captured payments without an order are settled once they are this old, ms (commits in
    /// flight finish on their own first).
    #[serde(rename = "payment_grace_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub payment_grace: Duration,
    /// Most pages of the provider's listing of captured payments one pass reads (a longer
    /// listing is resumed by the next pass).
    pub payment_pages_per_pass: usize,
    /// How long a waiting-list offer holds its seats for the buyer it is made to, ms (then the
    /// next buyer on the list gets them). Offers are made every `sweep_interval_ms`.
    #[serde(rename = "waitlist_offer_ttl_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub waitlist_offer_ttl: Duration,
}

impl Default for Reconciler {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 9091)),
            interval: Duration::from_secs(5),
            sweep_interval: Duration::from_millis(500),
            writer_batch: 256,
            writer_stale_after: Duration::from_secs(5),
            writer_pause_in_batch: Duration::ZERO,
            payment_grace: Duration::from_secs(15),
            payment_pages_per_pass: 20,
            waitlist_offer_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// Load shedding at the gateway: an adaptive concurrency limit for holds and for commits (see
/// `gateway::shed`). Past it a request is answered 503 `overloaded` with `Retry-After` at once.
#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shed {
    /// Off: every request is admitted.
    pub enabled: bool,
    /// The 90th-percentile latency admitted holds should keep, ms. Under the tail of normal
    /// latency at the sustained rate it would take capacity away rather than protect it. 15:
    /// on the 2-core benchmark box a hold's p90 is 3-7 ms at 1,000/s and reaches 15 ms near
    /// 2,000/s (where about 0.5% of holds are shed), and under 4x overload 15 kept the admitted
    /// p90 near 19 ms where 25 let it reach 30, for about 5% less goodput.
    #[serde(rename = "hold_target_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub hold_target: Duration,
    /// The 90th-percentile latency admitted commits should keep, ms: above the payment
    /// provider's normal answer time, which a commit includes (a card network takes up to a
    /// second; `scripts/bench`, whose sandbox answers at once, sets 150).
    #[serde(rename = "commit_target_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub commit_target: Duration,
    /// How long a commit over its limit waits for a place before it is shed, ms (0: shed at
    /// once, as holds are). A commit is a buyer who already holds seats and is paying: turned
    /// away, they retry after a second or give up with their seats held for nothing, so a
    /// short wait in line is worth more to them than a fast 503. Waiting commits count against
    /// new holds (those are shed first), and the waiting rooms' pace sees the wait.
    #[serde(rename = "commit_wait_ms")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub commit_wait: Duration,
    /// Each limit at start.
    pub initial_limit: usize,
    /// The floor of each limit.
    pub min_limit: usize,
    /// The ceiling of each limit.
    pub max_limit: usize,
}

impl Default for Shed {
    fn default() -> Self {
        Self {
            enabled: true,
            hold_target: Duration::from_millis(15),
            commit_target: Duration::from_millis(1_000),
            commit_wait: Duration::from_millis(2_000),
            initial_limit: 256,
            min_limit: 8,
            max_limit: 4_096,
        }
    }
}

/// Request rate limits at the gateway (per client IP and per authenticated user).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimits {
    /// Sustained requests per second per client IP.
    pub per_ip_per_sec: u32,
    /// Burst per client IP.
    pub per_ip_burst: u32,
    /// Sustained requests per second per user.
    pub per_user_per_sec: u32,
    /// Burst per user.
    pub per_user_burst: u32,
    /// When set (e.g. `x-forwarded-for`), the client IP is the first address of this header,
    /// as set by a trusted proxy in front of the gateway; otherwise the socket's peer.
    pub client_ip_header: Option<String>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_ip_per_sec: 200,
            per_ip_burst: 400,
            per_user_per_sec: 20,
            per_user_burst: 40,
            client_ip_header: None,
        }
    }
}

/// Authentication: bearer JWTs (HS256) signed with this key.
#[derive(Debug, Clone, Deserialize)]
pub struct Auth {
    /// The signing key (at least 32 bytes; never printed).
    pub jwt_secret: SecretString,
    /// The longest lifetime (`exp - iat`) a token may claim, s: a leaked token that says it is
    /// good for ten years is refused. Identity providers issue access tokens of minutes to
    /// hours.
    #[serde(default = "default_max_token_lifetime_secs")]
    pub max_token_lifetime_secs: u64,
    /// Development only: `POST /dev/signin` hands any caller a buyer token for the name it
    /// gives. Off by default, and then the route does not exist (404); `scripts/up` turns it on
    /// for the local stack. A deployment gets its tokens from its identity provider.
    #[serde(default)]
    pub dev_signin: bool,
}

/// A day: the longest of the usual access-token lifetimes.
fn default_max_token_lifetime_secs() -> u64 {
    86_400
}

/// Every setting.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Authentication (`SEATS_AUTH__JWT_SECRET`). No default: the gateway refuses to start
    /// without it; processes that verify no token (the reconciler) do not need it.
    pub auth: Option<Auth>,
    /// Ticket signing (optional: see [`Tickets`]).
    pub tickets: Option<Tickets>,
    /// Gateway listeners.
    pub http: Http,
    /// Reconciler daemon.
    pub reconciler: Reconciler,
    /// Redis Cluster.
    pub redis: RedisSettings,
    /// Postgres.
    pub database: Database,
    /// Hold bounds.
    pub limits: Limits,
    /// Payments and checkout.
    pub payments: Payments,
    /// Gateway rate limits.
    pub rate_limits: RateLimits,
    /// Gateway load shedding.
    pub shed: Shed,
}

#[derive(Serialize)]
struct Defaults {
    http: Http,
    reconciler: Reconciler,
    database: DatabaseDefaults,
    payments: Payments,
    rate_limits: RateLimits,
    shed: Shed,
}

#[derive(Serialize)]
struct DatabaseDefaults {
    url: &'static str,
    max_connections: u32,
}

impl Settings {
    /// Reads the layers. A missing value is an error naming the key.
    pub fn load() -> Result<Self, Box<figment::Error>> {
        let defaults = Defaults {
            http: Http::default(),
            reconciler: Reconciler::default(),
            rate_limits: RateLimits::default(),
            shed: Shed::default(),
            payments: Payments::default(),
            database: DatabaseDefaults {
                url: "postgres://postgres@127.0.0.1:5432/postgres",
                max_connections: 16,
            },
        };
        let mut figment = Figment::from(Serialized::defaults(defaults))
            .merge(Serialized::default("redis", RedisSettings::default()))
            .merge(Serialized::default("limits", Limits::default()));
        if let Ok(path) = std::env::var("SEATS_CONFIG") {
            figment = figment.merge(Toml::file(path));
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            figment = figment.merge(("database.url", url));
        }
        figment = figment.merge(Env::prefixed("SEATS_").split("__"));
        figment.extract().map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own signature
    fn layers_and_secrets() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SEATS_REDIS__NODES", "127.0.0.1:7000,127.0.0.1:7001");
            jail.set_env("SEATS_LIMITS__MAX_SEATS_PER_HOLD", "6");
            jail.set_env("DATABASE_URL", "postgres://u:hunter2@db/x");
            jail.set_env(
                "SEATS_AUTH__JWT_SECRET",
                "0123456789abcdef0123456789abcdef-s3cret",
            );
            jail.set_env(
                "SEATS_TICKETS__SIGNING_KEY",
                "dGlja2V0LXNpZ25pbmctc2VlZC0zMi1ieXRlcy0hIQ",
            );
            jail.set_env("SEATS_TICKETS__KEY_ID", "2026-12");
            let s = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(s.redis.nodes, vec!["127.0.0.1:7000", "127.0.0.1:7001"]);
            let tickets = s.tickets.as_ref().expect("ticket keys read");
            assert_eq!(tickets.key_id, "2026-12");
            assert!(tickets.retired_public_keys.is_empty());
            assert!(
                !format!("{s:?}").contains("dGlja2V0"),
                "the ticket key never prints"
            );
            assert_eq!(s.limits.max_seats_per_hold, 6);
            assert_eq!(s.limits.max_ttl_secs, 900, "untouched defaults stay");
            assert!(
                !s.auth.as_ref().is_some_and(|a| a.dev_signin),
                "the development sign-in is off unless turned on"
            );
            assert_eq!(s.database.url.expose_secret(), "postgres://u:hunter2@db/x");
            assert!(!format!("{s:?}").contains("hunter2"), "secrets never print");
            assert!(!format!("{s:?}").contains("s3cret"), "secrets never print");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own signature
    fn durations_keep_their_millisecond_names() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SEATS_SHED__HOLD_TARGET_MS", "250");
            jail.set_env("SEATS_RECONCILER__INTERVAL_MS", "1500");
            jail.set_env("SEATS_PAYMENTS__PACE_TARGET_MS", "0");
            jail.create_file("seats.toml", "[http]\nheader_read_timeout_ms = 2000\n")?;
            jail.set_env("SEATS_CONFIG", "seats.toml");
            let s = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(s.shed.hold_target, Duration::from_millis(250));
            assert_eq!(s.reconciler.interval, Duration::from_millis(1500));
            assert_eq!(s.payments.pace_target, Duration::ZERO);
            assert_eq!(s.http.header_read_timeout, Duration::from_secs(2));
            assert_eq!(
                s.payments.write_deadline,
                Payments::default().write_deadline,
                "untouched defaults stay"
            );
            Ok(())
        });
    }
}
