ALTER TABLE ingest_jobs DROP COLUMN trace_parent;
