-- A new item's index entry is written by the service (store::items::insert), with the
-- indexed part of the body bound as it is: this trigger read `new.body` whole, a copy
-- of up to 100 MiB while SQLite held the row's record too (content peaked at ~3x the
-- body). Updates and deletes keep their triggers.
DROP TRIGGER content_items_fts_insert;
