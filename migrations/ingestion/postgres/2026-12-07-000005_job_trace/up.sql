-- A queued job continues the trace (W3C traceparent) of the request that made it:
-- the worker's calls to auth and content and the job's callback carry it.
ALTER TABLE ingest_jobs ADD COLUMN trace_parent TEXT;
