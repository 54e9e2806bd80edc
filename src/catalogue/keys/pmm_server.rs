//! The keys PMM Server sends about itself and what it monitors: the installation, its feature
//! switches, and the MySQL, MongoDB, PostgreSQL and proxy services it watches (`docs/protocol.md`
//! §3.6).

use super::pmm;
use crate::catalogue::Group::*;
use crate::catalogue::MetricKey;
use crate::catalogue::ValueKind::*;

pub(super) const KEYS: &[MetricKey] = &[
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
];
