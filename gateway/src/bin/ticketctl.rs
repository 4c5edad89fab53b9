//! `ticketctl`: the organizer's command line, over the same code as the API (catalog and
//! coordinator crates), reading the same settings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use catalog::events::{EventDraft, EventOutcome, StatusOutcome};
use catalog::seatmap::SeatMap;
use catalog::venues::VenueOutcome;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use coordinator::{Coordinator, EventId, UserId};
use gateway::auth::{Keys, Role};
use secrecy::ExposeSecret;
use settings::Settings;

runtime::global_allocator!();

#[derive(Parser)]
#[command(
    version,
    about = "Organizer tools: venues, events, sales, tokens, the demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// The 2,000-seat demo theatre.
    Theatre,
    /// A 50,000-seat stadium of 40 sections.
    Stadium,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Gate,
    Buyer,
    Organizer,
    Admin,
}

#[derive(Subcommand)]
enum Command {
    /// Print a generated venue in the seat-map format (docs/seatmap.md).
    Generate {
        /// Which venue.
        kind: Kind,
        /// Venue id.
        #[arg(long)]
        id: Option<String>,
    },
    /// Import a venue from a seat-map JSON file.
    ImportVenue {
        /// The file.
        file: PathBuf,
    },
    /// Create an event (draft) with a price per category.
    CreateEvent {
        /// Event id.
        #[arg(long)]
        id: String,
        /// Venue id.
        #[arg(long)]
        venue: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// Category, e.g. concert.
        #[arg(long, default_value = "concert")]
        category: String,
        /// Start (RFC 3339).
        #[arg(long)]
        starts_at: DateTime<Utc>,
        /// Sale opening (RFC 3339); default now.
        #[arg(long)]
        sale_opens_at: Option<DateTime<Utc>>,
        /// A price, CATEGORY=CENTS; repeat for each category.
        #[arg(long = "price", value_parser = parse_price)]
        prices: Vec<(String, i64)>,
        /// The organizer (user id) who may change the event through the API. Without it, only
        /// an admin may.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Open sales: load the inventory into Redis, then mark the event on sale.
    OpenSales {
        /// Event id.
        event: String,
    },
    /// Mint a development token.
    Token {
        /// The subject (user id).
        #[arg(long)]
        sub: String,
        /// The role.
        #[arg(long, value_enum, default_value = "buyer")]
        role: RoleArg,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
    /// Load the demo: the theatre and an event on sale.
    Demo {
        /// The demo event's id.
        #[arg(long, default_value = "demo-show")]
        event: String,
    },
}

fn parse_price(raw: &str) -> Result<(String, i64), String> {
    let (category, cents) = raw.split_once('=').ok_or("expected CATEGORY=CENTS")?;
    Ok((
        category.to_owned(),
        cents.parse().map_err(|_| "CENTS must be an integer")?,
    ))
}

async fn connect(settings: &Settings) -> anyhow::Result<(sqlx::PgPool, Coordinator)> {
    let db = sqlx::PgPool::connect(settings.database.url.expose_secret()).await?;
    catalog::migrate(&db).await?;
    let coordinator = Coordinator::connect(&settings.redis, settings.limits.clone()).await?;
    Ok((db, coordinator))
}

/// Imports a venue from a seat-map file.
async fn import_venue(settings: &Settings, file: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let map: SeatMap = serde_json::from_str(&text).context("not a seat map (docs/seatmap.md)")?;
    let db = sqlx::PgPool::connect(settings.database.url.expose_secret()).await?;
    catalog::migrate(&db).await?;
    match catalog::venues::create_venue(&db, &map).await? {
        VenueOutcome::Created { seats } => {
            println!("venue {} imported: {seats} seats", map.venue.id)
        }
        VenueOutcome::AlreadyExists => bail!("venue {} already exists", map.venue.id),
        VenueOutcome::Invalid(problems) => {
            for p in problems {
                eprintln!("{}: {}", p.path, p.message);
            }
            bail!("the seat map breaks the format's rules");
        }
    }
    Ok(())
}

/// Creates a draft event.
async fn create_event(
    settings: &Settings,
    draft: &EventDraft,
    owner: Option<&UserId>,
) -> anyhow::Result<()> {
    let db = sqlx::PgPool::connect(settings.database.url.expose_secret()).await?;
    catalog::migrate(&db).await?;
    let owner = owner.map(UserId::as_str);
    match catalog::events::create_event(&db, draft, owner).await? {
        EventOutcome::Done(e) => println!("event {} created ({:?})", e.id, e.status),
        EventOutcome::AlreadyExists => bail!("event {} already exists", draft.id),
        EventOutcome::NotFound => bail!("no venue {}", draft.venue_id),
        EventOutcome::Invalid(problems) => {
            for p in problems {
                eprintln!("{}: {}", p.path, p.message);
            }
            bail!("the event breaks some rules");
        }
    }
    Ok(())
}

/// A development token, refused when longer-lived than the gateway would accept.
fn token(settings: &Settings, sub: &str, role: RoleArg, ttl_secs: u64) -> anyhow::Result<String> {
    let keys = Keys::from_settings(settings)?;
    let most = settings
        .auth
        .as_ref()
        .map_or(0, |a| a.max_token_lifetime_secs);
    if ttl_secs > most {
        bail!("--ttl-secs {ttl_secs} is longer than auth.max_token_lifetime_secs ({most}): the gateway would refuse the token");
    }
    let role = match role {
        RoleArg::Gate => Role::Gate,
        RoleArg::Buyer => Role::Buyer,
        RoleArg::Organizer => Role::Organizer,
        RoleArg::Admin => Role::Admin,
    };
    keys.mint(&UserId::parse(sub)?, role, Duration::from_secs(ttl_secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr: stdout is the command's answer (JSON a script may read).
    runtime::logging::init();
    let cli = Cli::parse();
    let settings = Settings::load()?;
    match cli.command {
        Command::Generate { kind, id } => {
            let map = match kind {
                Kind::Theatre => catalog::seatmap::demo_theatre(),
                Kind::Stadium => {
                    catalog::seatmap::stadium(id.as_deref().unwrap_or("stadium"), "Stadium")
                }
            };
            println!("{}", serde_json::to_string_pretty(&map)?);
        }
        Command::ImportVenue { file } => import_venue(&settings, &file).await?,
        Command::CreateEvent {
            id,
            venue,
            title,
            category,
            starts_at,
            sale_opens_at,
            prices,
            owner,
        } => {
            let owner = owner.as_deref().map(UserId::parse).transpose()?;
            let draft = EventDraft {
                id,
                venue_id: venue,
                title,
                category,
                starts_at,
                sale_opens_at: sale_opens_at.unwrap_or_else(Utc::now),
                prices: prices.into_iter().collect::<BTreeMap<_, _>>(),
                currency: "USD".into(),
            };
            create_event(&settings, &draft, owner.as_ref()).await?;
        }
        Command::OpenSales { event } => {
            let (db, coordinator) = connect(&settings).await?;
            let id = EventId::parse(&event)?;
            match catalog::open_sales(&db, &coordinator, &id).await? {
                StatusOutcome::Changed(e) => {
                    coordinator.announce_event(&id).await;
                    println!("event {} is on sale", e.id)
                }
                StatusOutcome::NotFound => bail!("no event {event}"),
                StatusOutcome::NotAllowed(from) => {
                    bail!("cannot open sales of an event that is {from:?}")
                }
            }
        }
        Command::Token {
            sub,
            role,
            ttl_secs,
        } => {
            println!("{}", token(&settings, &sub, role, ttl_secs)?);
        }
        Command::Demo { event } => {
            let (db, coordinator) = connect(&settings).await?;
            let id = EventId::parse(&event)?;
            catalog::load_demo(&db, &coordinator, &id).await?;
            println!(
                "demo event {event} at demo-theatre is on sale (owner: {})",
                catalog::DEMO_ORGANIZER
            );
        }
    }
    Ok(())
}
