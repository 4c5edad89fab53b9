//! `reconciler`: the daemon, with `/healthz` and `/metrics` on its own listener.

use std::sync::Arc;

use secrecy::ExposeSecret;

/// mimalloc rather than glibc's malloc: a request allocates many short-lived boxed futures and
/// buffers, and glibc's slow path (`_int_malloc`, `unlink_chunk`) was a tenth of the gateway's
/// CPU samples in a checkout storm (perf). Not yet compared head to head on a quiet machine;
/// mimalloc's own zeroing (`_mi_page_malloc_zero`) shows in the hold storm's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    settings::init_tracing();
    let settings = settings::Settings::load()?;
    let coordinator = Arc::new(
        coordinator::Coordinator::connect(&settings.redis, settings.limits.clone()).await?,
    );
    let db = catalog::pool::options(8)
        .connect(settings.database.url.expose_secret())
        .await?;
    catalog::migrate(&db).await?;
    let payments = orders::provider(&settings.payments, &db)?;
    let metrics = Arc::new(reconciler::Metrics::new()?);

    let routes = reconciler::routes(metrics.clone(), db.clone(), coordinator.clone());
    let (addr, server) = warp::serve(routes).try_bind_ephemeral(settings.reconciler.addr)?;
    tracing::info!(%addr, "reconciler listening");
    tokio::spawn(server);

    // Unique per process: the consumer group tells writers apart by it.
    let consumer = format!(
        "writer-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    reconciler::run(
        orders::Services {
            db,
            coordinator,
            payments,
        },
        metrics,
        reconciler::Config::from_settings(&settings.reconciler, consumer),
        shutdown_signal(),
    )
    .await;
    Ok(())
}

/// Ctrl-C or SIGTERM (what Kubernetes and systemd send): the durable writer finishes the batch
/// it is in (10 s at most; a batch cut short is rolled back and taken over by another writer
/// after `writer_stale_after_ms`), the other loops stop at once.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
