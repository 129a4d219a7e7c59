DROP TABLE ingest_jobs;
