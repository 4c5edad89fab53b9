-- The organizer's blocks (press, production), kept in Postgres as well as in Redis, so that a
-- section Redis lost is rebuilt with them (open_section.lua) instead of coming back with the
-- blocked seats on sale. Written in the same transaction that waits for Redis's answer: a block
-- Redis refuses is not kept here either.
CREATE TABLE seat_blocks (
    event_id    text NOT NULL,
    seat_id     text NOT NULL,
    tag         text NOT NULL,
    blocked_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT seat_blocks_pkey PRIMARY KEY (event_id, seat_id),
    CONSTRAINT seat_blocks_event_fkey FOREIGN KEY (event_id) REFERENCES events (id)
);
