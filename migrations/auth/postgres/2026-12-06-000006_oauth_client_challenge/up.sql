-- The one-time code is bound to the browser that started the sign-in: the client
-- sends a PKCE S256 challenge at authorize and the verifier at exchange (RFC 7636
-- between our frontend and us), so a code stolen from the redirect (login CSRF,
-- logs, referrers) is useless without the verifier only that browser holds.
ALTER TABLE oauth_states ADD COLUMN client_challenge TEXT;
ALTER TABLE oauth_codes ADD COLUMN client_challenge TEXT;
