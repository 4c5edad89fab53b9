//! `sandbox-provider`: the sandbox payment provider as its own HTTP service, speaking Stripe's
//! wire format (PaymentIntents, refunds, lists, card tokens, 3-D Secure) and sending signed
//! webhooks. The gateway and the reconciler reach it through the Stripe adapter
//! (`SEATS_PAYMENTS__PROVIDER=stripe`, `SEATS_PAYMENTS__STRIPE_BASE_URL=http://<addr>`), as
//! they would reach Stripe; browsers tokenize cards on it directly. State is in memory: a
//! restart forgets every payment, so run it for development, tests and benchmarks only.
//!
//! Keys and the webhook secret come from the environment only, never the command line (where
//! `ps` would show them) and are never printed.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use payments::delivery::WebhookTarget;
use payments::stripe::stub::{spawn, StubConfig};

#[derive(Parser)]
#[command(version, about = "The sandbox payment provider (Stripe's wire format)")]
struct Cli {
    /// Where to listen.
    #[arg(long, env = "SANDBOX_PROVIDER_ADDR", default_value = "127.0.0.1:12111")]
    addr: SocketAddr,
    /// The secret key servers authenticate with.
    #[arg(
        long,
        env = "SANDBOX_PROVIDER_SECRET_KEY",
        hide_env_values = true,
        default_value = "sk_test_sandbox"
    )]
    secret_key: String,
    /// The publishable key browsers tokenize cards with.
    #[arg(
        long,
        env = "SANDBOX_PROVIDER_PUBLISHABLE_KEY",
        default_value = "pk_test_sandbox"
    )]
    publishable_key: String,
    /// Where signed webhooks go (the gateway's `/webhooks/payments`); none when unset.
    #[arg(long, env = "SANDBOX_PROVIDER_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The webhook signing secret shared with the gateway (environment only).
    #[arg(skip = std::env::var("SANDBOX_PROVIDER_WEBHOOK_SECRET").ok())]
    webhook_secret: Option<String>,
    /// Latency added to every answer, ms.
    #[arg(long, env = "SANDBOX_PROVIDER_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// How long a `tok_timeout` charge takes to answer, ms.
    #[arg(
        long,
        env = "SANDBOX_PROVIDER_SLOW_ANSWER_MS",
        default_value_t = 30_000
    )]
    slow_answer_ms: u64,
}

runtime::global_allocator!();

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    runtime::logging::init();
    let cli = Cli::parse();
    let webhook = match (cli.webhook_url, cli.webhook_secret) {
        (Some(url), Some(secret)) => Some(WebhookTarget {
            url,
            secret: secret.into(),
        }),
        (Some(_), None) => {
            return Err("SANDBOX_PROVIDER_WEBHOOK_URL needs SANDBOX_PROVIDER_WEBHOOK_SECRET".into())
        }
        _ => None,
    };
    let sends_webhooks = webhook.is_some();
    let config = StubConfig {
        secret_key: cli.secret_key,
        publishable_key: cli.publishable_key,
        webhook,
        latency: Duration::from_millis(cli.latency_ms),
        slow_answer: Duration::from_millis(cli.slow_answer_ms),
    };
    let (addr, handle) = spawn(config, cli.addr).await?;
    tracing::info!(%addr, sends_webhooks, "sandbox provider listening");
    runtime::shutdown::signal().await;
    drop(handle);
    tracing::info!("sandbox provider stopped");
    Ok(())
}
