DROP TABLE content_webhooks;
