-- Sections in the order the seat map lists them (the venue lists its best first; best-available
-- seating and seat-map rendering follow it). Existing sections default to 0, then id order.
ALTER TABLE sections ADD COLUMN position integer NOT NULL DEFAULT 0;
ALTER TABLE sections ADD CONSTRAINT sections_position_nonnegative CHECK (position >= 0);
