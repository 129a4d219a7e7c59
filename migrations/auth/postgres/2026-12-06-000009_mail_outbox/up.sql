-- Mail waiting to be sent, written in the same transaction as what it announces (a
-- verification or reset token), so a stop or crash of the service loses none. A
-- sender claims a due row with a lease, delivers it and deletes it; a failed attempt
-- is retried later with backoff. The body holds the mailed link until it is sent.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at);
