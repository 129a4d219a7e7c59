-- The first content_items table never held data (the service could not create items
-- yet): replace it with the full shape.
DROP TABLE content_items;

-- A user's content items. `seq` is the row's integer key (SQLite's full-text index
-- refers to rows by it; kept here so both backends share one schema); `id` is the public UUIDv7. `version` drives the ETag.
CREATE TABLE content_items (
    seq SERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    owner_id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    body_bytes BIGINT NOT NULL,
    kind TEXT NOT NULL,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    source_type TEXT,
    source_url TEXT,
    source_filename TEXT,
    source_sha256 TEXT,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Newest-first listing of one owner's items (ids are UUIDv7, so they sort by time).
CREATE INDEX content_items_owner_id_idx ON content_items (owner_id, id);
CREATE INDEX content_items_owner_kind_idx ON content_items (owner_id, kind, id);

-- One row per (item, tag), for filtering and counting; the item keeps its own list too.
CREATE TABLE content_tags (
    item_id TEXT NOT NULL REFERENCES content_items (id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (item_id, tag)
);
CREATE INDEX content_tags_owner_tag_idx ON content_tags (owner_id, tag, item_id);

-- The item's text in pieces; offsets count characters of the body.
CREATE TABLE content_chunks (
    item_id TEXT NOT NULL REFERENCES content_items (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    text TEXT NOT NULL,
    start_offset BIGINT NOT NULL,
    end_offset BIGINT NOT NULL,
    PRIMARY KEY (item_id, idx)
);

-- Typed, directed knowledge-graph edges between two items of one owner.
CREATE TABLE content_links (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL,
    source_id TEXT NOT NULL REFERENCES content_items (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL REFERENCES content_items (id) ON DELETE CASCADE,
    relation TEXT NOT NULL,
    weight DOUBLE PRECISION,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX content_links_edge_key ON content_links (source_id, target_id, relation);
CREATE INDEX content_links_target_idx ON content_links (target_id);

-- Idempotency-Key of item creation: a retry with the same key and body gets the
-- item the first request created; another body under the same key is refused.
CREATE TABLE idempotency_keys (
    owner_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    item_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (owner_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- Vector dimensions are fixed per (owner, model); `generation` changes on every write
-- so caches of one owner's vectors can tell they are stale.
CREATE TABLE embedding_models (
    owner_id TEXT NOT NULL,
    model TEXT NOT NULL,
    dims INTEGER NOT NULL,
    generation BIGINT NOT NULL,
    PRIMARY KEY (owner_id, model)
);

-- One vector per (item, model, chunk), unit length, little-endian f32 bytes.
CREATE TABLE content_embeddings (
    item_id TEXT NOT NULL REFERENCES content_items (id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL,
    model TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    vector BYTEA NOT NULL,
    PRIMARY KEY (item_id, model, chunk)
);
CREATE INDEX content_embeddings_owner_model_idx ON content_embeddings (owner_id, model, item_id);

-- Full-text index: one tsvector per item over the title (weight A) and the first
-- 200 000 characters of the body (weight B; tsvector has a size cap, and SQLite
-- indexes the same text). Kept by a trigger inside the writing transaction; rows go
-- with their item by cascade. Like SQLite's FTS5 tables, it is not a diesel table.
CREATE TABLE content_fts (
    seq INTEGER PRIMARY KEY REFERENCES content_items (seq) ON DELETE CASCADE,
    owner_id TEXT NOT NULL,
    document TSVECTOR NOT NULL
);
CREATE INDEX content_fts_document_idx ON content_fts USING GIN (document);
CREATE INDEX content_fts_owner_idx ON content_fts (owner_id);

CREATE FUNCTION content_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO content_fts (seq, owner_id, document)
    VALUES (
        NEW.seq,
        NEW.owner_id,
        setweight(to_tsvector('english', NEW.title), 'A')
            || setweight(to_tsvector('english', left(NEW.body, 200000)), 'B')
    )
    ON CONFLICT (seq) DO UPDATE SET owner_id = EXCLUDED.owner_id, document = EXCLUDED.document;
    RETURN NULL;
END
$$;
CREATE TRIGGER content_items_fts AFTER INSERT OR UPDATE OF title, body ON content_items
    FOR EACH ROW EXECUTE FUNCTION content_fts_sync();
