//! The waiting list's offer loop: every pass, each event with a live list gets
//! [`orders::waitlist::offer_pass`] (offers settled, sections told who waits, set-aside seats
//! offered in list order). A pass that fails is logged and done again by the next one: offers
//! are holds with ids derived from their entries, so a repeated offer finds its hold.

use std::sync::Arc;
use std::time::Duration;

use orders::waitlist::{offer_pass, OfferPass, OfferSettings};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// One pass over every event with a live list.
pub async fn offer_once(
    svc: &orders::Services,
    metrics: &Metrics,
    offer_ttl: Duration,
) -> Result<OfferPass, orders::OrdersError> {
    let settings = OfferSettings {
        offer_ttl,
        limits: svc.coordinator.limits().clone(),
    };
    let mut total = OfferPass::default();
    for event in orders::waitlist::live_events(&svc.db).await? {
        total += offer_pass(&svc.db, &svc.coordinator, &event, &settings).await?;
    }
    metrics.waitlist_waiting.set(total.waiting as i64);
    for (outcome, n) in [
        ("offered", total.offered),
        ("taken", total.taken),
        ("lapsed", total.lapsed),
    ] {
        metrics
            .waitlist_offers_total
            .with_label_values(&[outcome])
            .inc_by(n);
    }
    Ok(total)
}

/// Runs [`offer_once`] every `every` until `shutdown`.
pub async fn offer_loop(
    svc: orders::Services,
    metrics: Arc<Metrics>,
    every: Duration,
    offer_ttl: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let pass = tokio::select! {
            _ = shutdown.cancelled() => return,
            pass = offer_once(&svc, &metrics, offer_ttl) => pass,
        };
        let outcome = match pass {
            Ok(_) => "waitlist_ok",
            Err(e) => {
                tracing::error!(error = %e, "waiting-list offer pass failed");
                "waitlist_error"
            }
        };
        metrics.passes_total.with_label_values(&[outcome]).inc();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
