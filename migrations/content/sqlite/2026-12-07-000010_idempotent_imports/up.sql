-- An import's answer (its counts, as JSON), so that a retry of it under the same
-- Idempotency-Key gets the first answer; NULL for the keys of created items.
ALTER TABLE idempotency_keys ADD COLUMN answer TEXT;
