// @generated automatically by Diesel CLI.

diesel::table! {
    closed_accounts (user_id) {
        user_id -> Text,
        closed_at -> Timestamp,
    }
}

diesel::table! {
    content_changes (seq) {
        seq -> Integer,
        owner_id -> Text,
        item_id -> Text,
        op -> Text,
        version -> BigInt,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    content_chunks (item_id, idx) {
        item_id -> Text,
        idx -> Integer,
        text -> Text,
        start_offset -> BigInt,
        end_offset -> BigInt,
    }
}

diesel::table! {
    content_embedding_jobs (item_id) {
        item_id -> Text,
        owner_id -> Text,
        version -> BigInt,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    content_embeddings (item_id, model, chunk) {
        item_id -> Text,
        owner_id -> Text,
        model -> Text,
        chunk -> Integer,
        vector -> Binary,
        stale -> Bool,
    }
}

diesel::table! {
    content_exports (id) {
        id -> Text,
        owner_id -> Text,
        status -> Text,
        attempts -> Integer,
        lease_until -> Nullable<Timestamp>,
        error -> Nullable<Text>,
        items -> BigInt,
        links -> BigInt,
        size -> BigInt,
        originals -> Text,
        created_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    content_items (seq) {
        seq -> Integer,
        id -> Text,
        owner_id -> Text,
        title -> Text,
        body -> Text,
        body_bytes -> BigInt,
        kind -> Text,
        tags -> Text,
        metadata -> Text,
        source_type -> Nullable<Text>,
        source_url -> Nullable<Text>,
        source_filename -> Nullable<Text>,
        source_sha256 -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    content_links (id) {
        id -> Text,
        owner_id -> Text,
        source_id -> Text,
        target_id -> Text,
        relation -> Text,
        weight -> Nullable<Double>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    content_tags (item_id, tag) {
        item_id -> Text,
        owner_id -> Text,
        tag -> Text,
    }
}

diesel::table! {
    content_webhooks (id) {
        id -> Text,
        owner_id -> Text,
        url -> Text,
        secret -> Text,
        cursor -> Integer,
        failures -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    embedding_models (owner_id, model) {
        owner_id -> Text,
        model -> Text,
        dims -> Integer,
        generation -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (owner_id, key) {
        owner_id -> Text,
        key -> Text,
        request_hash -> Text,
        item_id -> Text,
        created_at -> Timestamp,
        answer -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    closed_accounts,
    content_changes,
    content_chunks,
    content_embedding_jobs,
    content_embeddings,
    content_exports,
    content_items,
    content_links,
    content_tags,
    content_webhooks,
    embedding_models,
    idempotency_keys,
);
