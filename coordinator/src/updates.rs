//! Change announcements over Redis pub/sub (design document §9): after a section's availability
//! changes, `seat:update:{event}:{section}` is published; after an event's catalog data changes
//! (status, prices), `event:update:{event}`. Caches in every gateway process subscribe and
//! invalidate. A lost message costs at most a cache's own age bound: announcements never decide
//! anything, they only shorten staleness.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use fred::prelude::*;
use futures::future::join_all;
use tokio::sync::Notify;

use crate::ids::{EventId, SectionId};
use crate::{keys, Coordinator, CoordinatorError, RedisSettings};

/// Something changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A section's availability changed.
    Seats {
        /// The event.
        event: EventId,
        /// The section.
        section: SectionId,
    },
    /// An event's catalog data changed.
    Event(EventId),
    /// The durable writer settled a commit: its JSON report (see the `orders` crate).
    Order(String),
}

impl Update {
    /// Parses a channel name; `None` for channels of others.
    pub fn parse(channel: &str) -> Option<Self> {
        if let Some(rest) = channel.strip_prefix(keys::SEAT_UPDATE_PREFIX) {
            let (event, section) = rest.split_once(':')?;
            return Some(Self::Seats {
                event: EventId::parse(event).ok()?,
                section: SectionId::parse(section).ok()?,
            });
        }
        channel
            .strip_prefix(keys::EVENT_UPDATE_PREFIX)
            .and_then(|event| EventId::parse(event).ok())
            .map(Self::Event)
    }
}

/// How long a section's announcement waits for more changes of the same section. In a rush a
/// hot section changes thousands of times a second, every `PUBLISH` in a cluster is relayed to
/// every node, and the caches it serves rebuild at most every quarter of a second anyway: one
/// announcement per section per window says the same, at a fraction of the cost (rather than
/// one per hold and one per release).
pub const ANNOUNCE_COALESCE: Duration = Duration::from_millis(50);

/// Messages the subscriber can hold before this task takes them.
const SUBSCRIBER_ROOM: usize = 16_384;

/// Section announcements waiting to go out, one per channel however many changes they stand
/// for. A task per coordinator sends them; it stops when the coordinator is dropped.
#[derive(Default)]
pub(crate) struct Announcer {
    pending: Mutex<HashSet<String>>,
    wake: Notify,
    started: AtomicBool,
}

impl Announcer {
    /// Queues the channels; the first queued after a send wakes the sender.
    fn queue(self: &Arc<Self>, pool: &Pool, channels: impl IntoIterator<Item = String>) {
        let was_empty = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let was_empty = pending.is_empty();
            pending.extend(channels);
            was_empty && !pending.is_empty()
        };
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(Self::send_loop(Arc::downgrade(self), pool.clone()));
        }
        if was_empty {
            self.wake.notify_one();
        }
    }

    async fn send_loop(announcer: Weak<Self>, pool: Pool) {
        loop {
            let Some(me) = announcer.upgrade() else {
                return;
            };
            // Wakes on a queued announcement; looks now and then whether the coordinator is gone.
            let woken = tokio::time::timeout(Duration::from_secs(1), me.wake.notified()).await;
            drop(me);
            if woken.is_err() {
                continue;
            }
            tokio::time::sleep(ANNOUNCE_COALESCE).await;
            let Some(me) = announcer.upgrade() else {
                return;
            };
            let channels: Vec<String> = {
                let mut pending = me.pending.lock().unwrap_or_else(|p| p.into_inner());
                pending.drain().collect()
            };
            drop(me);
            let client = pool.next();
            join_all(channels.into_iter().map(|channel| async move {
                if let Err(e) = client.publish::<(), _, _>(&channel, "1").await {
                    tracing::warn!(error = %e, %channel, "seat update not announced");
                }
            }))
            .await;
        }
    }
}

impl Coordinator {
    /// Announces that these sections changed, within [`ANNOUNCE_COALESCE`] and together with
    /// other changes of the same sections. Never fails: the change itself has happened, and
    /// caches expire on their own.
    pub(crate) async fn announce_sections<'a>(
        &self,
        event: &EventId,
        sections: impl IntoIterator<Item = &'a SectionId>,
    ) {
        self.announcer.queue(
            &self.pool,
            sections
                .into_iter()
                .map(|section| keys::seat_update_channel(event, section)),
        );
    }

    /// Announces that an event's catalog data changed (status, prices).
    pub async fn announce_event(&self, event: &EventId) {
        if let Err(e) = self
            .client()
            .publish::<(), _, _>(keys::event_update_channel(event), "1")
            .await
        {
            tracing::warn!(error = %e, %event, "event update not announced");
        }
    }
}

/// Subscribes to every announcement and calls `on_update` for each, until the returned task is
/// aborted. Re-subscribes by itself after reconnections.
pub async fn watch(
    settings: &RedisSettings,
    on_update: impl Fn(Update) + Send + Sync + 'static,
) -> Result<tokio::task::JoinHandle<()>, CoordinatorError> {
    // Messages wait here until this task takes them; fred's default room is 32, and a burst
    // beyond it drops messages, order outcomes among them (their waiters then fall back on
    // Postgres, a poll later). Coalesced announcements arrive in bursts (every dirty section of
    // a window at once), so the room is sized for bursts: ~100 bytes a slot.
    let subscriber = crate::builder(settings)?
        .with_performance_config(|p| p.broadcast_channel_capacity = SUBSCRIBER_ROOM)
        .build_subscriber_client()?;
    subscriber.init().await?;
    let _resubscribe = subscriber.manage_subscriptions();
    let mut messages = subscriber.message_rx();
    subscriber
        .psubscribe(vec![
            format!("{}*", keys::SEAT_UPDATE_PREFIX),
            format!("{}*", keys::EVENT_UPDATE_PREFIX),
            keys::ORDER_DONE_CHANNEL.to_owned(),
        ])
        .await?;
    Ok(tokio::spawn(async move {
        // The subscriber lives as long as this task.
        let _subscriber = subscriber;
        loop {
            match messages.recv().await {
                Ok(message) if message.channel == keys::ORDER_DONE_CHANNEL => {
                    if let Some(payload) = message.value.as_string() {
                        on_update(Update::Order(payload));
                    }
                }
                Ok(message) => {
                    if let Some(update) = Update::parse(&message.channel) {
                        on_update(update);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "seat updates lagged; caches fall back on their age bound"
                    );
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }))
}
