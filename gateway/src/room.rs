//! The waiting room's board, per gateway process: answers most polls from memory.
//!
//! During a sale nearly every poll is from a buyer still waiting, and what it needs is two
//! numbers: the ticket's place (fixed once handed out) and how far admission has got (the same
//! for every ticket of the event). Asking Redis for them on every poll put the whole room's
//! traffic on the one node that holds its slot. Here each Redis answer (join or poll) teaches
//! the process the ticket's place and owner and the room's counts; a later poll of a ticket still
//! behind the admitted mark is answered from them while they are at most [`FRESH`] old.
//!
//! What still goes to Redis: a ticket never seen by this process, a lottery ticket not drawn yet,
//! any ticket at or under the admitted mark (its admission window starts when it is first seen
//! admitted, and its token is minted from that), and any poll while the room's counts are older
//! than [`FRESH`]; each of those answers refreshes the counts, so the room's token bucket still
//! runs several times a second. A buyer may be told "waiting" up to [`FRESH`] after admission
//! reached them: the same as polling a little earlier.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use coordinator::queue::{TicketStatus, TicketView};
use coordinator::{EventId, UserId};

/// How long the room's counts answer polls without asking Redis again.
pub const FRESH: Duration = Duration::from_millis(250);

/// Tickets remembered per process at most. A flash sale's room holds a few hundred thousand;
/// past this the memory is dropped whole and relearned from Redis, one poll per ticket.
const MAX_TICKETS: usize = 2_000_000;

/// The room's counts as the newest Redis answer gave them.
#[derive(Debug, Clone)]
struct Counts {
    seen: Instant,
    /// The answer, with its ticket fields left as they came (only the room's fields are used).
    room: TicketView,
}

/// A ticket's owner and place (never 0: a lottery ticket not drawn yet is not remembered).
#[derive(Debug)]
struct Place {
    event: EventId,
    owner: UserId,
    position: u64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Boards {
    rooms: RwLock<HashMap<EventId, Counts>>,
    tickets: RwLock<HashMap<String, Place>>,
}

impl Boards {
    /// Learns from a ticket Redis just returned (join or poll) for `owner`.
    pub fn learn(&self, event: &EventId, owner: &UserId, view: &TicketView) {
        if let Ok(mut rooms) = self.rooms.write() {
            let newer = rooms
                .get(event)
                .is_none_or(|c| c.room.now_ms <= view.now_ms);
            if newer {
                let counts = Counts {
                    seen: Instant::now(),
                    room: view.clone(),
                };
                rooms.insert(event.clone(), counts);
            }
        }
        if view.position == 0 || view.ticket.is_empty() {
            return;
        }
        if let Ok(mut tickets) = self.tickets.write() {
            if tickets.len() >= MAX_TICKETS && !tickets.contains_key(&view.ticket) {
                tickets.clear();
            }
            let place = Place {
                event: event.clone(),
                owner: owner.clone(),
                position: view.position,
            };
            tickets.insert(view.ticket.clone(), place);
        }
    }

    /// The room's settings changed (or it was removed): the next polls ask Redis.
    pub fn forget(&self, event: &EventId) {
        if let Ok(mut rooms) = self.rooms.write() {
            rooms.remove(event);
        }
    }

    /// The answer to `user`'s poll of `ticket`, when memory has it: a ticket of this buyer and
    /// event, still behind the admitted mark, with the room's counts fresh. `None`: ask Redis.
    pub fn answer(&self, event: &EventId, user: &UserId, ticket: &str) -> Option<TicketView> {
        // Compared under the locks, not cloned: this runs on every poll of a sale.
        let position = {
            let tickets = self.tickets.read().ok()?;
            let place = tickets.get(ticket)?;
            if &place.event != event || &place.owner != user {
                // Redis gives the precise refusal (another buyer's ticket, another event's).
                return None;
            }
            place.position
        };
        let (age, room) = {
            let rooms = self.rooms.read().ok()?;
            let counts = rooms.get(event)?;
            let age = counts.seen.elapsed();
            if age >= FRESH || position <= counts.room.admitted_upto {
                return None;
            }
            (age, counts.room.clone())
        };
        Some(TicketView {
            status: TicketStatus::Waiting,
            position,
            joined: room.joined.max(position),
            admitted_at_ms: 0,
            now_ms: room.now_ms + age.as_millis() as i64,
            ticket: ticket.to_owned(),
            waited_ms: None,
            shopping: None,
            ..room
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn view(ticket: &str, position: u64, upto: u64, now_ms: i64) -> TicketView {
        TicketView {
            status: TicketStatus::Waiting,
            position,
            admitted_upto: upto,
            joined: 100,
            admitted_at_ms: 0,
            now_ms,
            ticket: ticket.to_owned(),
            rate_per_sec: 2.0,
            window_ms: 600_000,
            opens_at_ms: 0,
            waited_ms: None,
            shopping: None,
        }
    }

    #[test]
    fn a_waiting_ticket_is_answered_from_memory_only_for_its_owner_and_while_behind_the_mark() {
        let boards = Boards::default();
        let (event, other_event) = (EventId::parse("e1").unwrap(), EventId::parse("e2").unwrap());
        let (alice, bob) = (
            UserId::parse("alice").unwrap(),
            UserId::parse("bob").unwrap(),
        );
        assert!(
            boards.answer(&event, &alice, "t-a").is_none(),
            "nothing learnt yet"
        );

        boards.learn(&event, &alice, &view("t-a", 50, 10, 1_000));
        let a = boards
            .answer(&event, &alice, "t-a")
            .expect("answered from memory");
        assert_eq!((a.position, a.admitted_upto, a.ahead()), (50, 10, 39));
        assert_eq!(a.status, TicketStatus::Waiting);
        assert!(
            boards.answer(&event, &bob, "t-a").is_none(),
            "not bob's ticket"
        );
        assert!(boards.answer(&other_event, &alice, "t-a").is_none());

        // Another buyer's answer moves the room's mark past alice: Redis must see her admission.
        boards.learn(&event, &bob, &view("t-b", 60, 50, 1_200));
        assert!(boards.answer(&event, &alice, "t-a").is_none());
        let b = boards.answer(&event, &bob, "t-b").expect("bob still waits");
        assert_eq!(b.admitted_upto, 50);

        // An older answer arriving late does not move the mark back.
        boards.learn(&event, &alice, &view("t-a", 50, 10, 1_100));
        assert!(boards.answer(&event, &alice, "t-a").is_none());

        // Lottery tickets not drawn yet are never answered from memory.
        boards.learn(&event, &alice, &view("t-pre", 0, 0, 1_300));
        assert!(boards.answer(&event, &alice, "t-pre").is_none());

        boards.forget(&event);
        assert!(
            boards.answer(&event, &bob, "t-b").is_none(),
            "settings changed"
        );
    }

    #[test]
    fn the_room_s_counts_answer_only_while_fresh() {
        let boards = Boards::default();
        let (event, alice) = (
            EventId::parse("e1").unwrap(),
            UserId::parse("alice").unwrap(),
        );
        boards.learn(&event, &alice, &view("t-a", 50, 10, 1_000));
        assert!(boards.answer(&event, &alice, "t-a").is_some());
        std::thread::sleep(FRESH + Duration::from_millis(20));
        assert!(boards.answer(&event, &alice, "t-a").is_none());
    }
}
