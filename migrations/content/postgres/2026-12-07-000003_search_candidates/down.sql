CREATE INDEX content_fts_owner_idx ON content_fts (owner_id);
DROP INDEX content_fts_owner_seq_idx;
