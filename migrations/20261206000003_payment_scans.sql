-- How far reconciliation has read the provider's listing of captured payments, so a listing of
-- any length is read a page at a time and resumed where it stopped: by the next pass, by another
-- reconciler (each page is read holding the row, FOR UPDATE SKIP LOCKED), after a restart. A
-- payment is never left out for its age: a listing starts where the last one left a payment
-- unfinished. Expand-only: old code ignores the table.
CREATE TABLE payment_scans (
    scan           text NOT NULL,
    -- The listing covers payments created from here (unix s) ...
    window_from    bigint NOT NULL DEFAULT 0,
    -- ... to here, fixed when it starts; NULL between listings (the next one ends at its start).
    window_to      bigint,
    -- The provider's cursor: the listing resumes after this payment; NULL: at its first page.
    after_payment  text,
    -- The oldest payment the listing in progress left unfinished (unix s), if any.
    open_since     bigint,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_scans_pkey PRIMARY KEY (scan),
    CONSTRAINT payment_scans_cursor_in_listing CHECK (after_payment IS NULL OR window_to IS NOT NULL)
);
