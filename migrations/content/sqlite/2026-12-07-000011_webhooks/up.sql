-- Webhook subscriptions to an owner's change feed: each is sent the owner's changes
-- after its cursor, in order, signed with its secret; the cursor moves on once the
-- receiver answers 2xx (at least once: a batch not taken is sent again, with backoff).
CREATE TABLE content_webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX content_webhooks_owner_idx ON content_webhooks (owner_id, id);
