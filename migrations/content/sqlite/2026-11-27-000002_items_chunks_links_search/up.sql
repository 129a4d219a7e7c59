-- The first content_items table never held data (the service could not create items
-- yet): replace it with the full shape.
DROP TABLE content_items;

-- A user's content items. `seq` is the row's integer key (SQLite's full-text index
-- refers to rows by it); `id` is the public UUIDv7. `version` drives the ETag.
CREATE TABLE content_items (
    seq INTEGER PRIMARY KEY NOT NULL,
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
    vector BLOB NOT NULL,
    PRIMARY KEY (item_id, model, chunk)
);
CREATE INDEX content_embeddings_owner_model_idx ON content_embeddings (owner_id, model, item_id);

-- Full-text index over the title and the first 200 000 characters of the body
-- (PostgreSQL's tsvector has a size cap; both backends index the same text), plus the
-- owner as a single token (the id without hyphens): a search intersects it with the
-- words inside the index instead of looking up every matching row's owner.
-- External content through a view, so the text is stored once, in content_items;
-- triggers keep the index in step inside the writing transaction.
CREATE VIEW content_fts_source AS
    SELECT seq, replace(owner_id, '-', '') AS owner_key, title, substr(body, 1, 200000) AS body
    FROM content_items;
CREATE VIRTUAL TABLE content_fts USING fts5 (
    owner_key,
    title,
    body,
    content = 'content_fts_source',
    content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER content_items_fts_insert AFTER INSERT ON content_items BEGIN
    INSERT INTO content_fts (rowid, owner_key, title, body)
    VALUES (new.seq, replace(new.owner_id, '-', ''), new.title, substr(new.body, 1, 200000));
END;
CREATE TRIGGER content_items_fts_delete AFTER DELETE ON content_items BEGIN
    INSERT INTO content_fts (content_fts, rowid, owner_key, title, body)
    VALUES ('delete', old.seq, replace(old.owner_id, '-', ''), old.title, substr(old.body, 1, 200000));
END;
CREATE TRIGGER content_items_fts_update AFTER UPDATE OF title, body ON content_items BEGIN
    INSERT INTO content_fts (content_fts, rowid, owner_key, title, body)
    VALUES ('delete', old.seq, replace(old.owner_id, '-', ''), old.title, substr(old.body, 1, 200000));
    INSERT INTO content_fts (rowid, owner_key, title, body)
    VALUES (new.seq, replace(new.owner_id, '-', ''), new.title, substr(new.body, 1, 200000));
END;
