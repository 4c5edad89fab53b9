-- A seat's price is at most 100,000.00 (catalog::events::MAX_PRICE_CENTS): no sum of prices can
-- come near bigint's range, where a total once wrapped to a negative charge. NOT VALID: rows
-- written before are not rechecked (the gateway refuses any hold whose total is out of range),
-- every new or changed price is.
ALTER TABLE event_prices
    ADD CONSTRAINT event_prices_amount_bounded CHECK (amount_cents <= 10000000) NOT VALID;
