DROP TABLE content_embedding_jobs;
