// @generated automatically by Diesel CLI.

diesel::table! {
    ingest_jobs (id) {
        id -> Text,
        owner_id -> Text,
        kind -> Text,
        status -> Text,
        progress -> Double,
        attempts -> Integer,
        max_attempts -> Integer,
        error -> Nullable<Text>,
        input -> Text,
        content_ids -> Text,
        request_id -> Nullable<Text>,
        run_after -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        worker -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ingested_files (owner_id, sha256) {
        owner_id -> Text,
        sha256 -> Text,
        job_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(ingested_files -> ingest_jobs (job_id));

diesel::allow_tables_to_appear_in_same_query!(ingest_jobs, ingested_files,);
