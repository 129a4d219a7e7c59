DROP TABLE login_throttle;
DROP TABLE service_clients;
DROP TABLE refresh_tokens;
DROP TABLE refresh_families;
DROP TABLE identities;
