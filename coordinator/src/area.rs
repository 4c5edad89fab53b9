//! General-admission areas: a standing floor or an unreserved block, sold by quantity.
//!
//! An area of capacity C is opened as S shard sections `ga.<area>.<i>` (each its own slot, so a
//! hot floor spreads over the primaries), holding C anonymous places between them
//! (`ga.<area>.<i>-<n>`, see [`area_inventory`]). A hold by quantity takes any free places of one
//! shard with room (`lua/hold_area.lua`), trying the shards from one chosen by the hold id. Once
//! held, places are seats: released, extended, pinned, sold and audited by the seat scripts, and
//! Postgres sells each at most once, so no more than C can be sold.
//!
//! A hold here costs 3 calls when the first shard has room (the record is opened pending, the
//! shard picks the places, the record is settled with them: the record must name the places,
//! which are only known after the shard chose them), and one more per full shard tried.

use std::time::Duration;

use crate::config::Limits;
use crate::hold::{check_ttl, Hold, HoldState, InvalidHold};
use crate::ids::{ClientReservationId, EventId, HoldId, SeatId, SectionId, UserId};
use crate::open::SectionInventory;
use crate::protocol::{BeginCode, HoldAreaCode, SettleOutcome};
use crate::{keys, seat_ids, Coordinator, CoordinatorError};

/// The shard sections of an area (`ga.<area>.<i>`).
pub fn shard_section(area: &SectionId, shard: usize) -> SectionId {
    SectionId::parse(&format!("ga.{area}.{shard}"))
        .unwrap_or_else(|e| unreachable!("an area id makes a valid shard id: {e}"))
}

/// The area a shard section belongs to, `None` for a section with seats.
pub fn area_of(section: &SectionId) -> Option<SectionId> {
    let rest = section.as_str().strip_prefix("ga.")?;
    let (area, shard) = rest.rsplit_once('.')?;
    shard.parse::<usize>().ok()?;
    SectionId::parse(area).ok()
}

/// The inventory of an area of `capacity` places over `shards` shard sections, the places
/// spread evenly (the first shards take one more when it does not divide).
pub fn area_inventory(area: &SectionId, capacity: usize, shards: usize) -> Vec<SectionInventory> {
    let shards = shards.clamp(1, capacity.max(1));
    (0..shards)
        .map(|i| {
            let section = shard_section(area, i);
            let n = capacity / shards + usize::from(i < capacity % shards);
            SectionInventory {
                seats: (1..=n)
                    .map(|p| {
                        SeatId::parse(&format!("{section}-{p}"))
                            .unwrap_or_else(|e| unreachable!("a place id is valid: {e}"))
                    })
                    .collect(),
                section,
                sold: Default::default(),
                blocked: Default::default(),
            }
        })
        .collect()
}

/// A validated hold by quantity on an area.
#[derive(Debug, Clone)]
pub struct AreaHoldRequest {
    event: EventId,
    user: UserId,
    client_id: ClientReservationId,
    area: SectionId,
    quantity: usize,
    ttl: Duration,
    quote: String,
    ticket_limit: u64,
}

impl AreaHoldRequest {
    /// Validates the quantity against the per-hold bound and the TTL against its range.
    pub fn new(
        event: EventId,
        user: UserId,
        client_id: ClientReservationId,
        area: SectionId,
        quantity: usize,
        ttl_secs: Option<u64>,
        limits: &Limits,
    ) -> Result<Self, InvalidHold> {
        if quantity == 0 {
            return Err(InvalidHold::NoSeats);
        }
        if quantity > limits.max_seats_per_hold {
            return Err(InvalidHold::TooManySeats {
                max: limits.max_seats_per_hold,
                requested: quantity,
            });
        }
        let ttl = check_ttl(ttl_secs, limits)?;
        Ok(Self {
            event,
            user,
            client_id,
            area,
            quantity,
            ttl,
            quote: String::new(),
            ticket_limit: 0,
        })
    }

    /// The event's tickets per buyer (see [`crate::hold::HoldRequest::with_ticket_limit`]).
    pub fn with_ticket_limit(mut self, limit: u64) -> Self {
        self.ticket_limit = limit;
        self
    }

    /// The price quoted, kept with the hold.
    pub fn with_quote(mut self, quote: impl Into<String>) -> Self {
        self.quote = quote.into();
        self
    }

    /// The hold id this request maps to (the same derivation as a seat hold's).
    pub fn hold_id(&self) -> HoldId {
        HoldId::derive(&self.event, &self.user, &self.client_id)
    }

    fn fingerprint(&self) -> String {
        format!(
            "area={} quantity={}|ttl={}",
            self.area,
            self.quantity,
            self.ttl.as_millis()
        )
    }
}

/// What a hold by quantity came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AreaHoldOutcome {
    /// The places are held (the hold's seats).
    Created(Hold),
    /// The same request was answered before: that hold, as it is now.
    Replayed(Hold),
    /// Not enough places free in any shard; nothing held. `free`: the places free in the area
    /// when the shards were asked (a hold takes its places from one shard).
    NotEnough {
        /// Free places over the shards tried.
        free: u64,
    },
    /// The event has no such area open.
    UnknownArea,
    /// The client reservation id was used for another request.
    IdempotencyConflict,
    /// The same request is being processed; retry after this many ms.
    InProgress {
        /// Suggested wait.
        retry_after_ms: u64,
    },
    /// The buyer would pass the event's ticket limit.
    OverLimit {
        /// The limit.
        limit: u64,
        /// Seats the buyer has counted for the event now.
        counted: u64,
    },
}

impl Coordinator {
    /// The capacity of each area of an event, by area: `None` when the event is not open.
    pub async fn areas(
        &self,
        event: &EventId,
    ) -> Result<Option<Vec<(SectionId, Vec<SectionId>)>>, CoordinatorError> {
        let Some(layout) = self.sections_of(event).await? else {
            return Ok(None);
        };
        let mut areas: Vec<(SectionId, Vec<SectionId>)> = Vec::new();
        for section in &layout.sections {
            if let Some(area) = area_of(section) {
                match areas.iter_mut().find(|(a, _)| *a == area) {
                    Some((_, shards)) => shards.push(section.clone()),
                    None => areas.push((area, vec![section.clone()])),
                }
            }
        }
        Ok(Some(areas))
    }

    /// Holds `quantity` places of an area, all from one shard.
    pub async fn hold_area(
        &self,
        request: &AreaHoldRequest,
    ) -> Result<AreaHoldOutcome, CoordinatorError> {
        let Some(areas) = self.areas(&request.event).await? else {
            return Ok(AreaHoldOutcome::UnknownArea);
        };
        let Some((_, mut shards)) = areas.into_iter().find(|(a, _)| *a == request.area) else {
            return Ok(AreaHoldOutcome::UnknownArea);
        };
        shards.sort();
        let hold_id = request.hold_id();
        let [live_counts, live_seats] = keys::counted(&hold_id);
        let record = [
            keys::hold(&hold_id),
            live_counts,
            live_seats,
            keys::bought(&request.event, &request.user),
        ];
        let client = self.client();
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        // The record counts `quantity` seats against the limit before the places are known:
        // one word per place to come.
        let placeholder = vec![request.area.as_str(); request.quantity].join(" ");
        let sections_arg = shards
            .iter()
            .map(SectionId::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let begin = &self.scripts.hold_begin;
        let begun = begin
            .call::<BeginCode>(
                client,
                record.to_vec(),
                vec![
                    request.event.to_string(),
                    request.user.to_string(),
                    request.fingerprint(),
                    request.ttl.as_millis().to_string(),
                    (self.limits.max_hold_lifetime_secs * 1000).to_string(),
                    self.limits.attempt_window_ms.to_string(),
                    placeholder,
                    sections_arg,
                    attempt.clone(),
                    request.quote.clone(),
                    hold_id.to_string(),
                    request.ticket_limit.to_string(),
                ],
            )
            .await;
        let (code, reply) = match begun {
            Ok(begun) => begun,
            Err(e) => {
                self.roll_back_later(&request.event, &record, &attempt, &hold_id, &[]);
                return Err(e);
            }
        };
        let (expires_at_ms, cap_at_ms, now_ms) = match code {
            BeginCode::Started => (reply.int(1)?, reply.int(2)?, reply.int(3)?),
            BeginCode::Replayed | BeginCode::Confirm | BeginCode::TakenOver => {
                // A record opened for these places: read it back as a hold.
                return Ok(
                    match self.read_hold(&hold_id, crate::Caller::System).await? {
                        crate::hold::ReadOutcome::Found(hold) => AreaHoldOutcome::Replayed(hold),
                        _ => AreaHoldOutcome::InProgress {
                            retry_after_ms: 100,
                        },
                    },
                );
            }
            BeginCode::Conflict => return Ok(AreaHoldOutcome::IdempotencyConflict),
            BeginCode::InProgress => {
                return Ok(AreaHoldOutcome::InProgress {
                    retry_after_ms: reply.int(1)?.max(1) as u64,
                })
            }
            BeginCode::OverLimit => {
                return Ok(AreaHoldOutcome::OverLimit {
                    limit: request.ticket_limit,
                    counted: reply.int(1)?.max(0) as u64,
                })
            }
        };

        // From a shard chosen by the hold id, so buyers spread over the shards.
        let start = (hold_id.tag() as usize) % shards.len();
        let mut free = 0u64;
        let mut failure: Option<Result<AreaHoldOutcome, CoordinatorError>> = None;
        let mut touched: Option<SectionId> = None;
        let mut taken: Option<(SectionId, Vec<SeatId>)> = None;
        for i in 0..shards.len() {
            let shard = &shards[(start + i) % shards.len()];
            let k = keys::section(&request.event, shard);
            let script = &self.scripts.hold_area;
            let called = script
                .call::<HoldAreaCode>(
                    client,
                    vec![k.inv, k.held, k.holder, k.sold, k.blocked, k.ver, k.audit],
                    vec![
                        hold_id.to_string(),
                        expires_at_ms.to_string(),
                        request.user.to_string(),
                        "0".to_owned(),
                        request.quantity.to_string(),
                    ],
                )
                .await;
            let (code, reply) = match called {
                Ok(called) => called,
                Err(e) => {
                    touched = Some(shard.clone());
                    failure = Some(Err(e));
                    break;
                }
            };
            match code {
                HoldAreaCode::Held => {
                    taken = Some((
                        shard.clone(),
                        seat_ids(script.name, reply.strings_from(3)?)?,
                    ));
                    break;
                }
                HoldAreaCode::NotEnough | HoldAreaCode::NoInventory => {
                    if code == HoldAreaCode::NotEnough {
                        free += reply.int(1)?.max(0) as u64;
                    }
                }
                HoldAreaCode::ExpiryPast | HoldAreaCode::NotNow => {
                    failure = Some(Ok(AreaHoldOutcome::InProgress {
                        retry_after_ms: 100,
                    }));
                    break;
                }
            }
        }
        if let Some((shard, mut places)) = taken {
            places.sort();
            let list = places
                .iter()
                .map(SeatId::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            let settled = self
                .settle_seats(
                    client,
                    &record,
                    &hold_id,
                    SettleOutcome::Held,
                    &attempt,
                    "",
                    &list,
                )
                .await;
            match settled {
                Ok(true) => {
                    self.announce_sections(&request.event, [&shard]).await;
                    return Ok(AreaHoldOutcome::Created(Hold {
                        id: hold_id,
                        event: request.event.clone(),
                        user: request.user.clone(),
                        seats: places,
                        state: HoldState::Held,
                        created_at_ms: now_ms,
                        expires_at_ms,
                        cap_at_ms,
                        now_ms,
                        quote: request.quote.clone(),
                    }));
                }
                Ok(false) => {
                    return Ok(AreaHoldOutcome::InProgress {
                        retry_after_ms: 100,
                    })
                }
                Err(e) => {
                    return self
                        .area_roll_back(
                            request,
                            &record,
                            &attempt,
                            &hold_id,
                            Some(shard),
                            places,
                            Err(e),
                        )
                        .await;
                }
            }
        }
        let failure = failure.unwrap_or(Ok(AreaHoldOutcome::NotEnough { free }));
        self.area_roll_back(
            request,
            &record,
            &attempt,
            &hold_id,
            touched,
            Vec::new(),
            failure,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)] // the attempt's parts, one each
    async fn area_roll_back(
        &self,
        request: &AreaHoldRequest,
        record: &[String; 4],
        attempt: &str,
        hold_id: &HoldId,
        touched: Option<SectionId>,
        seats: Vec<SeatId>,
        failure: Result<AreaHoldOutcome, CoordinatorError>,
    ) -> Result<AreaHoldOutcome, CoordinatorError> {
        // A shard whose call failed may have taken places the attempt does not know: they
        // stay held under this hold id until their expiry (see lua/hold_area.lua).
        let touched: Vec<(SectionId, Vec<SeatId>)> =
            touched.into_iter().map(|s| (s, seats.clone())).collect();
        let refs: Vec<(&SectionId, &Vec<SeatId>)> = touched.iter().map(|(s, p)| (s, p)).collect();
        let client = self.client();
        if let Err(e) = self
            .roll_back(client, &request.event, record, attempt, hold_id, &refs)
            .await
        {
            self.roll_back_later(&request.event, record, attempt, hold_id, &refs);
            return Err(e);
        }
        failure
    }
}
