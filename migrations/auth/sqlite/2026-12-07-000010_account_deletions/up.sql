-- Accounts deleted here (`DELETE /me`): their access tokens are refused until they
-- lapse. The user row itself is gone.
CREATE TABLE closed_accounts (
    user_id TEXT PRIMARY KEY NOT NULL,
    closed_at TIMESTAMP NOT NULL
);
CREATE INDEX closed_accounts_closed_at_idx ON closed_accounts (closed_at);

-- What each other service still has to erase of a deleted account, written in the
-- transaction that deletes it: a sender asks each service in turn, with a lease and
-- backoff, until it confirms (a stop or crash loses nothing; it is never given up).
CREATE TABLE account_deletions (
    user_id TEXT NOT NULL,
    service TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    last_error TEXT,
    requested_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    PRIMARY KEY (user_id, service)
);
CREATE INDEX account_deletions_due_idx ON account_deletions (next_attempt_at);
