//! The schema, written by hand so one file serves both backends (see the migrations).

diesel::table! {
    master_keys (key_id) {
        key_id -> Text,
        verifier -> Text,
        active -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    secrets (id) {
        id -> BigInt,
        purpose -> Text,
        key_id -> Text,
        sealed -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    directory_profiles (id) {
        id -> BigInt,
        name -> Text,
        name_key -> Text,
        kind -> Text,
        settings -> Text,
        delete_users -> Bool,
        delete_groups -> Bool,
        groups_to_sync -> Text,
        domain -> Text,
        use_local_part -> Bool,
        mfa_by_default -> Bool,
        default_privileges -> Text,
        delete_threshold_count -> Integer,
        delete_threshold_percent -> Integer,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    dependent_configurations (id) {
        id -> BigInt,
        profile_id -> BigInt,
        kind -> Text,
        name -> Text,
        settings -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        profile_id -> Nullable<BigInt>,
        external_id -> Nullable<Text>,
        username -> Text,
        username_key -> Text,
        domain -> Text,
        full_name -> Text,
        auth_method -> Text,
        password_hash -> Nullable<Text>,
        disabled -> Bool,
        directory_disabled -> Bool,
        mfa_required -> Bool,
        totp_secret_id -> Nullable<BigInt>,
        totp_last_step -> Nullable<BigInt>,
        mfa_enrolled_at -> Nullable<BigInt>,
        search_text -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_sign_in_at -> Nullable<BigInt>,
        emails -> Text,
        privileges -> Text,
        sign_in_name_key -> Text,
        directory_name -> Text,
        search_version -> Integer,
    }
}

diesel::table! {
    directory_groups (id) {
        id -> BigInt,
        profile_id -> BigInt,
        external_id -> Text,
        name -> Text,
        description -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    group_memberships (group_id, user_id) {
        group_id -> BigInt,
        user_id -> BigInt,
    }
}

diesel::table! {
    schedules (id) {
        id -> BigInt,
        profile_id -> BigInt,
        kind -> Text,
        interval_minutes -> Nullable<Integer>,
        time_of_day -> Nullable<Text>,
        weekdays -> Text,
        time_zone -> Text,
        enabled -> Bool,
        next_run_at -> Nullable<BigInt>,
        last_run_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_run_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> BigInt,
        profile_id -> BigInt,
        triggered_by -> Text,
        started_by -> Text,
        dry_run -> Bool,
        status -> Text,
        phase -> Text,
        progress_users -> Integer,
        progress_groups -> Integer,
        users_created -> Integer,
        users_updated -> Integer,
        users_deleted -> Integer,
        users_unchanged -> Integer,
        groups_created -> Integer,
        groups_updated -> Integer,
        groups_deleted -> Integer,
        memberships_added -> Integer,
        memberships_removed -> Integer,
        error -> Nullable<Text>,
        plan -> Nullable<Text>,
        cancel_requested -> Bool,
        started_at -> BigInt,
        finished_at -> Nullable<BigInt>,
        heartbeat_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sync_leases (profile_id) {
        profile_id -> BigInt,
        run_id -> BigInt,
        owner -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        stage -> Text,
        mfa_failures -> Integer,
        client_ip -> Text,
        user_agent -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        code_hash -> Text,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sign_in_throttle (throttle_key) {
        throttle_key -> Text,
        failures -> Integer,
        window_started_at -> BigInt,
    }
}

diesel::table! {
    setup_tokens (token_hash) {
        token_hash -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    oidc_logins (id) {
        id -> BigInt,
        state_hash -> Text,
        binding_hash -> Text,
        profile_id -> BigInt,
        nonce -> Text,
        pkce_verifier -> Text,
        next -> Text,
        redirect_uri -> Text,
        client_ip -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    sign_in_domains (domain, profile_id) {
        domain -> Text,
        profile_id -> BigInt,
    }
}

diesel::table! {
    change_cursors (profile_id) {
        profile_id -> BigInt,
        users_link -> Text,
        groups_link -> Text,
        full_read_at -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        occurred_at -> BigInt,
        actor_user_id -> Nullable<BigInt>,
        actor_name -> Text,
        action -> Text,
        target -> Text,
        detail -> Text,
        client_ip -> Text,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(group_memberships -> users (user_id));
diesel::joinable!(group_memberships -> directory_groups (group_id));
diesel::joinable!(users -> directory_profiles (profile_id));
diesel::joinable!(directory_groups -> directory_profiles (profile_id));
diesel::joinable!(schedules -> directory_profiles (profile_id));
diesel::joinable!(sync_runs -> directory_profiles (profile_id));
diesel::joinable!(change_cursors -> directory_profiles (profile_id));

diesel::allow_tables_to_appear_in_same_query!(
    master_keys,
    secrets,
    directory_profiles,
    dependent_configurations,
    users,
    directory_groups,
    group_memberships,
    schedules,
    sync_runs,
    sync_leases,
    sessions,
    recovery_codes,
    sign_in_throttle,
    setup_tokens,
    oidc_logins,
    sign_in_domains,
    audit_events,
    change_cursors,
);
