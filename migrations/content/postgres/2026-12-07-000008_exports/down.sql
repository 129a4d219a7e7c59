DROP TABLE content_exports;
