-- Single-use tokens mailed to a user: email verification (24 h) and password reset
-- (30 min). Stored only as SHA-256 hashes; `email` is the address the token was sent
-- to, so a verification only counts for the address the user still has.
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX email_tokens_user_purpose_idx ON email_tokens (user_id, purpose);
