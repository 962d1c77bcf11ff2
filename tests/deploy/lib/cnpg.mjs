// What CloudNativePG's admission webhooks refuse beyond the CRD schema,
// copied from cloudnative-pg v1.29.2 (Apache 2.0): the PostgreSQL
// parameters a Cluster may not set (pkg/postgres/configuration.go,
// FixedConfigurationParameters) and the PgBouncer parameters a Pooler may
// set (internal/webhook/v1/pooler_webhook.go, AllowedPgbouncerGenericConfigurationParameters).

export const FIXED_POSTGRES_PARAMETERS = new Set(
    `allow_system_table_mods archive_mode bonjour bonjour_name cluster_name config_file data_directory
    data_sync_retry event_source external_pid_file hba_file hot_standby ident_file jit_provider
    listen_addresses logging_collector port primary_conninfo primary_slot_name recovery_target
    recovery_target_action recovery_target_inclusive recovery_target_lsn recovery_target_name
    recovery_target_time recovery_target_timeline recovery_target_xid restore_command
    shared_preload_libraries temp_tablespaces unix_socket_directories unix_socket_group
    unix_socket_permissions archive_cleanup_command archive_command log_destination log_directory
    log_file_mode log_filename log_rotation_age log_rotation_size log_truncate_on_rotation
    pg_failover_slots.primary_dsn pg_failover_slots.standby_slot_names promote_trigger_file
    recovery_end_command recovery_min_apply_delay restart_after_crash ssl ssl_ca_file ssl_cert_file
    ssl_crl_file ssl_dh_params_file ssl_ecdh_curve ssl_key_file ssl_passphrase_command
    ssl_passphrase_command_supports_reload ssl_prefer_server_ciphers stats_temp_directory
    synchronous_standby_names synchronized_standby_slots syslog_facility syslog_ident
    syslog_sequence_numbers syslog_split_messages`.split(/\s+/),
);

export const ALLOWED_PGBOUNCER_PARAMETERS = new Set(
    `application_name_add_host auth_type autodb_idle_timeout cancel_wait_timeout client_idle_timeout
    client_login_timeout client_tls_ciphers client_tls_sslmode client_tls13_ciphers default_pool_size
    disable_pqexec dns_max_ttl dns_nxdomain_ttl idle_transaction_timeout ignore_startup_parameters
    listen_backlog log_connections log_disconnections log_pooler_errors log_stats max_client_conn
    max_db_connections max_packet_size max_prepared_statements max_user_connections min_pool_size
    pkt_buf query_timeout query_wait_timeout reserve_pool_size reserve_pool_timeout sbuf_loopcnt
    server_check_delay server_check_query server_connect_timeout server_fast_close server_idle_timeout
    server_lifetime server_login_retry server_reset_query server_reset_query_always server_round_robin
    server_tls_ciphers server_tls13_ciphers server_tls_protocols server_tls_sslmode stats_period
    suspend_timeout tcp_defer_accept tcp_socket_buffer tcp_keepalive tcp_keepcnt tcp_keepidle
    tcp_keepintvl tcp_user_timeout track_extra_parameters verbose`.split(/\s+/),
);

// Findings for what the webhooks would refuse in these objects.
export function checkCnpg(objects) {
    const out = [];
    for (const o of objects) {
        if (o.apiVersion !== "postgresql.cnpg.io/v1") continue;
        const who = `${o.kind}/${o.metadata.name}`;
        if (o.kind === "Cluster") {
            const p = (o.spec.postgresql && o.spec.postgresql.parameters) || {};
            for (const k of Object.keys(p)) if (FIXED_POSTGRES_PARAMETERS.has(k)) out.push(`${who}: parameter ${k} is fixed by the operator`);
        }
        if (o.kind === "Pooler") {
            const p = (o.spec.pgbouncer && o.spec.pgbouncer.parameters) || {};
            for (const k of Object.keys(p)) if (!ALLOWED_PGBOUNCER_PARAMETERS.has(k)) out.push(`${who}: PgBouncer parameter ${k} is not allowed`);
        }
    }
    return out;
}
