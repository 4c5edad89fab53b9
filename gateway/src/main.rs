//! `gateway`: serves the HTTP API. `gateway demo` loads the demo venue and event.

use clap::{Parser, Subcommand};
use settings::Settings;

#[derive(Parser)]
#[command(version, about = "Seat allocation gateway")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply the database migrations.
    Migrate,
    /// Migrate, write the 2,000-seat demo theatre and an event on sale, and open it in Redis.
    Demo {
        /// The demo event's id.
        #[arg(long, default_value = "demo-show")]
        event: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    settings::init_tracing();
    let settings = Settings::load()?;
    let app = gateway::App::connect(&settings).await?;
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => {
            catalog::migrate(&app.db).await?;
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let (public, admin, task) =
                gateway::serve(app, settings.http.addr, settings.http.admin_addr, shutdown)?;
            tracing::info!(%public, %admin, "gateway listening");
            task.await?;
        }
        Command::Migrate => catalog::migrate(&app.db).await?,
        Command::Demo { event } => {
            catalog::migrate(&app.db).await?;
            let id = coordinator::EventId::parse(&event)?;
            catalog::load_demo(&app.db, &app.coordinator, &id).await?;
            println!("demo event {event} at demo-theatre is on sale");
        }
    }
    Ok(())
}
