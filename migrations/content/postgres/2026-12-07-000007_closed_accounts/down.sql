DROP TABLE closed_accounts;
