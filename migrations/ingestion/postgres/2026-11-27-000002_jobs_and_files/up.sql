-- The first ingest_jobs table never held a job (nothing created one): replace it.
DROP TABLE ingest_jobs;

-- The durable job queue. Workers claim a due job with a lease (`lease_until`) and
-- renew it while working; a job whose lease ran out is claimed again. `input` says
-- what to ingest (JSON); `content_ids` what it became (JSON array).
CREATE TABLE ingest_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    progress DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    error TEXT,
    input TEXT NOT NULL,
    content_ids TEXT NOT NULL,
    request_id TEXT,
    run_after TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    worker TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX ingest_jobs_owner_idx ON ingest_jobs (owner_id, id);
CREATE INDEX ingest_jobs_due_idx ON ingest_jobs (status, run_after);

-- What each user has uploaded, by content hash: the same bytes twice make one job.
CREATE TABLE ingested_files (
    owner_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    job_id TEXT NOT NULL REFERENCES ingest_jobs (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (owner_id, sha256)
);
