DROP TABLE ingested_files;
DROP TABLE ingest_jobs;
CREATE TABLE ingest_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    progress INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    payload TEXT NOT NULL,
    run_after TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX ingest_jobs_owner_id_idx ON ingest_jobs (owner_id, id);
CREATE INDEX ingest_jobs_due_idx ON ingest_jobs (status, run_after);
