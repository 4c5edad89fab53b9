-- The catalog: venues, their sections and seats, and events. Ids are the same key-safe ids the
-- coordinator uses in Redis keys (coordinator/src/ids.rs), enforced here too.

CREATE TABLE venues (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT venues_id_format CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    CONSTRAINT venues_name_present CHECK (length(name) BETWEEN 1 AND 200)
);

CREATE TABLE sections (
    venue_id    text NOT NULL,
    id          text NOT NULL,
    name        text NOT NULL,
    CONSTRAINT sections_pkey PRIMARY KEY (venue_id, id),
    CONSTRAINT sections_venue_fkey FOREIGN KEY (venue_id) REFERENCES venues (id) ON DELETE CASCADE,
    CONSTRAINT sections_id_format CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$')
);

CREATE TABLE seats (
    venue_id    text NOT NULL,
    id          text NOT NULL,
    section_id  text NOT NULL,
    row_label   text NOT NULL,
    number      integer NOT NULL,
    x           real NOT NULL,
    y           real NOT NULL,
    category    text NOT NULL,
    accessible  boolean NOT NULL DEFAULT false,
    -- A seat id is unique within its venue, so within each event held at it.
    CONSTRAINT seats_pkey PRIMARY KEY (venue_id, id),
    CONSTRAINT seats_section_fkey FOREIGN KEY (venue_id, section_id) REFERENCES sections (venue_id, id) ON DELETE CASCADE,
    CONSTRAINT seats_id_format CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    CONSTRAINT seats_number_positive CHECK (number > 0),
    CONSTRAINT seats_row_place_unique UNIQUE (venue_id, section_id, row_label, number)
);

CREATE TYPE event_status AS ENUM ('draft', 'on_sale', 'frozen', 'ended');

CREATE TABLE events (
    id             text PRIMARY KEY,
    venue_id       text NOT NULL,
    title          text NOT NULL,
    category       text NOT NULL,
    starts_at      timestamptz NOT NULL,
    sale_opens_at  timestamptz NOT NULL,
    status         event_status NOT NULL DEFAULT 'draft',
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_venue_fkey FOREIGN KEY (venue_id) REFERENCES venues (id),
    CONSTRAINT events_id_format CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    CONSTRAINT events_title_present CHECK (length(title) BETWEEN 1 AND 200),
    CONSTRAINT events_sale_before_start CHECK (sale_opens_at <= starts_at)
);

CREATE INDEX events_starts_at_idx ON events (starts_at);
