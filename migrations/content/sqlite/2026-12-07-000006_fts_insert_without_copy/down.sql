CREATE TRIGGER content_items_fts_insert AFTER INSERT ON content_items BEGIN
    INSERT INTO content_fts (rowid, owner_key, title, body)
    VALUES (new.seq, replace(new.owner_id, '-', ''), new.title, substr(new.body, 1, 200000));
END;
