-- A user's permission for a service client to act for them (ingestion writing the
-- user's documents): recorded when the client presents the user's own access token
-- (token exchange, RFC 8693), renewed each time, and required for every token that
-- lets the client act for that user afterwards (queued jobs, feed polls).
CREATE TABLE delegations (
    client_id TEXT NOT NULL REFERENCES service_clients (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    renewed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (client_id, user_id)
);
CREATE INDEX delegations_user_id_idx ON delegations (user_id);
