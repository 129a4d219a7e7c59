ALTER TABLE oauth_codes DROP COLUMN client_challenge;
ALTER TABLE oauth_states DROP COLUMN client_challenge;
