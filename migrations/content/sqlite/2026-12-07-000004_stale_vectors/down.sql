ALTER TABLE content_embeddings DROP COLUMN stale;
