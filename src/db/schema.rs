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
        /// Browser, OS and network, for new-device detection.
        device_key -> Text,
        /// The user had not used this device within the new-device window.
        new_device -> Bool,
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

diesel::table! {
    /// The event log: outbox, live stream and audit trail.
    session_events (id) {
        id -> BigInt,
        event_id -> Text,
        #[sql_name = "type"]
        kind -> Text,
        occurred_at -> Timestamp,
        /// The user's guid, or empty.
        user_id -> Text,
        /// The 17-character session id, or empty.
        session_id -> Text,
        /// The event's data, a JSON object.
        data -> Text,
    }
}

diesel::table! {
    /// Delivery state of each configured webhook endpoint.
    webhook_endpoints (id) {
        id -> Text,
        /// The last event delivered (or passed over by the endpoint's filter).
        cursor -> BigInt,
        /// Failed attempts at the next event.
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        last_error -> Text,
        lease_owner -> Text,
        lease_until -> Nullable<Timestamp>,
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
    session_counters,
    session_events,
    webhook_endpoints
);
