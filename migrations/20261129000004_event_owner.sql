-- The organizer who created an event (the token's subject). Organizer routes change only their
-- own events; admins change any. NULL (events created before this, or by ticketctl, an operator
-- tool) may be changed by any organizer. Expand-only.
ALTER TABLE events ADD COLUMN owner text;
