-- Accounts deleted at the auth service: their access tokens (valid for up to 15
-- minutes after the deletion) are refused here, and nothing more is written for them.
CREATE TABLE closed_accounts (
    user_id TEXT PRIMARY KEY NOT NULL,
    closed_at TIMESTAMP NOT NULL
);
CREATE INDEX closed_accounts_closed_at_idx ON closed_accounts (closed_at);
