//! Change announcements over Redis pub/sub (design document §9): after a section's availability
//! changes, `seat:update:{event}:{section}` is published; after an event's catalog data changes
//! (status, prices), `event:update:{event}`. Caches in every gateway process subscribe and
//! invalidate. A lost message costs at most a cache's own age bound: announcements never decide
//! anything, they only shorten staleness.

use fred::prelude::*;
use futures::future::join_all;

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

impl Coordinator {
    /// Announces that these sections changed. Failures are logged, never returned: the change
    /// itself has happened, and caches expire on their own.
    pub(crate) async fn announce_sections<'a>(
        &self,
        event: &EventId,
        sections: impl IntoIterator<Item = &'a SectionId>,
    ) {
        let client = self.client();
        let sends = sections.into_iter().map(|section| async move {
            let channel = keys::seat_update_channel(event, section);
            if let Err(error) = client.publish::<(), _, _>(channel, "1").await {
                tracing::warn!(%error, %event, %section, "seat update not announced");
            }
        });
        join_all(sends).await;
    }

    /// Announces that an event's catalog data changed (status, prices).
    pub async fn announce_event(&self, event: &EventId) {
        if let Err(error) = self
            .client()
            .publish::<(), _, _>(keys::event_update_channel(event), "1")
            .await
        {
            tracing::warn!(%error, %event, "event update not announced");
        }
    }
}

/// Subscribes to every announcement and calls `on_update` for each, until the returned task is
/// aborted. Re-subscribes by itself after reconnections.
pub async fn watch(
    settings: &RedisSettings,
    on_update: impl Fn(Update) + Send + Sync + 'static,
) -> Result<tokio::task::JoinHandle<()>, CoordinatorError> {
    let subscriber = crate::builder(settings)?.build_subscriber_client()?;
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
