DROP TABLE content_fts;
DROP FUNCTION content_fts_sync;
DROP TABLE content_embeddings;
DROP TABLE idempotency_keys;
DROP TABLE embedding_models;
DROP TABLE content_links;
DROP TABLE content_chunks;
DROP TABLE content_tags;
DROP TABLE content_items;
CREATE TABLE content_items (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'note',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX content_items_owner_id_idx ON content_items (owner_id, id);
