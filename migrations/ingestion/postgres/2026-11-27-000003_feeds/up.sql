-- Feed subscriptions (RSS, Atom, JSON Feed), polled in the background with
-- conditional requests; a feed that keeps failing is polled less often.
CREATE TABLE feeds (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT,
    etag TEXT,
    last_modified TEXT,
    failures INTEGER NOT NULL,
    last_error TEXT,
    last_polled_at TIMESTAMP,
    next_poll_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX feeds_owner_url_key ON feeds (owner_id, url);
CREATE INDEX feeds_due_idx ON feeds (next_poll_at);

-- Every entry already turned into a content item, by the feed's own key (guid,
-- id or link): an entry is never ingested twice.
CREATE TABLE feed_entries (
    feed_id TEXT NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    entry_key TEXT NOT NULL,
    content_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (feed_id, entry_key)
);
