-- Tickets and gate check-ins (issue 20). A ticket is written with its sold seat, in the durable
-- writer's transaction, one per seat; its signed payload is not stored: the gateway signs the
-- row's fields on read (Ed25519 is deterministic), so the signing key never reaches Postgres or
-- the reconciler, and rotating the key re-signs every ticket without a migration.

CREATE TYPE ticket_revocation AS ENUM ('refunded', 'transferred');

CREATE TABLE tickets (
    id              uuid PRIMARY KEY,
    order_id        uuid NOT NULL,
    event_id        text NOT NULL,
    seat_id         text NOT NULL,
    -- Who the ticket is for: the buyer, or whoever it was transferred to.
    holder          text NOT NULL,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  ticket_revocation,
    -- The ticket a transfer issued in this one's place.
    replaced_by     uuid,
    CONSTRAINT tickets_order_fkey FOREIGN KEY (order_id) REFERENCES orders (id),
    CONSTRAINT tickets_revocation_complete CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
-- One valid ticket per seat of an event: a transfer revokes before it issues, a refund revokes
-- every ticket of its order in the transaction that ends the sale.
CREATE UNIQUE INDEX tickets_valid_unique ON tickets (event_id, seat_id) WHERE revoked_at IS NULL;
CREATE INDEX tickets_order_idx ON tickets (order_id);
CREATE INDEX tickets_holder_idx ON tickets (holder);
-- The check-in kit's revocation list.
CREATE INDEX tickets_revoked_idx ON tickets (event_id) WHERE revoked_at IS NOT NULL;

-- Paid orders written before tickets existed get theirs now.
INSERT INTO tickets (id, order_id, event_id, seat_id, holder)
SELECT gen_random_uuid(), s.order_id, s.event_id, s.seat_id, o.user_id
FROM sold_seats s JOIN orders o ON o.id = s.order_id
WHERE s.live AND o.status = 'paid';

-- A ticket's admission: at most one row per ticket (the primary key), so many gates scanning one
-- ticket at once admit it once. `scanned_at` is the gate's time for an offline scan, the
-- server's for an online one.
CREATE TABLE checkins (
    ticket_id    uuid PRIMARY KEY,
    event_id     text NOT NULL,
    gate         text NOT NULL,
    scanned_at   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    -- 'online' (POST /events/{id}/checkins) or 'offline' (an uploaded batch).
    mode         text NOT NULL,
    CONSTRAINT checkins_ticket_fkey FOREIGN KEY (ticket_id) REFERENCES tickets (id),
    CONSTRAINT checkins_mode_known CHECK (mode IN ('online', 'offline'))
);
CREATE INDEX checkins_event_idx ON checkins (event_id);

-- A scan that found its ticket already admitted: the evidence of a payload shown twice.
CREATE TABLE checkin_doubles (
    id           bigserial PRIMARY KEY,
    ticket_id    uuid NOT NULL,
    event_id     text NOT NULL,
    gate         text NOT NULL,
    scanned_at   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    mode         text NOT NULL,
    CONSTRAINT checkin_doubles_ticket_fkey FOREIGN KEY (ticket_id) REFERENCES tickets (id),
    -- A batch uploaded again records its doubles once.
    CONSTRAINT checkin_doubles_scan_unique UNIQUE (ticket_id, gate, scanned_at)
);
CREATE INDEX checkin_doubles_event_idx ON checkin_doubles (event_id);

-- Ticket changes in the seat audit log, beside the seat changes they follow. Postgres forbids
-- using a new enum value in the transaction that adds it; nothing here does.
ALTER TYPE seat_action ADD VALUE 'ticket_issued';
ALTER TYPE seat_action ADD VALUE 'ticket_revoked';
ALTER TYPE seat_action ADD VALUE 'checked_in';
ALTER TABLE seat_audit ADD COLUMN ticket_id uuid;
