-- The change feed: one row per write of an item (created, updated, deleted), written
-- by triggers in the writing transaction, so no item changes without its row and the
-- rows' order is the order of the writes. `GET /changes` reads one owner's rows after
-- a cursor (the `seq`); rows older than CONTENT_CHANGES_RETENTION_DAYS are removed.
CREATE TABLE content_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    owner_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    op TEXT NOT NULL,
    version BIGINT NOT NULL,
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX content_changes_owner_idx ON content_changes (owner_id, seq);
CREATE INDEX content_changes_at_idx ON content_changes (changed_at);

CREATE TRIGGER content_items_changes_insert AFTER INSERT ON content_items BEGIN
    INSERT INTO content_changes (owner_id, item_id, op, version, changed_at)
    VALUES (new.owner_id, new.id, 'created', new.version, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;
CREATE TRIGGER content_items_changes_update AFTER UPDATE ON content_items
WHEN new.version <> old.version BEGIN
    INSERT INTO content_changes (owner_id, item_id, op, version, changed_at)
    VALUES (new.owner_id, new.id, 'updated', new.version, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;
CREATE TRIGGER content_items_changes_delete AFTER DELETE ON content_items BEGIN
    INSERT INTO content_changes (owner_id, item_id, op, version, changed_at)
    VALUES (old.owner_id, old.id, 'deleted', old.version, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;
