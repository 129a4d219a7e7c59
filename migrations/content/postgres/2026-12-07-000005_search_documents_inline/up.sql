-- Search reads the tsvector of every candidate it walks (the match test) and of each
-- of the newest CONTENT_SEARCH_CANDIDATES matches (the rank). A 2 KB item's tsvector is
-- ~3.3 KB; past the default 2 KB TOAST target it went out of line, uncompressed, so
-- each read was a TOAST index lookup and two chunk fetches: ~4.5 µs, twice per
-- candidate, ~2/3 of a search. Rows up to a page now stay in the table (larger
-- documents are still moved out), and the rows already written are rewritten so.
ALTER TABLE content_fts SET (toast_tuple_target = 8160);
UPDATE content_fts SET document = document || ''::tsvector;
