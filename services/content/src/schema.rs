// @generated automatically by Diesel CLI.

diesel::table! {
    content_items (id) {
        id -> Text,
        owner_id -> Text,
        title -> Text,
        body -> Text,
        kind -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}
