//! The keys PMM Server sends about its size and use: Grafana users and dashboards, node, service
//! and cluster counts, agent versions, node types, the machine it runs on, and how its features are
//! used (`docs/protocol.md` §3.6).

use super::pmm;
use crate::catalogue::Group::*;
use crate::catalogue::MetricKey;
use crate::catalogue::ValueKind::*;

pub(super) const KEYS: &[MetricKey] = &[
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
];
