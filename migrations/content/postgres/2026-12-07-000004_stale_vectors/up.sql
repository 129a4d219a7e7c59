-- A new body no longer drops an item's vectors: they are kept, marked stale, until
-- new ones are PUT for that model.
ALTER TABLE content_embeddings ADD COLUMN stale BOOLEAN NOT NULL DEFAULT FALSE;
