-- An offer is written before its hold is made (orders::waitlist::offer): between the two it is
-- `offered` with its hold id and no expiry yet, and a pass that stopped there is settled by the
-- next one (confirmed when the hold exists, back to `waiting` when it does not). So an offer
-- needs its hold id, and its expiry only once confirmed.
ALTER TABLE waitlist_entries DROP CONSTRAINT waitlist_offer_has_hold;
ALTER TABLE waitlist_entries ADD CONSTRAINT waitlist_offer_has_hold
    CHECK (status <> 'offered' OR hold_id IS NOT NULL);
