-- Nothing to do on PostgreSQL: its trigger runs in the server, not in the service.
-- The SQLite migration of this name has new items indexed by the service.
SELECT 1;
