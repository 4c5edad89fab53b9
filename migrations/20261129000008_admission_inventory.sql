-- Admission tied to the inventory left: at most this many buyers shopping (admitted, within
-- their window, not finished) per seat still free; 0 (the default) leaves it untied: the
-- organizer opts in. Expand-only: old code ignores the column.

ALTER TABLE events
    ADD COLUMN admission_shoppers_per_free_seat double precision NOT NULL DEFAULT 0,
    ADD CONSTRAINT events_admission_shoppers_per_free_seat_range
        CHECK (admission_shoppers_per_free_seat >= 0 AND admission_shoppers_per_free_seat <= 1000);
