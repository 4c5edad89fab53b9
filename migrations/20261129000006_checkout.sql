-- Checkout's bookkeeping around orders: commit attempts, the sandbox provider's ledger, handled
-- webhook deliveries, the seat audit log and oversell incidents. Expand-only.

-- One row per (buyer, client idempotency key) of POST /reservations/{id}/commit, written before
-- the payment is charged. It makes a key reused for another hold or body a 409, and lets
-- GET /orders/{id} answer "pending" for a commit whose outcome is not known yet. It is a hint,
-- not the truth about money: the provider is (reconciliation lists its payments).
CREATE TYPE attempt_status AS ENUM ('charging', 'pending', 'requires_action', 'declined', 'paid', 'refunded');

CREATE TABLE commit_attempts (
    user_id          text NOT NULL,
    idempotency_key  text NOT NULL,
    order_id         uuid NOT NULL,
    hold_id          uuid NOT NULL,
    event_id         text NOT NULL,
    -- sha256 of the payment token: the same key with another token is another request.
    request_hash     text NOT NULL,
    status           attempt_status NOT NULL,
    payment_ref      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commit_attempts_pkey PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX commit_attempts_order_idx ON commit_attempts (order_id, created_at DESC);
CREATE INDEX commit_attempts_payment_idx ON commit_attempts (payment_ref) WHERE payment_ref IS NOT NULL;

ALTER TABLE orders ADD COLUMN refunded_at timestamptz;

-- The embedded sandbox provider's ledger. A real provider keeps its payments on its side; the
-- sandbox keeps them here so every gateway and reconciler process sees one provider (idempotency
-- keys honoured across processes, reconciliation can list payments).
CREATE TABLE sandbox_payments (
    id               text PRIMARY KEY,
    idempotency_key  text NOT NULL,
    request          jsonb NOT NULL,
    status           text NOT NULL,
    decline_reason   text,
    amount_cents     bigint NOT NULL,
    currency         text NOT NULL,
    metadata         jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sandbox_payments_key_unique UNIQUE (idempotency_key),
    CONSTRAINT sandbox_payments_status_known
        CHECK (status IN ('requires_action', 'processing', 'succeeded', 'declined', 'refunded'))
);
CREATE INDEX sandbox_payments_created_idx ON sandbox_payments (created_at);

-- Webhook deliveries handled, by the provider's event id: a redelivery is answered 200 and
-- changes nothing.
CREATE TABLE webhook_events (
    id           text PRIMARY KEY,
    kind         text NOT NULL,
    payment_ref  text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- Every seat state change. Coordinator changes are written by the Lua scripts into a per-section
-- Redis stream atomically with the change, and copied here by the reconciler; `source` (stream
-- entry id and seat) makes the copy exactly-once. Postgres-side changes (refunds) are written
-- directly.
CREATE TYPE seat_action AS ENUM
    ('held', 'released', 'expired', 'extended', 'pinned', 'unpinned', 'sold', 'refunded', 'blocked', 'unblocked');

CREATE TABLE seat_audit (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL,
    seat_id      text NOT NULL,
    action       seat_action NOT NULL,
    -- When it happened (Redis TIME for coordinator changes).
    at           timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    hold_id      text,
    order_id     uuid,
    source       text NOT NULL,
    CONSTRAINT seat_audit_source_unique UNIQUE (source, seat_id)
);
CREATE INDEX seat_audit_seat_idx ON seat_audit (event_id, seat_id, at);
CREATE INDEX seat_audit_event_idx ON seat_audit (event_id, at);

-- How far each section's audit stream has been copied (the cursor is moved in the same
-- transaction as the rows it copied).
CREATE TABLE audit_cursors (
    stream      text PRIMARY KEY,
    last_id     text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A sale Postgres refused because a seat was already sold live: Redis let two holds have one
-- seat. The event is frozen and the losing payment refunded (the design document's playbook).
CREATE TABLE oversell_incidents (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL,
    hold_id      uuid NOT NULL,
    payment_ref  text NOT NULL,
    seats        text[] NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT oversell_incidents_payment_unique UNIQUE (payment_ref)
);
