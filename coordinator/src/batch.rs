//! Holds on one section gathered into one script call (`lua/hold_batch.lua`).
//!
//! A section's holds go to Redis one call at a time while the section is quiet: the first hold
//! finds no call in flight and is sent at once (`hold.lua`), so at low load nothing waits.
//! Holds that arrive while a call to their section is in flight are gathered; they go as one
//! `hold_batch.lua` call when that call returns, or when the oldest of them has waited
//! [`BatchSettings::window`], whichever comes first, and at most [`BatchSettings::max`] at a
//! time. Redis runs each request of a batch as a separate call would, and each caller gets its
//! own reply. A hot section then costs one call per batch, not one per hold: the calls
//! themselves (reading, parsing, answering, replicating) were most of Redis's CPU per hold.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use fred::prelude::Value;
use tokio::sync::oneshot;

use crate::protocol::HoldBatchCode;
use crate::{Coordinator, CoordinatorError};

/// How holds on one section are gathered.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// The longest a gathered hold waits for the call in flight before it is sent anyway.
    /// (tokio's timer rounds sleeps up to its 1 ms tick; the call in flight usually returns
    /// first.)
    pub window: Duration,
    /// Most holds in one call; 1 turns gathering off.
    pub max: usize,
}

type Answer = oneshot::Sender<Result<Value, CoordinatorError>>;

struct Waiting {
    args: Vec<String>,
    answer: Answer,
}

#[derive(Default)]
struct Lane {
    in_flight: usize,
    queue: Vec<Waiting>,
    timer: bool,
}

/// The lanes of every section with holds in flight.
pub(crate) struct Batcher {
    settings: BatchSettings,
    lanes: Mutex<HashMap<Vec<String>, Lane>>,
}

impl Batcher {
    pub(crate) fn new(settings: BatchSettings) -> Self {
        Self {
            settings,
            lanes: Mutex::default(),
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<String>, Lane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `hold.lua` with `args` on the section of `keys`, alone or gathered with others.
    pub(crate) async fn hold(
        coordinator: &Coordinator,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Value, CoordinatorError> {
        let this = &coordinator.batcher;
        let (answer, answered) = oneshot::channel();
        let gathered = {
            let mut lanes = this.lanes();
            let lane = lanes.entry(keys.clone()).or_default();
            if lane.in_flight > 0 && this.settings.max > 1 {
                lane.queue.push(Waiting { args, answer });
                if lane.queue.len() >= this.settings.max {
                    let batch = std::mem::take(&mut lane.queue);
                    lane.in_flight += 1;
                    tokio::spawn(Self::send(coordinator.clone(), keys.clone(), batch));
                } else if !lane.timer {
                    lane.timer = true;
                    tokio::spawn(Self::after_window(coordinator.clone(), keys.clone()));
                }
                None
            } else {
                lane.in_flight += 1;
                Some(args)
            }
        };
        let Some(args) = gathered else {
            return answered.await.unwrap_or_else(|_| {
                Err(CoordinatorError::protocol(
                    "hold_batch.lua",
                    "a batch ended without an answer",
                ))
            });
        };
        // Nothing in flight for this section: sent at once, alone.
        let sent = coordinator
            .scripts
            .hold
            .run(coordinator.client(), keys.clone(), args)
            .await;
        this.call_returned(coordinator, keys);
        sent
    }

    /// A call to the section returned: the holds gathered meanwhile go now.
    fn call_returned(&self, coordinator: &Coordinator, keys: Vec<String>) {
        let mut lanes = self.lanes();
        let Some(lane) = lanes.get_mut(&keys) else {
            return;
        };
        lane.in_flight -= 1;
        if !lane.queue.is_empty() {
            let take = lane.queue.len().min(self.settings.max);
            let batch: Vec<Waiting> = lane.queue.drain(..take).collect();
            lane.in_flight += 1;
            tokio::spawn(Self::send(coordinator.clone(), keys, batch));
        } else if lane.in_flight == 0 && !lane.timer {
            lanes.remove(&keys);
        }
    }

    async fn after_window(coordinator: Coordinator, keys: Vec<String>) {
        tokio::time::sleep(coordinator.batcher.settings.window).await;
        let batch = {
            let mut lanes = coordinator.batcher.lanes();
            let Some(lane) = lanes.get_mut(&keys) else {
                return;
            };
            lane.timer = false;
            if lane.queue.is_empty() {
                if lane.in_flight == 0 {
                    lanes.remove(&keys);
                }
                return;
            }
            let take = lane.queue.len().min(coordinator.batcher.settings.max);
            lane.in_flight += 1;
            lane.queue.drain(..take).collect::<Vec<_>>()
        };
        Self::send(coordinator, keys, batch).await;
    }

    /// Sends gathered holds as one call and answers each.
    async fn send(coordinator: Coordinator, keys: Vec<String>, batch: Vec<Waiting>) {
        let client = coordinator.client();
        if batch.len() == 1 {
            let Some(one) = batch.into_iter().next() else {
                return;
            };
            let sent = coordinator
                .scripts
                .hold
                .run(client, keys.clone(), one.args)
                .await;
            let _ = one.answer.send(sent);
        } else {
            let mut args =
                Vec::with_capacity(1 + batch.iter().map(|w| w.args.len() + 1).sum::<usize>());
            args.push(batch.len().to_string());
            for waiting in &batch {
                args.push(waiting.args.len().to_string());
                args.extend(waiting.args.iter().cloned());
            }
            let script = &coordinator.scripts.hold_batch;
            let replies = script
                .call::<HoldBatchCode>(client, keys.clone(), args)
                .await
                .and_then(|(HoldBatchCode::Answered, reply)| reply.into_answers(batch.len()));
            match replies {
                Ok(replies) => {
                    for (waiting, reply) in batch.into_iter().zip(replies) {
                        let _ = waiting.answer.send(Ok(reply));
                    }
                }
                Err(e) => {
                    for waiting in batch {
                        let _ = waiting.answer.send(Err(e.copy()));
                    }
                }
            }
        }
        coordinator.batcher.call_returned(&coordinator, keys);
    }
}
