//! Marking seats sold once their order is durable in Postgres, and repairing Redis from Postgres.

use std::collections::BTreeMap;

use fred::prelude::Value;

use crate::hold::{Hold, HoldState, Refusal, Transition};
use crate::ids::{EventId, HoldId, SeatId, SectionId, UserId};
use crate::protocol::{SellBatchCode, SellCode, SellMode, TransitionOp, UnsellCode};
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

    /// [`Coordinator::mark_sold`] for a hold the caller has just read pinned: the durable writer
    /// checks (or pins again) each job's hold before it writes the order, and need not read it
    /// again to sell it.
    pub async fn mark_read_hold_sold(&self, hold: &Hold) -> Result<SellOutcome, CoordinatorError> {
        let outcome = self
            .sell_seats(&hold.event, &hold.id, &hold.seats, SellMode::Strict)
            .await?;
        self.count_sold(hold, outcome).await
    }

    /// [`Coordinator::mark_read_hold_sold`] for several holds at once (the durable writer's
    /// batch), one outcome per hold, in order. Holds whose seats are all in one section are sold
    /// with the batch's others there, one `sell_batch.lua` call per section where each hold
    /// cost a call of its own (its seats grouped once); holds over several sections one by one,
    /// as before.
    pub async fn mark_read_holds_sold(
        &self,
        holds: &[&Hold],
    ) -> Vec<Result<SellOutcome, CoordinatorError>> {
        let mut outcomes: Vec<Option<Result<SellOutcome, CoordinatorError>>> =
            holds.iter().map(|_| None).collect();
        // (event, section) -> the holds of the batch wholly in it, with their seats.
        let mut together: BTreeMap<(EventId, SectionId), Vec<Member>> = BTreeMap::new();
        for (i, hold) in holds.iter().enumerate() {
            match self.group_by_section(&hold.event, &hold.seats).await {
                Ok(Some(Ok(groups))) if groups.len() == 1 => {
                    if let Some((section, seats)) = groups.into_iter().next() {
                        together
                            .entry((hold.event.clone(), section))
                            .or_default()
                            .push((i, seats));
                    }
                }
                // Unknown seats, several sections, no layout: `mark_read_hold_sold`, which says so.
                Ok(_) => {}
                Err(e) => outcomes[i] = Some(Err(e)),
            }
        }
        let sold =
            futures::future::join_all(together.into_iter().map(|((event, section), members)| {
                self.sell_section(event, section, members, holds)
            }))
            .await;
        let mut changed: BTreeMap<EventId, Vec<SectionId>> = BTreeMap::new();
        for (event, section, answers) in sold {
            let mut newly = false;
            for (i, answer) in answers {
                newly |= matches!(answer, Ok(SellOutcome::Sold { newly_sold }) if newly_sold > 0);
                outcomes[i] = Some(answer);
            }
            if newly {
                changed.entry(event).or_default().push(section);
            }
        }
        for (event, sections) in &changed {
            self.announce_sections(event, sections).await;
        }
        // The holds sold together are counted, and the others sold, each on its own.
        futures::future::join_all(
            holds
                .iter()
                .zip(outcomes)
                .map(|(hold, outcome)| async move {
                    match outcome {
                        Some(Ok(outcome)) => self.count_sold(hold, outcome).await,
                        Some(Err(e)) => Err(e),
                        None => self.mark_read_hold_sold(hold).await,
                    }
                }),
        )
        .await
    }

    /// One `sell_batch.lua` call for `members` (indexes into `holds`, with their seats), all in
    /// `section`: each member's outcome.
    async fn sell_section(
        &self,
        event: EventId,
        section: SectionId,
        members: Vec<Member>,
        holds: &[&Hold],
    ) -> (
        EventId,
        SectionId,
        Vec<(usize, Result<SellOutcome, CoordinatorError>)>,
    ) {
        let k = keys::section(&event, &section);
        let mut args = vec![
            SellMode::Strict.as_arg().to_owned(),
            "checkout".to_owned(),
            members.len().to_string(),
        ];
        for (i, seats) in &members {
            args.push((seats.len() + 1).to_string());
            args.push(holds[*i].id.to_string());
            args.extend(seats.iter().map(ToString::to_string));
        }
        let script = &self.scripts.sell_batch;
        let replies = script
            .call::<SellBatchCode>(
                self.client(),
                vec![
                    k.inv, k.held, k.holder, k.sold, k.blocked, k.ver, k.audit, k.reserved,
                ],
                args,
            )
            .await
            .and_then(|(SellBatchCode::Answered, reply)| reply.into_answers(members.len()));
        let answers = match replies {
            Ok(replies) => members
                .into_iter()
                .zip(replies)
                .map(|((i, _), value)| (i, sell_reply(value)))
                .collect(),
            Err(e) => members
                .into_iter()
                .map(|(i, _)| (i, Err(e.copy())))
                .collect(),
        };
        (event, section, answers)
    }

    /// After a strict sale of `hold`'s seats: the seats count against the buyer's limit for
    /// good, in the same step (the record marked sold).
    async fn count_sold(
        &self,
        hold: &Hold,
        outcome: SellOutcome,
    ) -> Result<SellOutcome, CoordinatorError> {
        if let SellOutcome::Sold { .. } = outcome {
            let sold_to = Some((&hold.event, &hold.user));
            match self
                .transition(&hold.id, TransitionOp::Sold, Caller::System, 0, sold_to)
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
            let value = self
                .scripts
                .sell
                .run(
                    client,
                    vec![
                        k.inv, k.held, k.holder, k.sold, k.blocked, k.ver, k.audit, k.reserved,
                    ],
                    args,
                )
                .await?;
            match sell_reply(value)? {
                SellOutcome::Sold { newly_sold: newly } => {
                    if newly > 0 {
                        changed.push(section);
                    }
                    newly_sold += newly;
                    continue;
                }
                other => refusal = Some(other),
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

/// A hold of a batch sold with others on its section: its index in the batch, and its seats.
type Member = (usize, Vec<SeatId>);

/// One `sell.lua` reply (alone, or one hold's inside `sell_batch.lua`'s) as its outcome.
fn sell_reply(value: Value) -> Result<SellOutcome, CoordinatorError> {
    let script = "sell.lua";
    let (code, reply) = crate::scripts::typed::<SellCode>(script, value)?;
    let seats = || seat_ids(script, reply.strings_from(1)?);
    Ok(match code {
        SellCode::Sold => SellOutcome::Sold {
            newly_sold: reply.int(1)? as u64,
        },
        SellCode::SoldToAnother => SellOutcome::SoldToAnother(seats()?),
        SellCode::UnknownSeats => SellOutcome::UnknownSeats(seats()?),
        SellCode::NotHeld => SellOutcome::SeatsNotHeld(seats()?),
    })
}
