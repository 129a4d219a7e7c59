// @generated automatically by Diesel CLI.

diesel::table! {
    closed_accounts (user_id) {
        user_id -> Text,
        closed_at -> Timestamp,
    }
}

diesel::table! {
    feed_entries (feed_id, entry_key) {
        feed_id -> Text,
        entry_key -> Text,
        content_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    feeds (id) {
        id -> Text,
        owner_id -> Text,
        url -> Text,
        title -> Nullable<Text>,
        etag -> Nullable<Text>,
        last_modified -> Nullable<Text>,
        failures -> Integer,
        last_error -> Nullable<Text>,
        last_polled_at -> Nullable<Timestamp>,
        next_poll_at -> Timestamp,
        created_at -> Timestamp,
        refresh_requested_at -> Nullable<Timestamp>,
    }
}

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
        trace_parent -> Nullable<Text>,
    }
}

diesel::table! {
    ingested_files (owner_id, sha256) {
        owner_id -> Text,
        sha256 -> Text,
        job_id -> Text,
        created_at -> Timestamp,
        size -> BigInt,
    }
}

diesel::joinable!(feed_entries -> feeds (feed_id));
diesel::joinable!(ingested_files -> ingest_jobs (job_id));

diesel::allow_tables_to_appear_in_same_query!(
    closed_accounts,
    feed_entries,
    feeds,
    ingest_jobs,
    ingested_files,
);
