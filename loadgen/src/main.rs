//! `loadgen`: runs the benchmark plan against a running system and writes BENCHMARKS.md.
//!
//! It reads the same settings as the gateway (`SEATS_*`: Redis nodes, database URL, JWT secret,
//! listen addresses), so pointed at a stack started by `scripts/up` it needs no flags;
//! `scripts/bench` does all of it.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

runtime::global_allocator!();

#[derive(Parser)]
#[command(about = "Open-loop load generator and benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every scenario, ceiling and baseline; writes the Markdown report and its JSON.
    Bench {
        /// Every scenario at a tiny scale (seconds, not minutes).
        #[arg(long)]
        smoke: bool,
        /// Where the Markdown goes.
        #[arg(long, default_value = "BENCHMARKS.md")]
        out: std::path::PathBuf,
        /// Where the JSON goes.
        #[arg(long, default_value = "benchmarks.json")]
        json: std::path::PathBuf,
        /// Public API base URL (default: from SEATS_HTTP__ADDR).
        #[arg(long)]
        api: Option<String>,
        /// The command line to print as the way to reproduce the figures.
        #[arg(long, default_value = "scripts/bench")]
        command: String,
        /// The commit the figures are for.
        #[arg(long, env = "BENCH_COMMIT", default_value = "unknown")]
        commit: String,
    },
    /// Only the hold storm, at one rate (for profiling the hold path: scripts/profile-holds).
    Holds {
        /// Holds started per second.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// For how long.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Profile it (Redis SLOWLOG per script, perf on the gateway) and print where a hold's
        /// time goes, as BENCHMARKS.md shows it.
        #[arg(long)]
        profile: bool,
        /// Hold by quantity (2 a hold) on a general-admission floor of this many places over 8
        /// shards, instead of seats.
        #[arg(long)]
        floor: Option<u32>,
        /// Public API base URL (default: from SEATS_HTTP__ADDR).
        #[arg(long)]
        api: Option<String>,
    },
    /// Only checkout (hold + commit, sandbox at zero latency), at one rate: for profiling.
    Checkout {
        /// Checkouts started per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// For how long.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Profile it (Redis SLOWLOG per script) and print its Redis calls per checkout, as
        /// BENCHMARKS.md shows them.
        #[arg(long)]
        profile: bool,
        /// Public API base URL (default: from SEATS_HTTP__ADDR).
        #[arg(long)]
        api: Option<String>,
    },
    /// Only the flash sale (as the benchmark runs it, at any scale): for profiling.
    Flash {
        /// Buyers.
        #[arg(long, default_value_t = 20_000)]
        users: usize,
        /// Seats.
        #[arg(long, default_value_t = 4_000)]
        seats: usize,
        /// Buyers arriving per second.
        #[arg(long, default_value_t = 2_000.0)]
        arrival_rate: f64,
        /// Buyers the waiting room admits per second.
        #[arg(long, default_value_t = 300.0)]
        admit_rate: f64,
        /// Public API base URL (default: from SEATS_HTTP__ADDR).
        #[arg(long)]
        api: Option<String>,
    },
    /// The chaos suite's sale (scripts/chaos): sets up an event, then buyers against every
    /// gateway, logging answers and paid orders in `dir` for `chaos-check`.
    ChaosSale {
        /// The event to create.
        #[arg(long)]
        event: String,
        /// Public API base URLs of the gateways, comma-separated.
        #[arg(long, value_delimiter = ',')]
        gateways: Vec<String>,
        /// Buyers.
        #[arg(long, default_value_t = 3_000)]
        buyers: usize,
        /// Seats.
        #[arg(long, default_value_t = 600)]
        seats: usize,
        /// Buyers arriving per second.
        #[arg(long, default_value_t = 50.0)]
        arrival_rate: f64,
        /// Buyers still busy this long after the first arrived give up, s.
        #[arg(long, default_value_t = 120)]
        deadline: u64,
        /// Where the logs go.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// The chaos suite's books checker: exits non-zero on any violation.
    ChaosCheck {
        /// The sale's folder (`chaos-sale --dir`, with the fault log `faults.tsv`).
        #[arg(long)]
        dir: std::path::PathBuf,
        /// How long to wait for the reconciler to settle the books, s.
        #[arg(long, default_value_t = 90)]
        settle: u64,
    },
    /// Only waiting-room polls, at one rate: for profiling.
    Polls {
        /// Polls per second.
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        /// For how long.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Public API base URL (default: from SEATS_HTTP__ADDR).
        #[arg(long)]
        api: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::logging::init();
    let cli = Cli::parse();
    let settings = settings::Settings::load()?;
    let api = match &cli.command {
        Command::Bench { api, .. }
        | Command::Holds { api, .. }
        | Command::Checkout { api, .. }
        | Command::Flash { api, .. }
        | Command::Polls { api, .. } => api.clone(),
        Command::ChaosSale { .. } | Command::ChaosCheck { .. } => None,
    };
    let keys = gateway::auth::Keys::from_settings(&settings)?;
    let coordinator = Arc::new(
        coordinator::Coordinator::connect(&settings.redis, settings.limits.clone()).await?,
    );
    let db = catalog::pool::options(16)
        .connect(settings.database.url.expose_secret())
        .await?;
    let payments = orders::provider(&settings.payments, &db)?;
    let target = loadgen::Target {
        api: api.unwrap_or_else(|| format!("http://{}", settings.http.addr)),
        admin: format!("http://{}", settings.http.admin_addr),
        http: loadgen::Target::client()?,
        db,
        coordinator,
        keys: Arc::new(keys),
        database_url: settings.database.url.clone(),
        payments,
    };
    let (smoke, out, json, command, commit) = match cli.command {
        Command::ChaosSale {
            event,
            gateways,
            buyers,
            seats,
            arrival_rate,
            deadline,
            dir,
        } => {
            let sale = loadgen::chaos::ChaosSale {
                event,
                gateways,
                buyers,
                seats,
                arrival_rate,
                deadline: std::time::Duration::from_secs(deadline),
                dir,
            };
            loadgen::chaos::setup(&target, &sale).await?;
            // The buyers' banks: 3-D Secure is completed at the sandbox, whose webhook goes to
            // the last gateway (the schedule kills the first).
            let webhook = settings.payments.webhook_secret.clone().map(|secret| {
                payments::sandbox::WebhookTarget {
                    url: format!(
                        "{}/webhooks/payments",
                        sale.gateways.last().cloned().unwrap_or_default()
                    ),
                    secret,
                }
            });
            let sandbox = payments::sandbox::Sandbox::new(
                target.db.clone(),
                payments::sandbox::SandboxConfig {
                    webhook,
                    ..Default::default()
                },
            );
            let summary = loadgen::chaos::run(&target, &sale, sandbox).await?;
            std::fs::write(
                sale.dir.join("summary.json"),
                serde_json::to_string_pretty(&summary)?,
            )?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            return Ok(());
        }
        Command::ChaosCheck { dir, settle } => {
            let sale: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("sale.json"))?)?;
            let event = sale["event"].as_str().unwrap_or_default();
            let ok =
                loadgen::books::check(&target, &dir, event, std::time::Duration::from_secs(settle))
                    .await?;
            if !ok {
                std::process::exit(1);
            }
            return Ok(());
        }
        Command::Holds {
            rate,
            seconds,
            profile,
            floor,
            ..
        } => {
            let id = loadgen::run_id();
            let map = match floor {
                Some(capacity) => {
                    loadgen::scenarios::floor_venue(&format!("profile-floor-{id}"), capacity, 8)
                }
                None => catalog::seatmap::stadium(&format!("profile-stadium-{id}"), "Stadium"),
            };
            let event = format!("profile-holds-{id}");
            let seats = std::sync::Arc::new(target.setup_event(&event, &map, 1_000_000).await?);
            target.load_venue(&event).await?;
            let buyers = loadgen::scenarios::Buyers::new(&target, &format!("p-{id}"), 1_000)?;
            let storm = loadgen::scenarios::Storm {
                event,
                seats,
                contention: 0.0,
                hot: 100,
                release: true,
                area: floor.map(|capacity| ("floor".to_owned(), 2, capacity, 8)),
            };
            if profile {
                let p =
                    loadgen::profile::hold_profile(&target, &buyers, &storm, rate, seconds).await?;
                println!(
                    "{}\n{}\n{}",
                    loadgen::stats::Stats::header(),
                    p.stats.row(),
                    p.markdown(None)
                );
                return Ok(());
            }
            let schedule = schedule(rate, seconds);
            let s = loadgen::scenarios::holds(&target, &buyers, &storm, &schedule).await;
            print_row(&s);
            return Ok(());
        }
        Command::Checkout {
            rate,
            seconds,
            profile,
            ..
        } => {
            let id = loadgen::run_id();
            if profile {
                let buyers = loadgen::scenarios::Buyers::new(&target, &format!("c-{id}"), 1_000)?;
                let p = loadgen::profile::checkout_profile(&target, &buyers, rate, seconds).await?;
                println!(
                    "{}\n{}\n{}",
                    loadgen::stats::Stats::header(),
                    p.stats.row(),
                    p.markdown()
                );
                return Ok(());
            }
            let map = catalog::seatmap::stadium(&format!("profile-stadium-{id}"), "Stadium");
            let event = format!("profile-checkout-{id}");
            let seats = std::sync::Arc::new(target.setup_event(&event, &map, 1_000_000).await?);
            target.load_venue(&event).await?;
            let buyers = loadgen::scenarios::Buyers::new(&target, &format!("c-{id}"), 1_000)?;
            let schedule = schedule(rate, seconds);
            let s = loadgen::scenarios::checkout(&target, &buyers, &event, seats, &schedule).await;
            print_row(&s);
            return Ok(());
        }
        Command::Flash {
            users,
            seats,
            arrival_rate,
            admit_rate,
            ..
        } => {
            let event = format!("profile-flash-{}", loadgen::run_id());
            let r =
                loadgen::bench::flash_sale(&target, &event, seats, users, arrival_rate, admit_rate)
                    .await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(());
        }
        Command::Polls { rate, seconds, .. } => {
            let id = loadgen::run_id();
            let event = format!("profile-queue-{id}");
            loadgen::scenarios::waiting_room_event(&target, &event).await?;
            let buyers = loadgen::scenarios::Buyers::new(&target, &format!("q-{id}"), 1_000)?;
            let schedule = schedule(rate, seconds);
            let s = loadgen::scenarios::queue_polls(&target, &buyers, &event, &schedule).await?;
            print_row(&s);
            return Ok(());
        }
        Command::Bench {
            smoke,
            out,
            json,
            command,
            commit,
            ..
        } => (smoke, out, json, command, commit),
    };
    let plan = if smoke {
        loadgen::bench::Plan::smoke()
    } else {
        loadgen::bench::Plan::full()
    };
    let report = loadgen::bench::run(&target, &plan).await?;
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    std::fs::write(&out, report.markdown(&command, &commit))?;
    eprintln!("[bench] wrote {} and {}", out.display(), json.display());
    for t in &report.targets {
        eprintln!(
            "[bench] {} {}: {}",
            if t.met { "met   " } else { "MISSED" },
            t.target,
            t.measured
        );
    }
    Ok(())
}

/// `rate` operations a second for `seconds`.
fn schedule(rate: f64, seconds: u64) -> loadgen::open_loop::Schedule {
    loadgen::open_loop::Schedule::new(rate, std::time::Duration::from_secs(seconds))
}

/// One run as BENCHMARKS.md's tables show it, with their header.
fn print_row(s: &loadgen::stats::Stats) {
    println!("{}\n{}", loadgen::stats::Stats::header(), s.row());
    // Under load shedding the p99 that matters is the admitted requests' (BENCHMARKS.md's
    // overload rows): printed beside the row, which counts every answer.
    println!(
        "admitted: {} ok, p99 {:.2} ms, goodput {:.0}/s",
        s.ok,
        s.ok_p99_ms,
        s.ok as f64 / s.seconds.max(1e-9)
    );
}
