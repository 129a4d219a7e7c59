-- One sign-in with Google or GitHub in progress: created by /oauth/{provider}/authorize,
-- consumed once by the callback within 10 minutes. The state and the browser cookie are
-- stored only as SHA-256 hashes; the nonce and the PKCE verifier must be kept as they
-- are (the callback needs them) and die with the row.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    link_user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX oauth_states_expires_at_idx ON oauth_states (expires_at);

-- The one-time code the callback hands the client (?code=), traded once within 60 s
-- for tokens at /oauth/exchange. Stored as a SHA-256 hash.
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
