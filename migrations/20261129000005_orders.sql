-- Orders and the seats they bought. The partial unique index on live sales is the last guard
-- against overselling: whatever Redis says (even after it lost state), Postgres refuses a
-- second live sale of a seat of an event. A refunded sale stops being live, so the seat can be
-- sold again.

CREATE TYPE order_status AS ENUM ('paid', 'refunded');

CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    event_id         text NOT NULL,
    hold_id          uuid NOT NULL,
    user_id          text NOT NULL,
    status           order_status NOT NULL,
    total_cents      bigint NOT NULL,
    currency         text NOT NULL,
    payment_ref      text NOT NULL,
    -- The client's idempotency key of the commit that made it: a replay with another key is a
    -- conflict, not a second order.
    idempotency_key  text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_event_fkey FOREIGN KEY (event_id) REFERENCES events (id),
    -- One order per hold: a replayed commit finds the order it made.
    CONSTRAINT orders_hold_unique UNIQUE (hold_id),
    -- One order per captured payment: webhooks are deduplicated on the provider's reference.
    CONSTRAINT orders_payment_ref_unique UNIQUE (payment_ref),
    CONSTRAINT orders_total_nonnegative CHECK (total_cents >= 0)
);

CREATE TABLE sold_seats (
    order_id   uuid NOT NULL,
    event_id   text NOT NULL,
    seat_id    text NOT NULL,
    live       boolean NOT NULL DEFAULT true,
    sold_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sold_seats_pkey PRIMARY KEY (order_id, seat_id),
    CONSTRAINT sold_seats_order_fkey FOREIGN KEY (order_id) REFERENCES orders (id)
);

CREATE UNIQUE INDEX sold_seats_live_unique ON sold_seats (event_id, seat_id) WHERE live;
