-- A rotated refresh token keeps its successor, sealed with a key only the rotated
-- token itself yields (HMAC of the token; the database holds just its hash): a
-- replay within the grace window gets that same successor back instead of starting
-- a second chain, and the database alone cannot open it.
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed TEXT;
