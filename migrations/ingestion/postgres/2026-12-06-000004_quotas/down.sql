ALTER TABLE feeds DROP COLUMN refresh_requested_at;
ALTER TABLE ingested_files DROP COLUMN size;
