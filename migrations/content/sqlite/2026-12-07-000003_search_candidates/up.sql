-- Nothing to do on SQLite: FTS5 hands out a query's matches newest first by itself
-- (ORDER BY rowid DESC). The PostgreSQL migration of this name adds the index that
-- does it there.
SELECT 1;
