//! `reconciler`: the daemon, with `/healthz` and `/metrics` on its own listener.

use std::sync::Arc;

use secrecy::ExposeSecret;

runtime::global_allocator!();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::logging::init();
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
    // Ctrl-C or SIGTERM: the durable writer finishes the batch it is in (10 s at most; a batch
    // cut short is rolled back and taken over by another writer after `writer_stale_after_ms`),
    // the other loops stop at once.
    reconciler::run(
        orders::Services {
            db,
            coordinator,
            payments,
        },
        metrics,
        reconciler::Config::from_settings(&settings.reconciler, consumer),
        runtime::shutdown::on_signal(),
    )
    .await;
    Ok(())
}
