//! The table of known metric keys: every key Percona's clients are known to send, with the
//! products that send it, its value shape and its meaning. Sources for every key are listed in
//! `docs/protocol.md` (§3.6 for PMM, §4–§6 for the telemetry agent, installer and Everest).

use super::{Group, MetricKey, ValueKind};
use crate::ingest::ProductFamily;

use Group::*;
use ProductFamily as F;
use ValueKind::*;

const PMM: &[ProductFamily] = &[F::Pmm];
const EVEREST: &[ProductFamily] = &[F::Everest];
/// Every family the installer (`call-home.sh`) and the telemetry agent report for.
pub(super) const ANY_DATABASE_PACKAGE: &[ProductFamily] = &[
    F::Ps,
    F::Pxc,
    F::Psmdb,
    F::Pbm,
    F::Postgresql,
    F::PerconaToolkit,
    F::Pxb,
    F::Pbs,
];
/// Families whose hosts run the telemetry agent.
const AGENT_HOSTS: &[ProductFamily] = &[F::Ps, F::Pxc, F::Psmdb, F::Postgresql, F::Pbs];
const DATABASE_SERVERS: &[ProductFamily] = &[F::Ps, F::Pxc, F::Psmdb, F::Postgresql];
const MYSQL: &[ProductFamily] = &[F::Ps, F::Pxc];
const MYSQL_AND_MONGODB: &[ProductFamily] = &[F::Ps, F::Pxc, F::Psmdb];
const MYSQL_AND_POSTGRESQL: &[ProductFamily] = &[F::Ps, F::Pxc, F::Postgresql];
const MONGODB: &[ProductFamily] = &[F::Psmdb];
const POSTGRESQL: &[ProductFamily] = &[F::Postgresql];

const fn pmm(
    key: &'static str,
    group: Group,
    value: ValueKind,
    meaning: &'static str,
) -> MetricKey {
    MetricKey::new(key, group, PMM, value, meaning)
}

/// Every known key. Keys are unique within a product family (a unit test checks this).
pub static METRIC_KEYS: &[MetricKey] = &[
    // PMM Server: the installation
    pmm("PMMServerVersion", PmmInstallation, Version, "PMM Server version."),
    pmm(
        "UpDuration",
        PmmInstallation,
        ProtoDuration,
        "How long PMM Server has been running since it last started.",
    ),
    pmm(
        "DistributionMethod",
        PmmInstallation,
        Text,
        "How PMM Server was installed: Docker, OVF, AMI, Azure or DigitalOcean.",
    ),
    pmm(
        "pmm_server_postgresql_version",
        PmmInstallation,
        Version,
        "Version of the PostgreSQL database inside PMM Server.",
    ),
    pmm(
        "pmm_server_data_retention_period",
        PmmInstallation,
        Integer,
        "How long PMM keeps metrics, in nanoseconds.",
    ),
    pmm(
        "pmm_server_first_service_added_sec",
        PmmInstallation,
        Decimal,
        "Seconds between installing PMM and adding the first database to monitor.",
    ),
    // PMM Server: feature switches
    pmm(
        "pmm_server_ia_enabled",
        FeatureSwitches,
        Flag,
        "Alerting (formerly Integrated Alerting) is switched on.",
    ),
    pmm(
        "pmm_server_stt_enabled",
        FeatureSwitches,
        Flag,
        "Advisors (formerly Security Threat Tool) are switched on.",
    ),
    pmm(
        "pmm_server_advisors_disabled",
        FeatureSwitches,
        Flag,
        "Advisors are switched off.",
    ),
    pmm(
        "pmm_server_backup_management_enabled",
        FeatureSwitches,
        Flag,
        "Backup Management is switched on.",
    ),
    pmm(
        "pmm_server_dbaas_enabled",
        FeatureSwitches,
        Flag,
        "Database as a Service (DBaaS, PMM 2) is switched on.",
    ),
    pmm(
        "pmm_server_access_control_enabled",
        FeatureSwitches,
        Flag,
        "Label-based access control is switched on.",
    ),
    pmm(
        "pmm_server_updates_disabled",
        FeatureSwitches,
        Flag,
        "Checking for PMM updates is switched off.",
    ),
    pmm(
        "pmm_server_alert_manager_enabled",
        FeatureSwitches,
        Flag,
        "An external Alertmanager is configured (whether one is, not its address).",
    ),
    pmm(
        "pmm_server_ha_enable",
        FeatureSwitches,
        Flag,
        "High-availability mode is switched on.",
    ),
    pmm(
        "pmm_server_ha_clickhouse_address",
        FeatureSwitches,
        Flag,
        "An external ClickHouse is used. Only the fact is sent (1), never the address.",
    ),
    pmm(
        "pmm_server_ha_postgres_address",
        FeatureSwitches,
        Flag,
        "An external PostgreSQL is used. Only the fact is sent (1), never the address.",
    ),
    pmm(
        "pmm_server_ha_vm_url",
        FeatureSwitches,
        Flag,
        "An external VictoriaMetrics is used. Only the fact is sent (1), never the address.",
    ),
    // PMM Server: monitored MySQL
    pmm(
        "mysql_version",
        MonitoredMySql,
        Version,
        "Version of a monitored MySQL server, one per server.",
    )
    .repeated(),
    pmm(
        "mysql_version_comment",
        MonitoredMySql,
        Text,
        "The server's own description of its build (for example \"Percona Server (GPL), Release 28\"), one per server.",
    )
    .repeated(),
    pmm(
        "mysql_plugins",
        MonitoredMySql,
        Json,
        "Installed MySQL plugins: library, licence, name, status and type.",
    ),
    pmm(
        "mysql_rocksdb_count",
        MonitoredMySql,
        Integer,
        "How many monitored MySQL servers use the RocksDB engine.",
    ),
    pmm(
        "mysql_global_variables_innodb_buffer_pool_size",
        MonitoredMySql,
        Integer,
        "InnoDB buffer pool size in bytes, one per server.",
    )
    .repeated(),
    pmm(
        "mysql_global_status_threads_running",
        MonitoredMySql,
        Decimal,
        "Average number of running threads over the last day, one per server.",
    )
    .repeated(),
    pmm(
        "mysql_global_status_queries_running",
        MonitoredMySql,
        Decimal,
        "Average rate of SELECT, INSERT, UPDATE and DELETE statements over the last day, one per server. Never the statements themselves.",
    )
    .repeated(),
    pmm(
        "mysql_innodb_space_used",
        MonitoredMySql,
        Integer,
        "Total size of InnoDB data and indexes, in bytes.",
    ),
    pmm(
        "pxc_cluster_nodes_count",
        MonitoredMySql,
        Integer,
        "Number of nodes in a Percona XtraDB Cluster, one per cluster.",
    )
    .repeated(),
    // PMM Server: monitored MongoDB
    pmm(
        "mongodb_version",
        MonitoredMongoDb,
        Version,
        "Version of a monitored MongoDB server, one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_edition",
        MonitoredMongoDb,
        Text,
        "MongoDB edition (for example Community or Enterprise), one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_vendor",
        MonitoredMongoDb,
        Text,
        "Who built the MongoDB server (MongoDB or Percona), one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_replicaset_members_count",
        MonitoredMongoDb,
        Integer,
        "Number of members in a replica set, one per replica set.",
    )
    .repeated(),
    pmm(
        "mongodb_replicaset_arbiters_count",
        MonitoredMongoDb,
        Integer,
        "Number of arbiters in a replica set, one per replica set.",
    )
    .repeated(),
    pmm(
        "mongodb_shards_count_in_cluster",
        MonitoredMongoDb,
        Integer,
        "Number of shards in a cluster (0 when not sharded), one per cluster.",
    )
    .repeated(),
    pmm(
        "mongodb_storage_engine_type",
        MonitoredMongoDb,
        Text,
        "Storage engine, such as wiredTiger or inMemory, one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_encryption_at_rest_enabled",
        MonitoredMongoDb,
        Flag,
        "Encryption at rest is switched on, one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_encryption_at_rest_type",
        MonitoredMongoDb,
        Text,
        "Where the encryption key comes from (key file, KMIP or Vault), one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_collector_scrape_time_general",
        MonitoredMongoDb,
        Decimal,
        "Milliseconds the MongoDB exporter needs for general statistics, one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_collector_scrape_time_diagnostic_data",
        MonitoredMongoDb,
        Decimal,
        "Milliseconds the MongoDB exporter needs for diagnostic data, one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_collector_scrape_time_collstats",
        MonitoredMongoDb,
        Decimal,
        "Milliseconds the MongoDB exporter needs for collection statistics, one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_collector_scrape_time_dbstats",
        MonitoredMongoDb,
        Decimal,
        "Milliseconds the MongoDB exporter needs for database statistics, one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_collector_scrape_time_indexstats",
        MonitoredMongoDb,
        Decimal,
        "Milliseconds the MongoDB exporter needs for index statistics, one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_collector_scrape_time_top",
        MonitoredMongoDb,
        Decimal,
        "Milliseconds the MongoDB exporter needs for top statistics, one per server.",
    )
    .repeated(),
    pmm(
        "mongodb_collector_scrape_time_replset_status",
        MonitoredMongoDb,
        Decimal,
        "Milliseconds the MongoDB exporter needs for replica set status, one per server.",
    )
    .repeated(),
    // PMM Server: monitored PostgreSQL
    pmm(
        "postgresql_version",
        MonitoredPostgreSql,
        Version,
        "Version of a monitored PostgreSQL server, one per server.",
    )
    .repeated(),
    pmm(
        "postgresql_db_count",
        MonitoredPostgreSql,
        Integer,
        "Number of databases on a PostgreSQL server, one per server.",
    )
    .repeated(),
    pmm(
        "postgresql_installed_extensions",
        MonitoredPostgreSql,
        Json,
        "Installed extensions: name, version, whether relocatable, and PMM's internal service ID.",
    ),
    pmm(
        "postgresql_available_extensions",
        MonitoredPostgreSql,
        Json,
        "Extensions available for installation: name, default and installed version, and PMM's internal service ID.",
    ),
    // PMM Server: monitored proxies
    pmm(
        "haproxy_version",
        MonitoredProxies,
        Version,
        "Version of a monitored HAProxy, one per service.",
    )
    .repeated(),
    pmm(
        "proxysql_version",
        MonitoredProxies,
        Version,
        "Version of a monitored ProxySQL, one per service.",
    )
    .repeated(),
    // PMM Server: Grafana
    pmm(
        "pmm_server_grafana_stat_total_users",
        GrafanaUsers,
        Integer,
        "Number of Grafana user accounts.",
    ),
    pmm(
        "pmm_server_grafana_stat_active_users",
        GrafanaUsers,
        Integer,
        "Number of users active in the last month.",
    ),
    pmm(
        "pmm_server_grafana_stat_daily_active_users",
        GrafanaUsers,
        Integer,
        "Number of users active in the last day.",
    ),
    pmm(
        "pmm_server_grafana_stat_total_orgs",
        GrafanaUsers,
        Integer,
        "Number of Grafana organisations.",
    ),
    pmm(
        "pmm_server_grafana_stat_totals_annotations",
        GrafanaUsers,
        Integer,
        "Number of annotations on dashboards.",
    ),
    pmm(
        "grafana_users_count",
        GrafanaUsers,
        Integer,
        "Number of Grafana users.",
    ),
    pmm(
        "grafana_dark_theme_users_count",
        GrafanaUsers,
        Integer,
        "Users who chose the dark theme.",
    ),
    pmm(
        "grafana_light_theme_users_count",
        GrafanaUsers,
        Integer,
        "Users who chose the light theme.",
    ),
    pmm(
        "grafana_default_theme_users_count",
        GrafanaUsers,
        Integer,
        "Users who kept the default theme.",
    ),
    pmm(
        "grafana_custom_dashboards_count",
        GrafanaUsers,
        Integer,
        "Number of dashboards people created themselves.",
    ),
    pmm(
        "grafana_custom_dashboards_pillar_combined",
        GrafanaUsers,
        Json,
        "Number of self-made dashboards per dashboard folder. The folder's title is included.",
    ),
    // PMM Server: counts
    pmm(
        "pmm_server_usage_nodes_count",
        NodesAndServices,
        Integer,
        "Number of monitored nodes.",
    ),
    pmm(
        "pmm_server_usage_services_count",
        NodesAndServices,
        Integer,
        "Number of monitored services (databases, proxies, external exporters).",
    ),
    pmm(
        "pmm_server_usage_environments_count",
        NodesAndServices,
        Integer,
        "Number of different environment labels in use.",
    ),
    pmm(
        "pmm_server_usage_clusters_count",
        NodesAndServices,
        Integer,
        "Number of different cluster labels in use.",
    ),
    pmm(
        "pmm_server_percona_roles_count",
        NodesAndServices,
        Integer,
        "Number of access-control roles defined.",
    ),
    pmm(
        "dbaas_services_count",
        NodesAndServices,
        Integer,
        "Number of services created through DBaaS (PMM 2).",
    ),
    pmm(
        "dbaas_clusters_count",
        NodesAndServices,
        Integer,
        "Number of database clusters created through DBaaS (PMM 2).",
    ),
    pmm(
        "k8s_clusters_count",
        NodesAndServices,
        Integer,
        "Number of Kubernetes clusters registered with PMM (PMM 2).",
    ),
    // PMM Server: agent versions
    pmm(
        "pmm_server_agents_version",
        AgentVersions,
        Json,
        "Every agent's type, PMM's internal ID of the node it runs on, and its version.",
    ),
    pmm(
        "pmm_server_pmm_agent_version",
        AgentVersions,
        Version,
        "Version of the pmm-agent built into PMM Server.",
    ),
    pmm(
        "pmm_client_pmm_agent_version",
        AgentVersions,
        Version,
        "Version of pmm-agent, one per monitored node.",
    )
    .repeated(),
    pmm(
        "pmm_client_vm_agent_version",
        AgentVersions,
        Version,
        "Version of vmagent, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_node_exporter_version",
        AgentVersions,
        Version,
        "Version of node_exporter, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_mysqld_exporter_version",
        AgentVersions,
        Version,
        "Version of mysqld_exporter, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_mongodb_exporter_version",
        AgentVersions,
        Version,
        "Version of mongodb_exporter, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_postgres_exporter_version",
        AgentVersions,
        Version,
        "Version of postgres_exporter, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_proxysql_exporter_version",
        AgentVersions,
        Version,
        "Version of proxysql_exporter, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_qan_mysql_perfschema_agent_version",
        AgentVersions,
        Version,
        "Version of the Query Analytics agent for MySQL Performance Schema, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_qan_mysql_slowlog_agent_version",
        AgentVersions,
        Version,
        "Version of the Query Analytics agent for the MySQL slow log, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_qan_mongodb_profiler_agent_version",
        AgentVersions,
        Version,
        "Version of the Query Analytics agent for the MongoDB profiler, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_qan_postgresql_pgstatements_agent_version",
        AgentVersions,
        Version,
        "Version of the Query Analytics agent for pg_stat_statements, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_qan_postgresql_pgstatmonitor_agent_version",
        AgentVersions,
        Version,
        "Version of the Query Analytics agent for pg_stat_monitor, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_rds_exporter_version",
        AgentVersions,
        Version,
        "Version of rds_exporter, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_external_exporter_version",
        AgentVersions,
        Version,
        "Version of an external exporter, one per agent.",
    )
    .repeated(),
    pmm(
        "pmm_client_azure_database_exporter_version",
        AgentVersions,
        Version,
        "Version of azure_database_exporter, one per agent.",
    )
    .repeated(),
    // PMM Server: node types
    pmm(
        "pmm_server_node_type",
        NodeTypes,
        Text,
        "Kind of node PMM Server runs on: generic, container, remote and so on.",
    ),
    pmm(
        "pmm_client_node_type",
        NodeTypes,
        Text,
        "Kind of each monitored node: generic, container, remote, remote_rds and so on.",
    )
    .repeated(),
    pmm(
        "pmm_client_node_os_name",
        NodeTypes,
        Text,
        "Operating system family of a monitored node (for example Linux), one per node.",
    )
    .repeated(),
    pmm(
        "pmm_client_node_os_version",
        NodeTypes,
        Version,
        "Kernel release of a monitored node, one per node.",
    )
    .repeated(),
    // PMM Server: its host
    pmm(
        "pmm_server_node_cpu_usage",
        PmmServerHost,
        Decimal,
        "CPU use of the PMM Server machine, in percent.",
    ),
    pmm(
        "pmm_server_node_cpu_architecture",
        PmmServerHost,
        Text,
        "CPU architecture such as x86_64 or aarch64, one per node PMM knows.",
    )
    .repeated(),
    pmm(
        "pmm_server_node_cpu_core_count",
        PmmServerHost,
        Integer,
        "Number of CPU cores of the PMM Server machine.",
    ),
    pmm(
        "pmm_server_node_memory_size",
        PmmServerHost,
        Integer,
        "Memory of the PMM Server machine, in bytes.",
    ),
    pmm(
        "pmm_server_node_memory_total_size",
        PmmServerHost,
        Integer,
        "Memory of the PMM Server machine, in bytes (name used by older PMM releases).",
    ),
    pmm(
        "pmm_server_node_memory_usage",
        PmmServerHost,
        Integer,
        "Memory in use on the PMM Server machine, in bytes.",
    ),
    pmm(
        "pmm_server_node_disk_capacity",
        PmmServerHost,
        Integer,
        "Disk capacity of the PMM Server machine, in bytes.",
    ),
    pmm(
        "pmm_server_node_os_name",
        PmmServerHost,
        Text,
        "Operating system family of the PMM Server machine.",
    ),
    pmm(
        "pmm_server_node_os_version",
        PmmServerHost,
        Version,
        "Kernel release of the PMM Server machine.",
    ),
    pmm(
        "pmm_server_node_os_pretty_name_and_version",
        PmmServerHost,
        Text,
        "Name and version of the PMM Server machine's Linux distribution.",
    ),
    // PMM Server: feature use
    pmm(
        "pmm_server_alerts_firing_max_24h",
        FeatureUsage,
        Integer,
        "Largest number of alerts firing at the same time in the last 24 hours.",
    ),
    pmm(
        "pmm_server_alert_rules_number",
        FeatureUsage,
        Integer,
        "Number of alert rules.",
    ),
    pmm(
        "advisor_checks_available",
        FeatureUsage,
        Json,
        "Advisor checks available, by check name.",
    ),
    pmm(
        "advisor_checks_executed_total",
        FeatureUsage,
        Json,
        "How often each advisor check ran.",
    ),
    pmm(
        "advisor_check_insights",
        FeatureUsage,
        Json,
        "How many findings each advisor check produced.",
    ),
    pmm(
        "advisor_check_execution_time_seconds",
        FeatureUsage,
        Json,
        "How long each advisor check took to run.",
    ),
    pmm(
        "advisor_checks_disabled",
        FeatureUsage,
        Json,
        "Names of the advisor checks that were switched off.",
    ),
    pmm(
        "backup_management_storage_types",
        FeatureUsage,
        Json,
        "Number of backup storage locations of each type (S3, local file system).",
    ),
    pmm(
        "backup_management_scheduled_tasks",
        FeatureUsage,
        Json,
        "Number of scheduled backup tasks of each type.",
    ),
    pmm(
        "backup_management_jobs_performed",
        FeatureUsage,
        Json,
        "Backup and restore jobs in the last 24 hours by type, mode, data model, status and storage type.",
    ),
    pmm(
        "pmm_dumps_performed",
        FeatureUsage,
        Json,
        "Diagnostic exports (pmm-dump) in the last 24 hours: status, number of services, time range and options.",
    ),
    pmm(
        "pmm_server_api_usage",
        FeatureUsage,
        Json,
        "How often each PMM API method was called and whether by PMM itself or from outside.",
    ),
    pmm(
        "ui-events-dashboards",
        FeatureUsage,
        Json,
        "Identifiers of the most used and of the slowest dashboards.",
    ),
    pmm(
        "ui-events-components",
        FeatureUsage,
        Json,
        "Screen components that were slow to load.",
    ),
    pmm(
        "ui-events-user-flow",
        FeatureUsage,
        Json,
        "A recorded step through the PMM interface, such as finishing a setup wizard.",
    )
    .repeated(),
    // Database packages: the host
    MetricKey::new(
        "pillar_version",
        DatabaseHost,
        ANY_DATABASE_PACKAGE,
        Version,
        "Version of the Percona product.",
    ),
    MetricKey::new(
        "OS",
        DatabaseHost,
        ANY_DATABASE_PACKAGE,
        Text,
        "Name and version of the operating system, such as \"Ubuntu 22.04.4 LTS\".",
    ),
    MetricKey::new(
        "hardware_arch",
        DatabaseHost,
        ANY_DATABASE_PACKAGE,
        Text,
        "Machine and processor architecture as `uname -mp` prints them, such as \"x86_64 x86_64\".",
    ),
    MetricKey::new(
        "deployment",
        DatabaseHost,
        ANY_DATABASE_PACKAGE,
        Text,
        "PACKAGE for an operating system package, DOCKER for a container image.",
    ),
    MetricKey::new(
        "installed_packages",
        DatabaseHost,
        AGENT_HOSTS,
        Json,
        "Names, versions and repositories of the installed Percona and related packages (percona-*, proxysql, pmm, etcd, haproxy, patroni, PostgreSQL packages).",
    ),
    // Database packages: every server
    MetricKey::new(
        "db_instance_id",
        DatabaseServer,
        DATABASE_SERVERS,
        Identifier,
        "The identifier the database server generated for itself (MySQL server_uuid, PostgreSQL system identifier, MongoDB object ID).",
    ),
    MetricKey::new(
        "uptime",
        DatabaseServer,
        DATABASE_SERVERS,
        Integer,
        "Seconds since the database server started.",
    ),
    MetricKey::new(
        "databases_count",
        DatabaseServer,
        MYSQL_AND_POSTGRESQL,
        Integer,
        "Number of databases, not counting the system ones.",
    ),
    MetricKey::new(
        "db_replication_id",
        DatabaseServer,
        MYSQL_AND_MONGODB,
        Identifier,
        "Identifier of the replication group or replica set the server belongs to, so that its members can be counted as one.",
    ),
    // Database packages: MySQL
    MetricKey::new(
        "active_plugins",
        MySqlServer,
        MYSQL,
        Json,
        "Names of the active server plugins.",
    ),
    MetricKey::new(
        "active_components",
        MySqlServer,
        MYSQL,
        Json,
        "Names of the installed server components.",
    ),
    MetricKey::new(
        "databases_size",
        MySqlServer,
        MYSQL,
        Integer,
        "Total size of data and indexes in bytes, not counting the system databases.",
    ),
    MetricKey::new(
        "se_engines_in_use",
        MySqlServer,
        MYSQL,
        Json,
        "Storage engines used by tables, such as InnoDB or RocksDB.",
    ),
    MetricKey::new(
        "replication_info",
        MySqlServer,
        MYSQL,
        Json,
        "Whether the server is a replication source or replica, and whether semi-synchronous.",
    ),
    MetricKey::new(
        "group_replication_info",
        MySqlServer,
        MYSQL,
        Json,
        "Group Replication role, single-primary mode and group size.",
    ),
    // Database packages: MongoDB
    MetricKey::new(
        "db_internal_id",
        MongoDbServer,
        MONGODB,
        Identifier,
        "Object ID the server stores in its own data files, to tell a restored copy from the original.",
    ),
    MetricKey::new(
        "db_cluster_id",
        MongoDbServer,
        MONGODB,
        Identifier,
        "Identifier of the sharded cluster the server belongs to.",
    ),
    MetricKey::new(
        "source",
        MongoDbServer,
        MONGODB,
        Text,
        "Which program wrote the report: mongod or mongos.",
    ),
    MetricKey::new(
        "storage_engine",
        MongoDbServer,
        MONGODB,
        Text,
        "Storage engine, such as wiredTiger or inMemory.",
    ),
    MetricKey::new(
        "replication_state",
        MongoDbServer,
        MONGODB,
        Text,
        "Replica set member state, such as PRIMARY or SECONDARY.",
    ),
    MetricKey::new(
        "shard_svr",
        MongoDbServer,
        MONGODB,
        Flag,
        "The server is a shard of a sharded cluster.",
    ),
    MetricKey::new(
        "config_svr",
        MongoDbServer,
        MONGODB,
        Flag,
        "The server is a config server of a sharded cluster.",
    ),
    MetricKey::new(
        "percona_features",
        MongoDbServer,
        MONGODB,
        Json,
        "Percona-specific features in use, such as audit logging or encryption.",
    ),
    MetricKey::new(
        "pro_features",
        MongoDbServer,
        MONGODB,
        Json,
        "Percona-specific features in use (name used by older releases).",
    ),
    MetricKey::new(
        "ldap_enabled",
        MongoDbServer,
        MONGODB,
        Flag,
        "LDAP authentication is switched on.",
    ),
    MetricKey::new(
        "ldap_authorization_enabled",
        MongoDbServer,
        MONGODB,
        Flag,
        "LDAP authorisation is switched on.",
    ),
    MetricKey::new(
        "ldap_sasl_authentication_enabled",
        MongoDbServer,
        MONGODB,
        Flag,
        "LDAP authentication through SASL is switched on.",
    ),
    MetricKey::new(
        "kerberos_enabled",
        MongoDbServer,
        MONGODB,
        Flag,
        "Kerberos authentication is switched on.",
    ),
    MetricKey::new(
        "oidc_enabled",
        MongoDbServer,
        MONGODB,
        Flag,
        "OpenID Connect authentication is switched on.",
    ),
    MetricKey::new(
        "x509_enabled",
        MongoDbServer,
        MONGODB,
        Flag,
        "X.509 certificate authentication is switched on.",
    ),
    // Database packages: PostgreSQL
    MetricKey::new(
        "settings",
        PostgreSqlServer,
        POSTGRESQL,
        Json,
        "Server settings that are numbers, switches or choices, with their units. Settings that hold free text (paths, names, addresses) are left out.",
    ),
    MetricKey::new(
        "databases",
        PostgreSqlServer,
        POSTGRESQL,
        Json,
        "Per database, identified by its internal number (OID), not its name: size in bytes and active extensions.",
    ),
    // Everest
    MetricKey::new("version", Everest, EVEREST, Version, "Everest version."),
    MetricKey::new(
        "pxc",
        Everest,
        EVEREST,
        Integer,
        "Number of MySQL (Percona XtraDB Cluster) database clusters Everest manages.",
    ),
    MetricKey::new(
        "psmdb",
        Everest,
        EVEREST,
        Integer,
        "Number of MongoDB database clusters Everest manages.",
    ),
    MetricKey::new(
        "postgresql",
        Everest,
        EVEREST,
        Integer,
        "Number of PostgreSQL database clusters Everest manages.",
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn keys_are_unique_per_family() {
        let mut seen = HashSet::new();
        for entry in METRIC_KEYS {
            for family in entry.families {
                assert!(
                    seen.insert((*family, entry.key)),
                    "{} listed twice for {family:?}",
                    entry.key
                );
            }
        }
    }

    #[test]
    fn every_entry_names_its_senders_and_meaning() {
        for entry in METRIC_KEYS {
            assert!(!entry.families.is_empty(), "{}", entry.key);
            assert!(!entry.meaning.is_empty(), "{}", entry.key);
            assert!(!entry.families.contains(&ProductFamily::Invalid));
        }
    }
}
