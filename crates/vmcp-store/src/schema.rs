// The tables of migrations/{sqlite,postgres}; both dialects share these definitions.

diesel::table! {
    mcp_servers (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        transport_type -> Text,
        config -> Text,
        last_connected -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        auto_connect -> Bool,
    }
}

diesel::table! {
    vmcps (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        active_config -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        naming -> Text,
        settings -> Text,
    }
}

diesel::table! {
    vmcp_servers (vmcp_id, server_id) {
        vmcp_id -> Text,
        server_id -> Text,
        priority -> Integer,
        position -> Integer,
    }
}

diesel::table! {
    operation_logs (id) {
        id -> Text,
        timestamp -> Timestamp,
        client_id -> Text,
        vmcp_id -> Nullable<Text>,
        method -> Text,
        mcp_server_id -> Nullable<Text>,
        target -> Nullable<Text>,
        arguments -> Nullable<Text>,
        result -> Nullable<Text>,
        result_truncated -> Bool,
        active_config_snapshot -> Nullable<Text>,
        duration_ms -> Double,
        success -> Bool,
        error -> Nullable<Text>,
        parent_log_id -> Nullable<Text>,
        source -> Text,
    }
}

diesel::joinable!(vmcp_servers -> vmcps (vmcp_id));
diesel::joinable!(vmcp_servers -> mcp_servers (server_id));
diesel::table! {
    operation_log_days (day, vmcp_id, client_id, method) {
        day -> Text,
        vmcp_id -> Text,
        client_id -> Text,
        method -> Text,
        calls -> BigInt,
        failed -> BigInt,
        duration_ms -> Double,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    mcp_servers,
    vmcps,
    vmcp_servers,
    operation_logs,
    operation_log_days,
    oauth_grants,
    oauth_states
);

diesel::table! {
    replicas (id) {
        id -> Text,
        started_at -> Timestamp,
        seen_at -> Timestamp,
        key_fingerprint -> Text,
        shared_key -> Bool,
        servers -> Text,
    }
}

diesel::table! {
    ended_sessions (transport_id) {
        transport_id -> Text,
        until -> Timestamp,
    }
}

diesel::table! {
    oauth_grants (server_id) {
        server_id -> Text,
        client -> Nullable<Text>,
        metadata -> Nullable<Text>,
        credentials -> Nullable<Text>,
        refreshing_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    oauth_states (csrf) {
        csrf -> Text,
        server_id -> Text,
        state -> Text,
        client -> Nullable<Text>,
        created_at -> Timestamp,
    }
}
