ALTER TABLE identities DROP COLUMN linked_unverified;
