-- Exports of one owner's content (`POST /export`), each a job: queued, claimed by a
-- content process with a lease (a stopped one's is taken again when the lease lapses),
-- then succeeded with its archive in CONTENT_EXPORT_DIR, or failed. Rows and archives
-- are removed when they expire.
CREATE TABLE content_exports (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_until TIMESTAMP,
    error TEXT,
    items BIGINT NOT NULL,
    links BIGINT NOT NULL,
    size BIGINT NOT NULL,
    originals TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX content_exports_owner_idx ON content_exports (owner_id, id);
CREATE INDEX content_exports_status_idx ON content_exports (status);
