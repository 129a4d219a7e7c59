ALTER TABLE content_fts RESET (toast_tuple_target);
