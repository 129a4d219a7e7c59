DROP TRIGGER content_items_changes_delete;
DROP TRIGGER content_items_changes_update;
DROP TRIGGER content_items_changes_insert;
DROP TABLE content_changes;
