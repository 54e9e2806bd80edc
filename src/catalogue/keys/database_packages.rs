//! The keys of the Percona database packages: what the telemetry agent and the installer report
//! about the host, and what each database server writes for the agent to send (`docs/protocol.md`
//! §4 and §5).

use crate::catalogue::Group::*;
use crate::catalogue::MetricKey;
use crate::catalogue::ValueKind::*;
use crate::report::ProductFamily;

use ProductFamily as F;

/// Every family the installer (`call-home.sh`) and the telemetry agent report for.
pub(in crate::catalogue) const ANY_DATABASE_PACKAGE: &[ProductFamily] = &[
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

pub(super) const KEYS: &[MetricKey] = &[
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
];
