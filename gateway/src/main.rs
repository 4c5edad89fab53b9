//! `gateway`: serves the HTTP API (public listener) and the admin listener until Ctrl-C or
//! SIGTERM, letting in-flight requests finish. `gateway migrate` applies the migrations.

use clap::{Parser, Subcommand};
use settings::Settings;

runtime::global_allocator!();

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
    /// Apply the database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::logging::init();
    let settings = Settings::load()?;
    let app = gateway::App::connect(&settings).await?;
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => {
            catalog::migrate(&app.db).await?;
            let shutdown = runtime::shutdown::on_signal();
            let (public, admin, task) = gateway::serve(
                app,
                settings.http.addr,
                settings.http.admin_addr,
                shutdown.cancelled_owned(),
            )?;
            tracing::info!(%public, %admin, "gateway listening");
            task.await?;
            tracing::info!("gateway stopped; in-flight requests were completed");
        }
        Command::Migrate => catalog::migrate(&app.db).await?,
    }
    Ok(())
}
