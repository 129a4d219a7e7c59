-- The change feed: one row per write of an item (created, updated, deleted), written
-- by a trigger in the writing transaction, so no item changes without its row.
-- `GET /changes` reads one owner's rows after a cursor (the `seq`); rows older than
-- CONTENT_CHANGES_RETENTION_DAYS are removed.
CREATE TABLE content_changes (
    seq SERIAL PRIMARY KEY,
    owner_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    op TEXT NOT NULL,
    version BIGINT NOT NULL,
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX content_changes_owner_idx ON content_changes (owner_id, seq);
CREATE INDEX content_changes_at_idx ON content_changes (changed_at);

-- A sequence hands out numbers in the order transactions ask, not the order they
-- commit: a reader past seq N could see N+1 committed and later miss N. So one
-- transaction at a time writes an owner's changes (a lock held until it commits): for
-- each owner, seq order is commit order, and a cursor never skips a row.
CREATE FUNCTION content_changes_record() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed content_items;
    what TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
        what := 'deleted';
    ELSIF TG_OP = 'INSERT' THEN
        changed := NEW;
        what := 'created';
    ELSIF NEW.version <> OLD.version THEN
        changed := NEW;
        what := 'updated';
    ELSE
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('content_changes:' || changed.owner_id, 0));
    INSERT INTO content_changes (owner_id, item_id, op, version, changed_at)
    VALUES (changed.owner_id, changed.id, what, changed.version, now() AT TIME ZONE 'utc');
    RETURN NULL;
END $$;
CREATE TRIGGER content_items_changes AFTER INSERT OR UPDATE OR DELETE ON content_items
    FOR EACH ROW EXECUTE FUNCTION content_changes_record();
