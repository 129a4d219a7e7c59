-- Search ranks the newest matches of a query (CONTENT_SEARCH_CANDIDATES): an index
-- that walks one owner's rows newest first finds them without reading every match of
-- a frequent word.
CREATE INDEX content_fts_owner_seq_idx ON content_fts (owner_id, seq);
DROP INDEX content_fts_owner_idx;
