//! The metric keys the service reads, each spelled once. Decoders, the typed columns
//! (`typed_metrics`), the landing page's catalogue and the generator read these; the SQL side,
//! `analytics.extract_metrics()`, must spell them again, and `tests/api/analytics.rs`
//! (`metric_keys_match_the_sql_extraction`) holds it to [`TYPED`].

/// PMM's own version (PMM 3 sends it as a metric; PMM 2 in a field of its own).
pub const PMM_SERVER_VERSION: &str = "PMMServerVersion";
/// Everest's version.
pub const EVEREST_VERSION: &str = "version";
/// The version of a database product, and of `call-home.sh` pings of every product.
pub const PILLAR_VERSION: &str = "pillar_version";
/// PMM's uptime, a protobuf Duration in prototext (`seconds:86401 nanos:318260114`).
pub const UP_DURATION: &str = "UpDuration";
/// How PMM was installed (`DOCKER`, `OVF`, `AMI`, ...).
pub const DISTRIBUTION_METHOD: &str = "DistributionMethod";
/// How a database product was installed (`PACKAGE`, `DOCKER`), from the agent.
pub const DEPLOYMENT: &str = "deployment";
/// PMM's alerting, named after its first name, Integrated Alerting.
pub const ALERTING_ENABLED: &str = "pmm_server_ia_enabled";
/// PMM's Advisors before 2.28, named after their first name, Security Threat Tool.
pub const STT_ENABLED: &str = "pmm_server_stt_enabled";
pub const ADVISORS_DISABLED: &str = "pmm_server_advisors_disabled";
pub const BACKUP_MANAGEMENT_ENABLED: &str = "pmm_server_backup_management_enabled";
pub const DBAAS_ENABLED: &str = "pmm_server_dbaas_enabled";
pub const ACCESS_CONTROL_ENABLED: &str = "pmm_server_access_control_enabled";
pub const UPDATES_DISABLED: &str = "pmm_server_updates_disabled";
pub const GRAFANA_USERS_COUNT: &str = "grafana_users_count";
/// The Grafana user count as PMM sent it before `grafana_users_count`.
pub const GRAFANA_STAT_TOTAL_USERS: &str = "pmm_server_grafana_stat_total_users";
pub const NODES_COUNT: &str = "pmm_server_usage_nodes_count";
pub const SERVICES_COUNT: &str = "pmm_server_usage_services_count";
/// The service count as early PMM 2.x builds named it.
pub const SERVICES_COUNT_EARLY_2X: &str = "pmm_server_pmm_usage_services_count";
/// One pair per monitored MySQL service, and likewise for MongoDB and PostgreSQL.
pub const MYSQL_VERSION: &str = "mysql_version";
pub const MONGODB_VERSION: &str = "mongodb_version";
pub const POSTGRESQL_VERSION: &str = "postgresql_version";

/// Every key `analytics.extract_metrics()` and [`crate::typed_metrics::TypedMetrics`] read.
pub const TYPED: &[&str] = &[
    DISTRIBUTION_METHOD,
    DEPLOYMENT,
    ALERTING_ENABLED,
    STT_ENABLED,
    ADVISORS_DISABLED,
    BACKUP_MANAGEMENT_ENABLED,
    DBAAS_ENABLED,
    ACCESS_CONTROL_ENABLED,
    UPDATES_DISABLED,
    GRAFANA_USERS_COUNT,
    GRAFANA_STAT_TOTAL_USERS,
    NODES_COUNT,
    SERVICES_COUNT,
    SERVICES_COUNT_EARLY_2X,
    MYSQL_VERSION,
    MONGODB_VERSION,
    POSTGRESQL_VERSION,
];
