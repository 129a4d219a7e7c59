-- Items whose vectors of the service's own embedding model are to be computed: one
-- row per item, written with the item and again when its body changes (`version` is
-- the item's version at that write). A task in every content process that has the
-- model claims rows with a lease, computes the vectors and removes the row when it
-- still holds the version it computed. Items from before this table are queued too.
CREATE TABLE content_embedding_jobs (
    item_id TEXT PRIMARY KEY NOT NULL REFERENCES content_items (id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    last_error TEXT
);
CREATE INDEX content_embedding_jobs_due_idx ON content_embedding_jobs (next_attempt_at);
INSERT INTO content_embedding_jobs (item_id, owner_id, version, attempts, next_attempt_at)
SELECT id, owner_id, version, 0, updated_at FROM content_items;
