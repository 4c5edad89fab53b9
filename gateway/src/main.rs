//! `gateway`: serves the HTTP API (public listener) and the admin listener until Ctrl-C or
//! SIGTERM, letting in-flight requests finish. `gateway migrate` applies the migrations.

use clap::{Parser, Subcommand};
use settings::Settings;

/// mimalloc rather than glibc's malloc: a request allocates many short-lived boxed futures and
/// buffers, and glibc's slow path (`_int_malloc`, `unlink_chunk`) was a tenth of the gateway's
/// CPU samples in a checkout storm (perf). Not yet compared head to head on a quiet machine;
/// mimalloc's own zeroing (`_mi_page_malloc_zero`) shows in the hold storm's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    settings::init_tracing();
    let settings = Settings::load()?;
    let app = gateway::App::connect(&settings).await?;
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => {
            catalog::migrate(&app.db).await?;
            let (public, admin, task) = gateway::serve(
                app,
                settings.http.addr,
                settings.http.admin_addr,
                shutdown_signal(),
            )?;
            tracing::info!(%public, %admin, "gateway listening");
            task.await?;
            tracing::info!("gateway stopped; in-flight requests were completed");
        }
        Command::Migrate => catalog::migrate(&app.db).await?,
    }
    Ok(())
}
