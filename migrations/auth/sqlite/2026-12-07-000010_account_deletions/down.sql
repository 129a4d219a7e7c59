DROP TABLE account_deletions;
DROP TABLE closed_accounts;
