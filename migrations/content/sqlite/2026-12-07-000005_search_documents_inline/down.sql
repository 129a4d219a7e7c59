-- Nothing to do on SQLite: FTS5 keeps its index in its own b-tree pages. The
-- PostgreSQL migration of this name keeps search documents inline.
SELECT 1;
