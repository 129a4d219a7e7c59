DROP TRIGGER content_items_changes ON content_items;
DROP FUNCTION content_changes_record();
DROP TABLE content_changes;
