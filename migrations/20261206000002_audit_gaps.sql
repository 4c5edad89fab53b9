-- Where a section's audit trail is incomplete: `dropped` entries after `after_id` were removed
-- from the Redis stream by its length cap before the reconciler copied them (a copy outage long
-- enough to fill the cap). The seat_audit rows of that stretch are missing; this row says so,
-- rather than the trail looking whole. reconciler_audit_gaps_total counts them.
CREATE TABLE audit_gaps (
    stream       text NOT NULL,
    after_id     text NOT NULL,
    dropped      bigint NOT NULL,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_gaps_pkey PRIMARY KEY (stream, after_id)
);

-- Entries of the stream copied (or found gone) so far, against the stream's all-time count
-- (XINFO's entries-added): the difference, less what is still in the stream, is what the cap
-- dropped. NULL until the reconciler first counts the stream.
ALTER TABLE audit_cursors ADD COLUMN copied_entries bigint;
