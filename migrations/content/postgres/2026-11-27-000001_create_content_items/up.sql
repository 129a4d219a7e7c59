-- A user's content items; chunks, tags, links and embeddings get their own tables.
CREATE TABLE content_items (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'note',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Newest-first listing of one owner's items (ids are UUIDv7, so they sort by time).
CREATE INDEX content_items_owner_id_idx ON content_items (owner_id, id);
