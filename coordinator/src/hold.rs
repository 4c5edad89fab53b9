//! Holding seats: all or nothing, across sections, idempotent per client reservation id.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::config::Limits;
use crate::ids::{ClientReservationId, EventId, HoldId, SeatId, SectionId, UserId};
use crate::protocol::{
    BeginCode, HoldCode, SectionMode, SettleCode, SettleOutcome, TransitionCode, TransitionOp,
};
use crate::reply::Reply;
use crate::{keys, seat_ids, Caller, Coordinator, CoordinatorError};

/// Why a hold request was refused before touching Redis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHold {
    /// `seat_ids` was empty.
    #[error("no seats requested")]
    NoSeats,
    /// More seats than `max_seats_per_hold`.
    #[error("{requested} seats requested; at most {max} per hold")]
    TooManySeats {
        /// The bound.
        max: usize,
        /// What was asked.
        requested: usize,
    },
    /// The same seat twice in one request.
    #[error("seat {0} is requested twice")]
    DuplicateSeat(SeatId),
    /// TTL outside the configured range.
    #[error("ttl_seconds must be between {min} and {max} (got {requested})")]
    TtlOutOfRange {
        /// Shortest allowed.
        min: u64,
        /// Longest allowed.
        max: u64,
        /// What was asked.
        requested: u64,
    },
}

/// A validated hold request. Build it with [`HoldRequest::new`].
#[derive(Debug, Clone)]
pub struct HoldRequest {
    event: EventId,
    user: UserId,
    client_id: ClientReservationId,
    seats: Vec<SeatId>,
    ttl: Duration,
    quote: String,
    ticket_limit: u64,
    mode: SectionMode,
}

/// Checks a TTL against the configured range; `None` takes the default.
pub fn check_ttl(ttl_secs: Option<u64>, limits: &Limits) -> Result<Duration, InvalidHold> {
    let requested = ttl_secs.unwrap_or(limits.default_ttl_secs);
    if !(limits.min_ttl_secs..=limits.max_ttl_secs).contains(&requested) {
        return Err(InvalidHold::TtlOutOfRange {
            min: limits.min_ttl_secs,
            max: limits.max_ttl_secs,
            requested,
        });
    }
    Ok(Duration::from_secs(requested))
}

impl HoldRequest {
    /// Validates the request against the bounds. Seats keep the client's order for display; the
    /// canonical (sorted) order is used for locking and idempotency.
    pub fn new(
        event: EventId,
        user: UserId,
        client_id: ClientReservationId,
        seats: Vec<SeatId>,
        ttl_secs: Option<u64>,
        limits: &Limits,
    ) -> Result<Self, InvalidHold> {
        if seats.is_empty() {
            return Err(InvalidHold::NoSeats);
        }
        if seats.len() > limits.max_seats_per_hold {
            return Err(InvalidHold::TooManySeats {
                max: limits.max_seats_per_hold,
                requested: seats.len(),
            });
        }
        let mut seen = BTreeSet::new();
        for seat in &seats {
            if !seen.insert(seat) {
                return Err(InvalidHold::DuplicateSeat(seat.clone()));
            }
        }
        let ttl = check_ttl(ttl_secs, limits)?;
        Ok(Self {
            event,
            user,
            client_id,
            seats,
            ttl,
            quote: String::new(),
            ticket_limit: 0,
            mode: SectionMode::Take,
        })
    }

    /// The event's tickets per buyer: the hold is refused ([`HoldOutcome::OverLimit`]) when the
    /// buyer's held, pinned and bought seats for the event would pass it. 0 (the default): no
    /// limit, and the hold is not counted (the gateway always passes one).
    pub fn with_ticket_limit(mut self, limit: u64) -> Self {
        self.ticket_limit = limit;
        self
    }

    /// Opaque text kept with the hold, e.g. the price quoted for it (not part of the
    /// idempotency fingerprint: a replay after a price change is still a replay).
    pub fn with_quote(mut self, quote: impl Into<String>) -> Self {
        self.quote = quote.into();
        self
    }

    /// A waiting-list offer: the hold takes only seats set aside for the event's waiting list
    /// (`lua/hold.lua` mode "offer"), for `ttl`, the list's offer time rather than a buyer's
    /// choice (still capped by the hold's lifetime).
    pub fn as_offer(mut self, ttl: Duration) -> Self {
        self.mode = SectionMode::Offer;
        self.ttl = ttl;
        self
    }

    /// The seats asked for.
    pub fn seats(&self) -> &[SeatId] {
        &self.seats
    }

    /// The event.
    pub fn hold_event(&self) -> EventId {
        self.event.clone()
    }

    /// The buyer.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// How long the hold is asked for.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The hold id this request maps to.
    pub fn hold_id(&self) -> HoldId {
        HoldId::derive(&self.event, &self.user, &self.client_id)
    }

    fn fingerprint(&self) -> String {
        let mut sorted: Vec<&str> = self.seats.iter().map(SeatId::as_str).collect();
        sorted.sort_unstable();
        format!("{}|ttl={}", sorted.join(" "), self.ttl.as_millis())
    }
}

/// A hold's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Being placed right now.
    Pending,
    /// Holding its seats until `expires_at_ms`.
    Held,
    /// A payment is in flight; it cannot be released and will not expire before `expires_at_ms`.
    Pinned,
    /// Its seats are sold.
    Sold,
    /// Released by its buyer or the system.
    Released,
    /// Held or pinned, and its expiry has passed: the seats are free again.
    Expired,
}

impl HoldState {
    pub(crate) fn parse(script: &'static str, raw: &str) -> Result<Self, CoordinatorError> {
        Ok(match raw {
            // A refused attempt rolling back reads as still pending.
            "pending" | "aborting" => Self::Pending,
            "held" => Self::Held,
            "pinned" => Self::Pinned,
            "sold" => Self::Sold,
            "released" => Self::Released,
            "expired" => Self::Expired,
            other => {
                return Err(CoordinatorError::protocol(
                    script,
                    format!("unknown hold state {other:?}"),
                ))
            }
        })
    }
}

/// A hold as its record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// Its id.
    pub id: HoldId,
    /// The event.
    pub event: EventId,
    /// The buyer.
    pub user: UserId,
    /// Its seats, sorted.
    pub seats: Vec<SeatId>,
    /// Its state, with `Expired` computed against Redis `TIME`.
    pub state: HoldState,
    /// Creation, unix ms.
    pub created_at_ms: i64,
    /// Expiry, unix ms.
    pub expires_at_ms: i64,
    /// No extension goes past this, unix ms.
    pub cap_at_ms: i64,
    /// Redis `TIME` when this was read, unix ms.
    pub now_ms: i64,
    /// What the caller stored with the hold ([`HoldRequest::with_quote`]); empty if nothing.
    pub quote: String,
}

/// A seat's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    /// Free to hold.
    Free,
    /// In a live hold.
    Held,
    /// Sold.
    Sold,
    /// Blocked by the organizer.
    Blocked,
    /// Set aside for the event's waiting list: offered to the next buyer on it, not to the
    /// open sale.
    Reserved,
}

/// A seat that could not be taken, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    /// The seat.
    pub seat: SeatId,
    /// What it is now.
    pub state: SeatState,
}

/// What a hold request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Every seat is held.
    Created(Hold),
    /// The same request was already answered: here is that hold, as it is now.
    Replayed(Hold),
    /// Some seats are held, sold or blocked; nothing was held.
    Unavailable(Vec<Unavailable>),
    /// The event is not open in the coordinator.
    UnknownEvent,
    /// These seats are not part of the event; nothing was held.
    UnknownSeats(Vec<SeatId>),
    /// The client reservation id was used before with other seats or TTL.
    IdempotencyConflict,
    /// The same request is being processed right now; retry after this many ms.
    InProgress {
        /// Suggested wait.
        retry_after_ms: u64,
    },
    /// The buyer would pass the event's ticket limit; nothing was held.
    OverLimit {
        /// The limit.
        limit: u64,
        /// Seats the buyer has counted for the event now.
        counted: u64,
    },
}

pub(crate) fn parse_unavailable(
    script: &'static str,
    pairs: Vec<String>,
) -> Result<Vec<Unavailable>, CoordinatorError> {
    pairs
        .chunks(2)
        .map(|pair| {
            let [seat, why] = pair else {
                return Err(CoordinatorError::protocol(script, "odd seat/why list"));
            };
            let state = match why.as_str() {
                "held" => SeatState::Held,
                "sold" => SeatState::Sold,
                "blocked" => SeatState::Blocked,
                "reserved" => SeatState::Reserved,
                // Only for an offer: the seat is free to anyone, so not the list's to offer.
                "free" => SeatState::Free,
                other => {
                    return Err(CoordinatorError::protocol(
                        script,
                        format!("unknown reason {other:?}"),
                    ))
                }
            };
            let seat = SeatId::parse(seat)
                .map_err(|e| CoordinatorError::protocol(script, e.to_string()))?;
            Ok(Unavailable { seat, state })
        })
        .collect()
}

impl Coordinator {
    /// Places a hold. See the module doc of the crate for the cross-section protocol.
    pub async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome, CoordinatorError> {
        let groups = match self
            .group_by_section(&request.event, &request.seats)
            .await?
        {
            None => return Ok(HoldOutcome::UnknownEvent),
            Some(Err(unknown)) => return Ok(HoldOutcome::UnknownSeats(unknown)),
            Some(Ok(groups)) => groups,
        };
        let hold_id = request.hold_id();
        // The record and the buyer's ticket count: one slot (the buyer's tag in the hold id).
        let [live_counts, live_seats] = keys::counted(&hold_id);
        let record = [
            keys::hold(&hold_id),
            live_counts,
            live_seats,
            keys::bought(&request.event, &request.user),
        ];
        let client = self.client();

        let mut sorted_seats = request.seats.clone();
        sorted_seats.sort();
        let seats_arg = sorted_seats
            .iter()
            .map(SeatId::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let sections_arg = groups
            .keys()
            .map(SectionId::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        // Names this attempt, so a retry that takes over after the attempt window can neither be
        // settled nor rolled back by this (slow) one.
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        // One section: the record is written held at once and the section's call is the rest
        // of the hold (hold_begin.lua, mode "direct"): 2 calls. Several: settled after all.
        let direct = groups.len() == 1;
        let begin = &self.scripts.hold_begin;
        let mut args = vec![
            request.event.to_string(),
            request.user.to_string(),
            request.fingerprint(),
            request.ttl.as_millis().to_string(),
            (self.limits.max_hold_lifetime_secs * 1000).to_string(),
            self.limits.attempt_window_ms.to_string(),
            seats_arg,
            sections_arg,
            attempt.clone(),
            request.quote.clone(),
            hold_id.to_string(),
            request.ticket_limit.to_string(),
        ];
        if direct {
            args.push("direct".to_owned());
            args.push((self.limits.record_retention_secs * 1000).to_string());
        }
        let begun = begin.call::<BeginCode>(client, record.to_vec(), args).await;
        let (code, reply) = match begun {
            Ok(begun) => begun,
            // The script may have run before the reply was lost: the record may be this
            // attempt's, pending, with no seats taken yet.
            Err(e) => {
                self.roll_back_later(&request.event, &record, &attempt, &hold_id, &[]);
                return Err(e);
            }
        };
        let hold = |state, expires_at_ms, cap_at_ms, created_at_ms, now_ms, quote| Hold {
            id: hold_id,
            event: request.event.clone(),
            user: request.user.clone(),
            seats: sorted_seats.clone(),
            state,
            created_at_ms,
            expires_at_ms,
            cap_at_ms,
            now_ms,
            quote,
        };
        let replayed = |reply: &Reply| -> Result<Hold, CoordinatorError> {
            let state = HoldState::parse(begin.name, &reply.string(1)?)?;
            let (expires, cap, created, now) =
                (reply.int(2)?, reply.int(3)?, reply.int(4)?, reply.int(5)?);
            let state = match state {
                HoldState::Held | HoldState::Pinned if expires <= now => HoldState::Expired,
                other => other,
            };
            let quote = if reply.len() > 6 {
                reply.string(6)?
            } else {
                String::new()
            };
            Ok(hold(state, expires, cap, created, now, quote))
        };
        let half_window = (self.limits.attempt_window_ms / 2) as i64;
        let (expires_at_ms, cap_at_ms, now_ms) = match code {
            BeginCode::Started => (reply.int(1)?, reply.int(2)?, reply.int(3)?),
            BeginCode::Replayed => return Ok(HoldOutcome::Replayed(replayed(&reply)?)),
            // A direct hold replayed while its original may still be in flight: confirmed by
            // its section, and adopted so the original can no longer roll it back.
            BeginCode::Confirm => {
                let earlier = replayed(&reply)?;
                let original = reply.string(7)?;
                let (section, seats) = groups.iter().next().ok_or_else(|| {
                    CoordinatorError::protocol(begin.name, "a direct hold without a section")
                })?;
                let confirmed = self
                    .hold_section(
                        client,
                        &request.event,
                        section,
                        &hold_id,
                        earlier.expires_at_ms,
                        request.user.as_str(),
                        seats,
                        SectionMode::Confirm,
                        0,
                    )
                    .await?;
                if confirmed.is_none()
                    && self
                        .settle(
                            client,
                            &record,
                            &hold_id,
                            SettleOutcome::Adopt,
                            &original,
                            &attempt,
                        )
                        .await?
                {
                    return Ok(HoldOutcome::Replayed(earlier));
                }
                return Ok(HoldOutcome::InProgress {
                    retry_after_ms: 100,
                });
            }
            // A direct hold replayed after its attempt window: this call owns it now and takes
            // its section again, with the hold's own clocks.
            BeginCode::TakenOver => {
                let earlier = replayed(&reply)?;
                let deadline = reply.int(7)?;
                let (section, seats) = groups.iter().next().ok_or_else(|| {
                    CoordinatorError::protocol(begin.name, "a direct hold without a section")
                })?;
                let failure = match self
                    .hold_section(
                        client,
                        &request.event,
                        section,
                        &hold_id,
                        earlier.expires_at_ms,
                        request.user.as_str(),
                        seats,
                        request.mode,
                        deadline,
                    )
                    .await
                {
                    Ok(None) => return Ok(HoldOutcome::Replayed(earlier)),
                    Ok(Some(refusal)) => Ok(refusal),
                    Err(e) => Err(e),
                };
                let touched: Vec<(&SectionId, &Vec<SeatId>)> = match &failure {
                    Ok(_) => Vec::new(),
                    Err(_) => vec![(section, seats)],
                };
                return self
                    .finish_failed(
                        client, request, &record, &attempt, &hold_id, &touched, failure,
                    )
                    .await;
            }
            BeginCode::Conflict => return Ok(HoldOutcome::IdempotencyConflict),
            BeginCode::InProgress => {
                return Ok(HoldOutcome::InProgress {
                    retry_after_ms: reply.int(1)?.max(1) as u64,
                })
            }
            BeginCode::OverLimit => {
                return Ok(HoldOutcome::OverLimit {
                    limit: request.ticket_limit,
                    counted: reply.int(1)?.max(0) as u64,
                })
            }
        };
        let deadline = if direct { now_ms + half_window } else { 0 };

        // Sections this attempt may have written to: a section whose call failed is included,
        // since the script may have run before the connection dropped.
        let mut touched: Vec<(&SectionId, &Vec<SeatId>)> = Vec::new();
        let mut failure: Option<Result<HoldOutcome, CoordinatorError>> = None;
        for (section, seats) in &groups {
            match self
                .hold_section(
                    client,
                    &request.event,
                    section,
                    &hold_id,
                    expires_at_ms,
                    request.user.as_str(),
                    seats,
                    request.mode,
                    deadline,
                )
                .await
            {
                // Direct: the hold is complete with its one section (nothing to settle).
                Ok(None) if direct => {
                    self.announce_sections(&request.event, groups.keys()).await;
                    return Ok(HoldOutcome::Created(hold(
                        HoldState::Held,
                        expires_at_ms,
                        cap_at_ms,
                        now_ms,
                        now_ms,
                        request.quote.clone(),
                    )));
                }
                Ok(None) => touched.push((section, seats)),
                Ok(Some(outcome)) => {
                    failure = Some(Ok(outcome));
                    break;
                }
                Err(e) => {
                    touched.push((section, seats));
                    failure = Some(Err(e));
                    break;
                }
            }
        }
        let failure = match failure {
            None => match self
                .settle(client, &record, &hold_id, SettleOutcome::Held, &attempt, "")
                .await
            {
                Ok(true) => {
                    self.announce_sections(&request.event, groups.keys()).await;
                    return Ok(HoldOutcome::Created(hold(
                        HoldState::Held,
                        expires_at_ms,
                        cap_at_ms,
                        now_ms,
                        now_ms,
                        request.quote.clone(),
                    )));
                }
                // A retry took the attempt over (this one was slower than the attempt window):
                // the seats are its now; it answers for the hold.
                Ok(false) => {
                    return Ok(HoldOutcome::InProgress {
                        retry_after_ms: 100,
                    })
                }
                Err(e) => Err(e),
            },
            Some(failure) => failure,
        };
        self.finish_failed(
            client, request, &record, &attempt, &hold_id, &touched, failure,
        )
        .await
    }

    /// Rolls a refused or failed attempt back and returns its answer. If Redis fails here too
    /// the caller gets the error (a 503, never a business answer), and the rollback goes on in
    /// the background.
    #[allow(clippy::too_many_arguments)] // the attempt's parts, one each
    pub(crate) async fn finish_failed(
        &self,
        client: &fred::prelude::Client,
        request: &HoldRequest,
        record: &[String; 4],
        attempt: &str,
        hold_id: &HoldId,
        touched: &[(&SectionId, &Vec<SeatId>)],
        failure: Result<HoldOutcome, CoordinatorError>,
    ) -> Result<HoldOutcome, CoordinatorError> {
        if let Err(e) = self
            .roll_back(client, &request.event, record, attempt, hold_id, touched)
            .await
        {
            self.roll_back_later(&request.event, record, attempt, hold_id, touched);
            return Err(e);
        }
        failure
    }

    /// A Redis failure ended this attempt (its caller is told 503), but the record still names
    /// it as pending until the attempt window ends, and a replay in that window would be told
    /// 409 `request_in_progress` for a request that is not in progress at all. So the rollback
    /// is retried in the background, with backoff, until it goes through or the window ends:
    /// once Redis answers again, the record is gone and the replay starts afresh. Safe against
    /// a replay that took over meanwhile: a rollback obeys only the attempt that owns the
    /// record. Should it never go through, the seats free themselves at their expiry and the
    /// record is taken over after the window, as before.
    pub(crate) fn roll_back_later(
        &self,
        event: &EventId,
        record: &[String; 4],
        attempt: &str,
        hold_id: &HoldId,
        touched: &[(&SectionId, &Vec<SeatId>)],
    ) {
        let this = self.clone();
        let (event, record, attempt, hold_id) =
            (event.clone(), record.clone(), attempt.to_owned(), *hold_id);
        let touched: Vec<(SectionId, Vec<SeatId>)> = touched
            .iter()
            .map(|(section, seats)| ((*section).clone(), (*seats).clone()))
            .collect();
        let until =
            std::time::Instant::now() + Duration::from_millis(self.limits.attempt_window_ms);
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(50);
            while std::time::Instant::now() < until {
                tokio::time::sleep(pause).await;
                let touched: Vec<(&SectionId, &Vec<SeatId>)> = touched
                    .iter()
                    .map(|(section, seats)| (section, seats))
                    .collect();
                let client = this.client();
                match this
                    .roll_back(client, &event, &record, &attempt, &hold_id, &touched)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(hold = %hold_id, "failed hold attempt rolled back after Redis answered again");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(hold = %hold_id, error = %e, "failed hold attempt not rolled back yet");
                    }
                }
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        });
    }

    pub(crate) async fn roll_back(
        &self,
        client: &fred::prelude::Client,
        event: &EventId,
        record: &[String; 4],
        attempt: &str,
        hold_id: &HoldId,
        touched: &[(&SectionId, &Vec<SeatId>)],
    ) -> Result<(), CoordinatorError> {
        if touched.is_empty() {
            // Nothing was written to any section (a refusal writes nothing): no other attempt
            // needs holding off while seats are released, so the record goes in one step.
            self.settle(client, record, hold_id, SettleOutcome::Abort, attempt, "")
                .await?;
            return Ok(());
        }
        if !self
            .settle(
                client,
                record,
                hold_id,
                SettleOutcome::Aborting,
                attempt,
                "",
            )
            .await?
        {
            // Taken over: the seats belong to the attempt that owns the record now.
            return Ok(());
        }
        for (section, seats) in touched.iter().rev() {
            self.release_section(client, event, section, hold_id, "system:rollback", seats)
                .await?;
        }
        self.settle(client, record, hold_id, SettleOutcome::Abort, attempt, "")
            .await?;
        Ok(())
    }

    /// Holds one section's seats; `Some(outcome)` is a refusal.
    #[allow(clippy::too_many_arguments)] // the script's arguments, one each
    async fn hold_section(
        &self,
        client: &fred::prelude::Client,
        event: &EventId,
        section: &SectionId,
        hold_id: &HoldId,
        expires_at_ms: i64,
        actor: &str,
        seats: &[SeatId],
        mode: SectionMode,
        deadline_ms: i64,
    ) -> Result<Option<HoldOutcome>, CoordinatorError> {
        let k = keys::section(event, section);
        let mut args = Vec::with_capacity(seats.len() + 5);
        args.push(hold_id.to_string());
        args.push(expires_at_ms.to_string());
        args.push(actor.to_owned());
        args.push(mode.as_arg().to_owned());
        args.push(deadline_ms.to_string());
        args.extend(seats.iter().map(ToString::to_string));
        let script = &self.scripts.hold;
        // Gathered with other holds of the section when a call to it is in flight (batch.rs).
        let _ = client;
        let (code, reply) = crate::scripts::typed::<HoldCode>(
            script.name,
            crate::batch::Batcher::hold(
                self,
                vec![
                    k.inv, k.held, k.holder, k.sold, k.blocked, k.ver, k.audit, k.wl, k.reserved,
                ],
                args,
            )
            .await?,
        )?;
        Ok(match code {
            HoldCode::Held => None,
            HoldCode::Unavailable => Some(HoldOutcome::Unavailable(parse_unavailable(
                script.name,
                reply.strings_from(1)?,
            )?)),
            HoldCode::UnknownSeats => Some(HoldOutcome::UnknownSeats(seat_ids(
                script.name,
                reply.strings_from(1)?,
            )?)),
            // The attempt outlived its own expiry (a very slow call): nothing can be held.
            HoldCode::ExpiryPast => Some(HoldOutcome::InProgress { retry_after_ms: 0 }),
            // Layout knows the seat but the section's inventory is not loaded (opening underway).
            HoldCode::NoInventory => Some(HoldOutcome::UnknownSeats(seats.to_vec())),
            // Past the attempt's deadline (a retry may own it now), or not confirmed.
            HoldCode::NotNow => Some(HoldOutcome::InProgress {
                retry_after_ms: 100,
            }),
        })
    }

    /// Runs `hold_settle.lua` on `record` (the hold's keys as `hold_begin.lua` takes them);
    /// `false` when the record is not this attempt's any more.
    pub(crate) async fn settle(
        &self,
        client: &fred::prelude::Client,
        record: &[String; 4],
        hold_id: &HoldId,
        outcome: SettleOutcome,
        attempt: &str,
        new_attempt: &str,
    ) -> Result<bool, CoordinatorError> {
        self.settle_seats(client, record, hold_id, outcome, attempt, new_attempt, "")
            .await
    }

    /// [`Self::settle`], recording the seats the sections chose (a general-admission hold).
    #[allow(clippy::too_many_arguments)] // the script's arguments, one each
    pub(crate) async fn settle_seats(
        &self,
        client: &fred::prelude::Client,
        record: &[String; 4],
        hold_id: &HoldId,
        outcome: SettleOutcome,
        attempt: &str,
        new_attempt: &str,
        seats: &str,
    ) -> Result<bool, CoordinatorError> {
        let script = &self.scripts.hold_settle;
        let retain_ms = self.limits.record_retention_secs * 1000;
        let (code, _) = script
            .call::<SettleCode>(
                client,
                record[..3].to_vec(),
                vec![
                    outcome.as_arg().to_owned(),
                    retain_ms.to_string(),
                    attempt.to_owned(),
                    hold_id.to_string(),
                    new_attempt.to_owned(),
                    seats.to_owned(),
                ],
            )
            .await?;
        Ok(code == SettleCode::Done)
    }

    /// Reads a hold. A buyer may only read their own.
    pub async fn read_hold(
        &self,
        hold_id: &HoldId,
        caller: Caller<'_>,
    ) -> Result<ReadOutcome, CoordinatorError> {
        Ok(
            match self
                .transition(hold_id, TransitionOp::Read, caller, 0, None)
                .await?
            {
                Transition::Done(hold) | Transition::Replay(hold) => ReadOutcome::Found(hold),
                Transition::NotFound => ReadOutcome::NotFound,
                Transition::NotOwner => ReadOutcome::NotOwner,
                Transition::Refused(..) => {
                    return Err(CoordinatorError::protocol(
                        "hold_transition.lua",
                        "read refused",
                    ))
                }
            },
        )
    }

    /// Runs `hold_transition.lua`. `sold_to` is the hold's event and buyer, for a sale (the seats
    /// then count against the buyer's limit for good, `keys::bought`).
    pub(crate) async fn transition(
        &self,
        hold_id: &HoldId,
        op: TransitionOp,
        caller: Caller<'_>,
        param_ms: u64,
        sold_to: Option<(&EventId, &UserId)>,
    ) -> Result<Transition, CoordinatorError> {
        let script = &self.scripts.hold_transition;
        let mut names = vec![keys::hold(hold_id)];
        // A read moves no count: its keys are not named (reads are the commonest transition).
        if op != TransitionOp::Read {
            names.extend(keys::counted(hold_id));
            names.extend(sold_to.map(|(event, user)| keys::bought(event, user)));
        }
        let (code, reply) = script
            .call::<TransitionCode>(
                self.client(),
                names,
                vec![
                    op.as_arg().to_owned(),
                    caller.as_arg(),
                    param_ms.to_string(),
                    hold_id.to_string(),
                ],
            )
            .await?;
        match code {
            TransitionCode::NotFound => return Ok(Transition::NotFound),
            TransitionCode::NotOwner => return Ok(Transition::NotOwner),
            _ => {}
        }
        if reply.len() < 9 {
            return Err(reply.unknown_code());
        }
        let parse = |s: String, script| {
            EventId::parse(&s).map_err(|e| CoordinatorError::protocol(script, e.to_string()))
        };
        let seats_raw = reply.string(8)?;
        let hold = Hold {
            id: *hold_id,
            state: HoldState::parse(script.name, &reply.string(1)?)?,
            expires_at_ms: reply.int(2)?,
            cap_at_ms: reply.int(3)?,
            created_at_ms: reply.int(4)?,
            now_ms: reply.int(5)?,
            event: parse(reply.string(6)?, script.name)?,
            user: UserId::parse(&reply.string(7)?)
                .map_err(|e| CoordinatorError::protocol(script.name, e.to_string()))?,
            seats: seat_ids(
                script.name,
                seats_raw
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )?,
            quote: if reply.len() > 9 {
                reply.string(9)?
            } else {
                String::new()
            },
        };
        Ok(match code {
            TransitionCode::Done => Transition::Done(hold),
            TransitionCode::Replay => Transition::Replay(hold),
            TransitionCode::WrongState => Transition::Refused(Refusal::WrongState, hold),
            TransitionCode::Expired => Transition::Refused(Refusal::Expired, hold),
            TransitionCode::PastCap => Transition::Refused(Refusal::PastCap, hold),
            TransitionCode::NotFound => Transition::NotFound,
            TransitionCode::NotOwner => Transition::NotOwner,
        })
    }

    /// The hold's seats grouped by section, using the event's layout.
    pub(crate) async fn hold_groups(
        &self,
        hold: &Hold,
    ) -> Result<BTreeMap<SectionId, Vec<SeatId>>, CoordinatorError> {
        match self.group_by_section(&hold.event, &hold.seats).await? {
            Some(Ok(groups)) => Ok(groups),
            _ => Err(CoordinatorError::protocol(
                "layout",
                format!(
                    "hold {} names seats its event's layout does not know",
                    hold.id
                ),
            )),
        }
    }
}

/// What reading a hold found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The hold.
    Found(Hold),
    /// No such hold (or forgotten after its retention).
    NotFound,
    /// Another buyer's hold.
    NotOwner,
}

#[derive(Debug)]
pub(crate) enum Refusal {
    WrongState,
    Expired,
    PastCap,
}

#[derive(Debug)]
pub(crate) enum Transition {
    Done(Hold),
    Replay(Hold),
    NotFound,
    NotOwner,
    Refused(Refusal, Hold),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(seats: &[&str], ttl: Option<u64>) -> Result<HoldRequest, InvalidHold> {
        HoldRequest::new(
            EventId::parse("e").expect("valid"),
            UserId::parse("u").expect("valid"),
            ClientReservationId::parse("c").expect("valid"),
            seats
                .iter()
                .map(|s| SeatId::parse(s).expect("valid"))
                .collect(),
            ttl,
            &Limits::default(),
        )
    }

    #[test]
    fn bounds_are_enforced() {
        assert_eq!(req(&[], None).err(), Some(InvalidHold::NoSeats));
        let eleven: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
        let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
        assert!(matches!(
            req(&eleven, None),
            Err(InvalidHold::TooManySeats {
                max: 10,
                requested: 11
            })
        ));
        assert!(matches!(
            req(&["a", "b", "a"], None),
            Err(InvalidHold::DuplicateSeat(_))
        ));
        assert!(matches!(
            req(&["a"], Some(59)),
            Err(InvalidHold::TtlOutOfRange { .. })
        ));
        assert!(matches!(
            req(&["a"], Some(901)),
            Err(InvalidHold::TtlOutOfRange { .. })
        ));
        assert!(req(&["a"], Some(60)).is_ok());
        assert!(req(&["a"], None).is_ok());
    }

    #[test]
    fn fingerprint_ignores_seat_order() {
        let a = req(&["a", "b"], None).expect("valid");
        let b = req(&["b", "a"], None).expect("valid");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.hold_id(), b.hold_id());
        assert_ne!(
            a.fingerprint(),
            req(&["a", "b"], Some(120)).expect("valid").fingerprint()
        );
    }
}
