-- Per-user limits: an uploaded file's size counts against its owner's storage quota
-- (files of earlier releases count as 0 bytes), and a feed's manual refresh is
-- limited to one per interval.
ALTER TABLE ingested_files ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE feeds ADD COLUMN refresh_requested_at TIMESTAMP;
