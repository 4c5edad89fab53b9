-- The waiting list (issue 20): buyers who want seats of an event that has none left. Seats that
-- come back (a hold that ends, a release, a refund, a lifted block) are set aside in Redis, in
-- the script that returns them, while anyone waits for their section (lua/include/waitlist.lua);
-- the reconciler's offer loop (reconciler/src/waitlist.rs) offers them, in list order, as holds
-- made for the next waiting buyer. This table is the list; Redis only has a count per section.

ALTER TYPE seat_action ADD VALUE IF NOT EXISTS 'reserved';
ALTER TYPE seat_action ADD VALUE IF NOT EXISTS 'unreserved';

CREATE TYPE waitlist_status AS ENUM ('waiting', 'offered', 'taken', 'lapsed', 'left');

CREATE TABLE waitlist_entries (
    id                uuid PRIMARY KEY,
    -- List order: first come, first offered.
    position          bigserial NOT NULL,
    event_id          text NOT NULL,
    user_id           text NOT NULL,
    quantity          integer NOT NULL,
    -- Seat categories the buyer takes; empty: any.
    categories        text[] NOT NULL DEFAULT '{}',
    status            waitlist_status NOT NULL DEFAULT 'waiting',
    -- The offer: a hold made for this buyer, its seats and when it lapses.
    hold_id           uuid,
    seats             text[] NOT NULL DEFAULT '{}',
    offered_at        timestamptz,
    offer_expires_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT waitlist_event_fkey FOREIGN KEY (event_id) REFERENCES events (id),
    CONSTRAINT waitlist_quantity_range CHECK (quantity BETWEEN 1 AND 100),
    CONSTRAINT waitlist_offer_has_hold CHECK (status <> 'offered' OR (hold_id IS NOT NULL AND offer_expires_at IS NOT NULL))
);
-- One live entry per buyer and event: joining again finds it.
CREATE UNIQUE INDEX waitlist_live_unique ON waitlist_entries (event_id, user_id)
    WHERE status IN ('waiting', 'offered');
-- The offer loop's walk, in list order.
CREATE INDEX waitlist_live_idx ON waitlist_entries (event_id, position)
    WHERE status IN ('waiting', 'offered');
CREATE INDEX waitlist_hold_idx ON waitlist_entries (hold_id) WHERE hold_id IS NOT NULL;
