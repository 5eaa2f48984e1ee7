//! Table definitions shared by both stores (see `migrations/`).

diesel::table! {
    users (id) {
        id -> BigInt,
        guid -> Text,
        username -> Text,
        username_key -> Text,
        name -> Text,
        password_hash -> Text,
        roles -> Text,
        active -> Bool,
        totp_secret -> Nullable<Text>,
        totp_enabled -> Bool,
        totp_last_step -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        /// Sessions not ended, kept by triggers on `sessions`.
        unended_sessions -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        session_id -> Text,
        user_id -> BigInt,
        token_hash -> Text,
        token_hint -> Text,
        description -> Text,
        device_type -> Text,
        device_name -> Text,
        device_version -> Text,
        device_long_version -> Text,
        os_name -> Text,
        os_version -> Text,
        device_category -> Text,
        ip -> Text,
        host -> Text,
        instance_id -> Text,
        login_at -> Timestamp,
        last_activity_at -> Timestamp,
        expires_at -> Timestamp,
        idle_timeout_seconds -> BigInt,
        permanent -> Bool,
        logout_at -> Nullable<Timestamp>,
        logout_by -> Nullable<Text>,
        two_factor_until -> Nullable<Timestamp>,
        search_term -> Text,
        api_defaults -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    backup_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        code_hash -> Text,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    auth_failures (id) {
        id -> BigInt,
        scope -> Text,
        key -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    server_settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    /// Counters kept by triggers on `sessions` (see the migration
    /// `session_counters`); `unended` is the number of sessions not ended.
    session_counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(backup_codes -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    backup_codes,
    auth_failures,
    server_settings,
    session_counters
);
