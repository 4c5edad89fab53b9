//! Marking seats sold once their order is durable in Postgres, and repairing Redis from Postgres.

use crate::hold::{Hold, HoldState, Refusal, Transition};
use crate::ids::{EventId, HoldId, SeatId, UserId};
use crate::protocol::{SellCode, SellMode, TransitionOp, UnsellCode};
use crate::{keys, seat_ids, Caller, Coordinator, CoordinatorError};

/// What selling came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SellOutcome {
    /// Every seat is sold to the hold; `newly_sold` by this call (0 on a replay).
    Sold {
        /// Seats whose state changed.
        newly_sold: u64,
    },
    /// No such hold.
    NotFound,
    /// The hold cannot be sold in its state (released, still being placed).
    WrongState(HoldState),
    /// Strict mode: these seats are not live-held by the hold (expired or lost). Seats of other
    /// sections may already be sold: Postgres is the truth and the reconciler repairs Redis.
    SeatsNotHeld(Vec<SeatId>),
    /// These seats are sold to ANOTHER hold: an attempted oversell, refused in their section.
    /// Sections are applied one by one, so seats of sections before it may already be sold.
    SoldToAnother(Vec<SeatId>),
    /// Seats the event does not know.
    UnknownSeats(Vec<SeatId>),
}

impl Coordinator {
    /// Sells a hold's seats (checkout, after the order is committed in Postgres). The hold must
    /// be pinned (see [`Coordinator::pin`]) and every seat still held by it.
    pub async fn mark_sold(&self, hold_id: &HoldId) -> Result<SellOutcome, CoordinatorError> {
        let hold = match self
            .transition(hold_id, TransitionOp::Read, Caller::System, 0, None)
            .await?
        {
            Transition::Done(h) | Transition::Replay(h) => h,
            Transition::NotFound | Transition::NotOwner => return Ok(SellOutcome::NotFound),
            Transition::Refused(_, h) => return Ok(SellOutcome::WrongState(h.state)),
        };
        // Only a pinned hold is sold: a pinned hold cannot be released, so a buyer's cancel can
        // never race the sale and leave seats sold to a released hold.
        match hold.state {
            HoldState::Pinned | HoldState::Sold | HoldState::Expired => {}
            other => return Ok(SellOutcome::WrongState(other)),
        }
        self.mark_read_hold_sold(&hold).await
    }

    /// [`Coordinator::mark_sold`] for a hold the caller has just pinned, and so read: the
    /// durable writer pins each job's hold before it writes the order, and need not read it
    /// again to sell it.
    pub async fn mark_read_hold_sold(&self, hold: &Hold) -> Result<SellOutcome, CoordinatorError> {
        let hold_id = &hold.id;
        let outcome = self
            .sell_seats(&hold.event, hold_id, &hold.seats, SellMode::Strict)
            .await?;
        if let SellOutcome::Sold { .. } = outcome {
            // The seats count against the buyer's limit for good, in the same step.
            let sold_to = Some((&hold.event, &hold.user));
            match self
                .transition(hold_id, TransitionOp::Sold, Caller::System, 0, sold_to)
                .await?
            {
                Transition::Done(_) | Transition::Replay(_) => {}
                Transition::Refused(Refusal::WrongState, h) => {
                    return Ok(SellOutcome::WrongState(h.state))
                }
                _ => return Ok(SellOutcome::NotFound),
            }
        }
        Ok(outcome)
    }

    /// [`Coordinator::repair_sold`], and the seats counted against `user`'s ticket limit for
    /// good ([`Coordinator::sold_quota`]): a sale Postgres has, told to Redis when the hold's
    /// record cannot say it (the durable writer after a long write, the reconciler after a
    /// failover). `None`: a buyer id Postgres holds but the coordinator refuses; the seats are
    /// still marked sold.
    pub async fn repair_sale(
        &self,
        event: &EventId,
        hold_id: &HoldId,
        user: Option<&UserId>,
        seats: &[SeatId],
    ) -> Result<SellOutcome, CoordinatorError> {
        let counted = async {
            match user {
                Some(user) => self.sold_quota(event, user, hold_id, seats.len()).await,
                None => Ok(()),
            }
        };
        let (sold, counted) = tokio::join!(self.repair_sold(event, hold_id, seats), counted);
        counted?;
        sold
    }

    /// Makes Redis say these seats are sold to `hold_id`, whatever holds or blocks are on them,
    /// because Postgres says so (reconciler). Never takes a seat sold to another hold.
    pub async fn repair_sold(
        &self,
        event: &EventId,
        hold_id: &HoldId,
        seats: &[SeatId],
    ) -> Result<SellOutcome, CoordinatorError> {
        self.sell_seats(event, hold_id, seats, SellMode::Repair)
            .await
    }

    async fn sell_seats(
        &self,
        event: &EventId,
        hold_id: &HoldId,
        seats: &[SeatId],
        mode: SellMode,
    ) -> Result<SellOutcome, CoordinatorError> {
        let groups = match self.group_by_section(event, seats).await? {
            None => return Ok(SellOutcome::NotFound),
            Some(Err(unknown)) => return Ok(SellOutcome::UnknownSeats(unknown)),
            Some(Ok(groups)) => groups,
        };
        let client = self.client();
        let mut newly_sold = 0;
        let mut changed = Vec::new();
        let mut refusal = None;
        for (section, seats) in groups {
            let k = keys::section(event, &section);
            let mut args = Vec::with_capacity(seats.len() + 3);
            args.push(hold_id.to_string());
            args.push(mode.as_arg().to_owned());
            // Strict sales are checkout's; repairs are the reconciler's.
            args.push(
                match mode {
                    SellMode::Strict => "checkout",
                    SellMode::Repair => "system:reconciler",
                }
                .to_owned(),
            );
            args.extend(seats.iter().map(ToString::to_string));
            let script = &self.scripts.sell;
            let (code, reply) = script
                .call::<SellCode>(
                    client,
                    vec![
                        k.inv, k.held, k.holder, k.sold, k.blocked, k.ver, k.audit, k.reserved,
                    ],
                    args,
                )
                .await?;
            let refused =
                |make: fn(Vec<SeatId>) -> SellOutcome| -> Result<SellOutcome, CoordinatorError> {
                    Ok(make(seat_ids(script.name, reply.strings_from(1)?)?))
                };
            match code {
                SellCode::Sold => {
                    let newly = reply.int(1)? as u64;
                    if newly > 0 {
                        changed.push(section);
                    }
                    newly_sold += newly;
                    continue;
                }
                SellCode::SoldToAnother => refusal = Some(refused(SellOutcome::SoldToAnother)?),
                SellCode::UnknownSeats => refusal = Some(refused(SellOutcome::UnknownSeats)?),
                SellCode::NotHeld => refusal = Some(refused(SellOutcome::SeatsNotHeld)?),
            }
            break;
        }
        self.announce_sections(event, &changed).await;
        if let Some(refusal) = refusal {
            return Ok(refusal);
        }
        Ok(SellOutcome::Sold { newly_sold })
    }
}

impl Coordinator {
    /// Returns seats that `hold_id` bought to sale after its order was refunded (Postgres first,
    /// then this). Only seats sold to that hold are touched; idempotent. Returns how many seats
    /// are for sale again.
    pub async fn unsell(
        &self,
        event: &EventId,
        hold_id: &HoldId,
        seats: &[SeatId],
    ) -> Result<u64, CoordinatorError> {
        let groups = match self.group_by_section(event, seats).await? {
            None => return Ok(0),
            Some(Err(_)) => return Ok(0),
            Some(Ok(groups)) => groups,
        };
        let mut freed = 0;
        let mut changed = Vec::new();
        for (section, seats) in &groups {
            let k = keys::section(event, section);
            let script = &self.scripts.unsell;
            let (UnsellCode::Unsold, reply) = script
                .call::<UnsellCode>(
                    self.client(),
                    vec![k.sold, k.ver, k.wl, k.reserved, k.audit],
                    std::iter::once(hold_id.to_string())
                        .chain(seats.iter().map(ToString::to_string))
                        .collect(),
                )
                .await?;
            let n = reply.int(1)? as u64;
            if n > 0 {
                changed.push(section.clone());
            }
            freed += n;
        }
        self.announce_sections(event, &changed).await;
        Ok(freed)
    }
}
