//! An event's waiting room (`lua/queue.lua`): join, poll, done, status. Admission is a token
//! bucket per event advanced lazily from Redis `TIME`; in lottery mode, whoever joined before the
//! opening gets a place drawn from a seed published (as its hash) in advance.

use fred::prelude::*;
use serde::Serialize;

use crate::ids::{EventId, UserId};
use crate::protocol::{QueueCode, QueueOp, QuotaCode, QuotaOp};
use crate::{keys, Coordinator, CoordinatorError};

/// How buyers get to the seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdmissionMode {
    /// No queue.
    Open,
    /// First come, first served.
    Queue,
    /// Joined before the opening: a random (auditable) place; later: behind, in order.
    Lottery,
}

/// A waiting room's settings, as Redis keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// The mode (`Open` removes the room's settings).
    pub mode: AdmissionMode,
    /// Admissions per second.
    pub rate_per_sec: f64,
    /// Most admissions at once (the bucket's size; also how many get in at the opening).
    pub burst: u64,
    /// How long an admission lasts (the shopping window), ms.
    pub window_ms: u64,
    /// The sale's opening (admission starts; the lottery's pre-queue closes), unix ms.
    pub opens_at_ms: i64,
    /// The lottery's seed (secret until the draw; empty for a plain queue).
    pub seed: String,
    /// At most this many buyers shopping at once per seat still free (0: admission is not tied
    /// to the inventory).
    pub shoppers_per_free_seat: f64,
}

/// The share of its rate a room admits at now, 0 to 1: the caller's back-pressure (the gateway
/// paces admission by how fast checkout answers, see `gateway::pace`). Tokens accrue at
/// `rate * pace` between two calls, whoever makes them.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Pace(f64);

impl Pace {
    /// The organizer's rate, unslowed.
    pub const FULL: Self = Self(1.0);

    /// Clamped to 0..=1; anything not a number is [`Self::FULL`] (never pause a room by mistake).
    pub fn new(share: f64) -> Self {
        if share.is_nan() {
            Self::FULL
        } else {
            Self(share.clamp(0.0, 1.0))
        }
    }

    /// The share.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// In line.
    Waiting,
    /// Joined the lottery before the opening; the place is drawn at the opening.
    PreQueue,
    /// May shop (within its window).
    Admitted,
    /// Its buyer finished checkout.
    Done,
}

/// A ticket's (or, for `status`, the room's) state.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketView {
    /// Its status.
    pub status: TicketStatus,
    /// Its place in the admission order (0 in the pre-queue).
    pub position: u64,
    /// Everyone up to this place has been admitted.
    pub admitted_upto: u64,
    /// Places handed out so far.
    pub joined: u64,
    /// When it was first seen admitted, unix ms (0 if not admitted).
    pub admitted_at_ms: i64,
    /// Redis `TIME`, unix ms.
    pub now_ms: i64,
    /// The ticket id.
    pub ticket: String,
    /// Admissions per second now: the room's rate times the caller's [`Pace`].
    pub rate_per_sec: f64,
    /// The shopping window, ms.
    pub window_ms: i64,
    /// The opening, unix ms.
    pub opens_at_ms: i64,
    /// Set on the call that first saw this ticket admitted: how long its buyer waited, ms (from
    /// joining, or from the opening for a lottery pre-queue ticket).
    pub waited_ms: Option<i64>,
    /// Buyers shopping now (admitted within the last window, minus those who finished): only
    /// for `status`.
    pub shopping: Option<u64>,
}

impl TicketView {
    /// Places ahead of this ticket.
    pub fn ahead(&self) -> u64 {
        self.position.saturating_sub(self.admitted_upto + 1)
    }

    /// When its admission ends (0 if not admitted).
    pub fn admission_ends_ms(&self) -> i64 {
        if self.admitted_at_ms == 0 {
            0
        } else {
            self.admitted_at_ms + self.window_ms
        }
    }

    /// Seconds until this ticket is likely admitted at the configured rate.
    pub fn expected_wait_secs(&self) -> u64 {
        let until_open = ((self.opens_at_ms - self.now_ms).max(0) / 1000) as u64;
        if self.status != TicketStatus::Waiting && self.status != TicketStatus::PreQueue {
            return 0;
        }
        let behind = self.position.saturating_sub(self.admitted_upto) as f64;
        until_open + (behind / self.rate_per_sec.max(0.001)).ceil() as u64
    }
}

/// What a queue call found.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueOutcome {
    /// The ticket (or the room).
    Ticket(TicketView),
    /// The event has no waiting room.
    NoQueue,
    /// No such ticket (or, for done, the buyer has none).
    UnknownTicket,
    /// Another buyer's ticket.
    NotOwner,
}

impl Coordinator {
    /// Sets (or, for [`AdmissionMode::Open`], removes) an event's waiting room. A lottery's seed
    /// never changes once set: its hash may already be published.
    pub async fn configure_queue(
        &self,
        event: &EventId,
        config: &QueueConfig,
    ) -> Result<(), CoordinatorError> {
        let k = keys::queue(event);
        let client = self.client();
        if config.mode == AdmissionMode::Open {
            let _: i64 = client.del(k.cfg).await?;
            return Ok(());
        }
        let mode = match config.mode {
            AdmissionMode::Lottery => "lottery",
            _ => "queue",
        };
        let _: () = client
            .hset(
                &k.cfg,
                vec![
                    ("mode", mode.to_owned()),
                    ("rate", config.rate_per_sec.to_string()),
                    ("burst", config.burst.to_string()),
                    ("window_ms", config.window_ms.to_string()),
                    ("opens_ms", config.opens_at_ms.to_string()),
                    ("per_free_seat", config.shoppers_per_free_seat.to_string()),
                ],
            )
            .await?;
        if !config.seed.is_empty() {
            let _: bool = client.hsetnx(&k.cfg, "seed", config.seed.clone()).await?;
        }
        Ok(())
    }

    async fn queue_op(
        &self,
        event: &EventId,
        op: QueueOp,
        user: Option<&UserId>,
        ticket: &str,
        free: Option<u64>,
        pace: Pace,
    ) -> Result<QueueOutcome, CoordinatorError> {
        let k = keys::queue(event);
        let script = &self.scripts.queue;
        let (code, reply) = script
            .call::<QueueCode>(
                self.client(),
                vec![
                    k.cfg, k.users, k.tickets, k.pre, k.state, k.admitted, k.owners, k.marks,
                ],
                vec![
                    op.as_arg().to_owned(),
                    user.map(ToString::to_string).unwrap_or_default(),
                    ticket.to_owned(),
                    free.map_or_else(|| "-1".to_owned(), |f| f.to_string()),
                    pace.get().to_string(),
                ],
            )
            .await?;
        let status = match code {
            QueueCode::NoQueue => return Ok(QueueOutcome::NoQueue),
            QueueCode::UnknownTicket => return Ok(QueueOutcome::UnknownTicket),
            QueueCode::NotOwner => return Ok(QueueOutcome::NotOwner),
            QueueCode::Waiting => TicketStatus::Waiting,
            QueueCode::PreQueue => TicketStatus::PreQueue,
            QueueCode::Admitted => TicketStatus::Admitted,
            QueueCode::Done => TicketStatus::Done,
        };
        Ok(QueueOutcome::Ticket(TicketView {
            status,
            position: reply.int(1)? as u64,
            admitted_upto: reply.int(2)? as u64,
            joined: reply.int(3)? as u64,
            admitted_at_ms: reply.int(4)?,
            now_ms: reply.int(5)?,
            ticket: reply.string(6)?,
            rate_per_sec: reply.string(7)?.parse().unwrap_or(1.0),
            window_ms: reply.int(8)?,
            opens_at_ms: reply.int(9)?,
            waited_ms: Some(reply.int(10)?).filter(|w| *w >= 0),
            shopping: u64::try_from(reply.int(11)?).ok(),
        }))
    }

    /// The buyer joins (or finds their ticket again). `free`: seats free now, when known (the
    /// admission is tied to it, see [`QueueConfig::shoppers_per_free_seat`]; `None` keeps the
    /// last figure told). `pace`: see [`Pace`]; every call passes it, since every call runs the
    /// bucket.
    pub async fn queue_join(
        &self,
        event: &EventId,
        user: &UserId,
        free: Option<u64>,
        pace: Pace,
    ) -> Result<QueueOutcome, CoordinatorError> {
        let fresh = uuid::Uuid::new_v4().to_string();
        self.queue_op(event, QueueOp::Join, Some(user), &fresh, free, pace)
            .await
    }

    /// Where the buyer's ticket stands (the buyer must own it). `free` and `pace` as for
    /// [`Self::queue_join`].
    pub async fn queue_poll(
        &self,
        event: &EventId,
        user: &UserId,
        ticket: &str,
        free: Option<u64>,
        pace: Pace,
    ) -> Result<QueueOutcome, CoordinatorError> {
        self.queue_op(event, QueueOp::Poll, Some(user), ticket, free, pace)
            .await
    }

    /// The buyer finished checkout: they no longer count as shopping (see `lua/queue.lua`).
    pub async fn queue_done(
        &self,
        event: &EventId,
        user: &UserId,
        pace: Pace,
    ) -> Result<QueueOutcome, CoordinatorError> {
        self.queue_op(event, QueueOp::Done, Some(user), "", None, pace)
            .await
    }

    /// Where the buyer's own ticket stands, found by the buyer: `Done` once their checkout
    /// finished (an admission is good for one checkout). `UnknownTicket`: they have none.
    pub async fn queue_check(
        &self,
        event: &EventId,
        user: &UserId,
        pace: Pace,
    ) -> Result<QueueOutcome, CoordinatorError> {
        self.queue_op(event, QueueOp::Check, Some(user), "", None, pace)
            .await
    }

    /// The room as a whole (`position` and `ticket` empty); its `rate_per_sec` is the rate
    /// admission runs at with this `pace`.
    pub async fn queue_status(
        &self,
        event: &EventId,
        free: Option<u64>,
        pace: Pace,
    ) -> Result<QueueOutcome, CoordinatorError> {
        self.queue_op(event, QueueOp::Status, None, "", free, pace)
            .await
    }

    /// The lottery's pre-queue in joining order (published with the seed, so anyone can
    /// recompute the draw).
    pub async fn lottery_tickets(&self, event: &EventId) -> Result<Vec<String>, CoordinatorError> {
        Ok(self.client().lrange(keys::queue(event).pre, 0, -1).await?)
    }

    /// Whether the lottery has been drawn.
    pub async fn lottery_drawn(&self, event: &EventId) -> Result<bool, CoordinatorError> {
        let drawn: Option<String> = self
            .client()
            .hget(keys::queue(event).state, "drawn")
            .await?;
        Ok(drawn.as_deref() == Some("1"))
    }
}

/// The buyer's ticket count when Postgres says what it is and the hold's record may not (see
/// `lua/quota.lua`). Everyday changes of the count happen in the hold's own scripts.
impl Coordinator {
    async fn quota_op(
        &self,
        event: &EventId,
        user: &UserId,
        op: QuotaOp,
        hold: &crate::HoldId,
        seats: usize,
    ) -> Result<(), CoordinatorError> {
        let [live_counts, live_seats] = keys::counted(hold);
        let script = &self.scripts.quota;
        let (QuotaCode::Done, _) = script
            .call::<QuotaCode>(
                self.client(),
                vec![live_counts, live_seats, keys::bought(event, user)],
                vec![op.as_arg().to_owned(), hold.to_string(), seats.to_string()],
            )
            .await?;
        Ok(())
    }

    /// The hold was bought: its `seats` count for good. Idempotent, and written whether or not
    /// the count was there (a count lost in a failover is restored from the order).
    pub async fn sold_quota(
        &self,
        event: &EventId,
        user: &UserId,
        hold: &crate::HoldId,
        seats: usize,
    ) -> Result<(), CoordinatorError> {
        self.quota_op(event, user, QuotaOp::Sold, hold, seats).await
    }

    /// The hold's order was refunded: its seats no longer count.
    pub async fn release_quota(
        &self,
        event: &EventId,
        user: &UserId,
        hold: &crate::HoldId,
    ) -> Result<(), CoordinatorError> {
        self.quota_op(event, user, QuotaOp::Release, hold, 0).await
    }
}
