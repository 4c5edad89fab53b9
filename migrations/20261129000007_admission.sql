-- Flash-sale admission per event: open (no queue), queue (first come, first served) or lottery
-- (joined before the opening: a drawn place). The lottery's seed is secret until the draw; its
-- SHA-256 is published when the lottery is set, so nobody can choose the order afterwards.
-- Expand-only: old code ignores the new columns.

ALTER TABLE events
    ADD COLUMN admission_mode text NOT NULL DEFAULT 'open',
    ADD COLUMN admission_rate double precision NOT NULL DEFAULT 50,
    ADD COLUMN admission_burst integer NOT NULL DEFAULT 50,
    ADD COLUMN admission_window_secs integer NOT NULL DEFAULT 600,
    ADD COLUMN lottery_seed text,
    ADD COLUMN lottery_seed_sha256 text,
    ADD CONSTRAINT events_admission_mode_known CHECK (admission_mode IN ('open', 'queue', 'lottery')),
    ADD CONSTRAINT events_admission_rate_positive CHECK (admission_rate > 0),
    ADD CONSTRAINT events_admission_burst_positive CHECK (admission_burst > 0),
    ADD CONSTRAINT events_admission_window_positive CHECK (admission_window_secs > 0);

-- Per-buyer ticket limit per event (held and bought seats together).
ALTER TABLE events
    ADD COLUMN max_tickets_per_buyer integer NOT NULL DEFAULT 8,
    ADD CONSTRAINT events_max_tickets_positive CHECK (max_tickets_per_buyer > 0);
