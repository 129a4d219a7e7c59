// @generated automatically by Diesel CLI.

diesel::table! {
    ingest_jobs (id) {
        id -> Text,
        owner_id -> Text,
        kind -> Text,
        status -> Text,
        progress -> Integer,
        attempts -> Integer,
        error -> Nullable<Text>,
        payload -> Text,
        run_after -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}
