-- Accounts. Identities (Google, GitHub, …) and sessions get their own tables.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT,
    password_hash TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    roles TEXT NOT NULL DEFAULT 'user',
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Emails are stored normalised (trimmed, lower-case), so a plain unique index suffices.
CREATE UNIQUE INDEX users_email_key ON users (email);
