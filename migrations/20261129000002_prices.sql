-- Seat categories are declared per venue, and each event prices every category of its venue.
-- Expand-only: existing seats get their categories declared before the foreign key is added.

CREATE TABLE categories (
    venue_id  text NOT NULL,
    id        text NOT NULL,
    name      text NOT NULL,
    CONSTRAINT categories_pkey PRIMARY KEY (venue_id, id),
    CONSTRAINT categories_venue_fkey FOREIGN KEY (venue_id) REFERENCES venues (id) ON DELETE CASCADE,
    CONSTRAINT categories_id_format CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$')
);

INSERT INTO categories (venue_id, id, name)
SELECT DISTINCT venue_id, category, category FROM seats
ON CONFLICT DO NOTHING;

ALTER TABLE seats
    ADD CONSTRAINT seats_category_fkey FOREIGN KEY (venue_id, category) REFERENCES categories (venue_id, id);

ALTER TABLE events ADD CONSTRAINT events_id_venue_unique UNIQUE (id, venue_id);

CREATE TABLE event_prices (
    event_id      text NOT NULL,
    venue_id      text NOT NULL,
    category      text NOT NULL,
    amount_cents  bigint NOT NULL,
    currency      text NOT NULL DEFAULT 'USD',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT event_prices_pkey PRIMARY KEY (event_id, category),
    -- The price's venue is the event's venue, and the category is one of that venue's.
    CONSTRAINT event_prices_event_fkey FOREIGN KEY (event_id, venue_id) REFERENCES events (id, venue_id) ON DELETE CASCADE,
    CONSTRAINT event_prices_category_fkey FOREIGN KEY (venue_id, category) REFERENCES categories (venue_id, id),
    CONSTRAINT event_prices_amount_nonnegative CHECK (amount_cents >= 0),
    CONSTRAINT event_prices_currency_format CHECK (currency ~ '^[A-Z]{3}$')
);

-- Rows in their front-to-back order as the seat map lists them (best-available seating prefers
-- the front). Existing seats default to 0 (one row rank) - expand-only.
ALTER TABLE seats ADD COLUMN row_index integer NOT NULL DEFAULT 0;
ALTER TABLE seats ADD CONSTRAINT seats_row_index_nonnegative CHECK (row_index >= 0);
