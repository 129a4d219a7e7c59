-- Whether an identity was linked while the account's address was unverified (then
-- whoever linked it had not proved the mailbox, and a password reset, which does,
-- removes it). New links are only made to verified accounts, so this marks rows of
-- earlier releases: an identity of an account that has a password may have been
-- linked to a pre-registered, unverified account, and is treated as such.
ALTER TABLE identities ADD COLUMN linked_unverified BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE identities SET linked_unverified = TRUE
    WHERE user_id IN (SELECT id FROM users WHERE password_hash IS NOT NULL);
