//! The one catalogue of metric keys that Percona's clients are known to send, with what each one
//! means in plain words. The landing page renders it; anything that needs to know a key's product,
//! value shape or meaning (typed analytics columns, documentation, checks) reads the same table.
//!
//! Reports may carry keys that are not listed here (new client releases add keys); those are stored
//! as sent. Sources for every key are listed in `docs/protocol.md` (§3.6 for PMM, §4–§6 for the
//! telemetry agent, installer and Everest).
//!
//! This file holds the types; the table itself, [`METRIC_KEYS`], is in `keys.rs` and `keys/`.

mod keys;

use keys::ANY_DATABASE_PACKAGE;
pub use keys::METRIC_KEYS;

use crate::report::ProductFamily;

/// Which product's reports a group of keys comes from; the landing page has one sub-section each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    PmmServer,
    DatabasePackages,
    Everest,
}

impl Product {
    pub const ALL: [Product; 3] = [Self::PmmServer, Self::DatabasePackages, Self::Everest];

    pub fn title(self) -> &'static str {
        match self {
            Self::PmmServer => "Percona Monitoring and Management (PMM) Server",
            Self::DatabasePackages => "Percona database packages",
            Self::Everest => "Percona Everest",
        }
    }

    pub fn summary(self) -> &'static str {
        match self {
            Self::PmmServer => {
                "PMM Server sends one report a day. It describes the PMM installation itself and \
                 summarises what it monitors: counts, versions and which features are switched on."
            }
            Self::DatabasePackages => {
                "Percona Server for MySQL, Percona XtraDB Cluster, Percona Server for MongoDB and \
                 Percona Distribution for PostgreSQL write a small file each day that the \
                 percona-telemetry-agent service sends on, together with a few facts about the host. \
                 Installing a package or starting a container also sends a one-off report with the \
                 product version, operating system, architecture and deployment type."
            }
            Self::Everest => {
                "Everest reports its own version and how many database clusters of each engine it \
                 manages."
            }
        }
    }
}

/// A set of related keys, shown as one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    PmmInstallation,
    FeatureSwitches,
    MonitoredMySql,
    MonitoredMongoDb,
    MonitoredPostgreSql,
    MonitoredProxies,
    GrafanaUsers,
    NodesAndServices,
    AgentVersions,
    NodeTypes,
    PmmServerHost,
    FeatureUsage,
    DatabaseHost,
    DatabaseServer,
    MySqlServer,
    MongoDbServer,
    PostgreSqlServer,
    Everest,
}

impl Group {
    /// Every group, in the order the landing page shows them.
    pub const ALL: [Group; 18] = [
        Self::PmmInstallation,
        Self::FeatureSwitches,
        Self::MonitoredMySql,
        Self::MonitoredMongoDb,
        Self::MonitoredPostgreSql,
        Self::MonitoredProxies,
        Self::GrafanaUsers,
        Self::NodesAndServices,
        Self::AgentVersions,
        Self::NodeTypes,
        Self::PmmServerHost,
        Self::FeatureUsage,
        Self::DatabaseHost,
        Self::DatabaseServer,
        Self::MySqlServer,
        Self::MongoDbServer,
        Self::PostgreSqlServer,
        Self::Everest,
    ];

    pub fn product(self) -> Product {
        match self {
            Self::DatabaseHost
            | Self::DatabaseServer
            | Self::MySqlServer
            | Self::MongoDbServer
            | Self::PostgreSqlServer => Product::DatabasePackages,
            Self::Everest => Product::Everest,
            _ => Product::PmmServer,
        }
    }

    /// A stable identifier, usable as an HTML id or a column-name prefix.
    pub fn slug(self) -> &'static str {
        match self {
            Self::PmmInstallation => "pmm-installation",
            Self::FeatureSwitches => "feature-switches",
            Self::MonitoredMySql => "monitored-mysql",
            Self::MonitoredMongoDb => "monitored-mongodb",
            Self::MonitoredPostgreSql => "monitored-postgresql",
            Self::MonitoredProxies => "monitored-proxies",
            Self::GrafanaUsers => "grafana-users",
            Self::NodesAndServices => "nodes-and-services",
            Self::AgentVersions => "agent-versions",
            Self::NodeTypes => "node-types",
            Self::PmmServerHost => "pmm-server-host",
            Self::FeatureUsage => "feature-usage",
            Self::DatabaseHost => "database-host",
            Self::DatabaseServer => "database-server",
            Self::MySqlServer => "mysql-server",
            Self::MongoDbServer => "mongodb-server",
            Self::PostgreSqlServer => "postgresql-server",
            Self::Everest => "everest",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::PmmInstallation => "The PMM installation",
            Self::FeatureSwitches => "Features switched on or off",
            Self::MonitoredMySql => "Monitored MySQL and Percona XtraDB Cluster",
            Self::MonitoredMongoDb => "Monitored MongoDB",
            Self::MonitoredPostgreSql => "Monitored PostgreSQL",
            Self::MonitoredProxies => "Monitored proxies",
            Self::GrafanaUsers => "Grafana users and dashboards",
            Self::NodesAndServices => "Node, service and cluster counts",
            Self::AgentVersions => "Agent versions",
            Self::NodeTypes => "Node types and operating systems",
            Self::PmmServerHost => "The machine PMM Server runs on",
            Self::FeatureUsage => "How features are used",
            Self::DatabaseHost => "The database host",
            Self::DatabaseServer => "Every Percona database server",
            Self::MySqlServer => "Percona Server for MySQL and Percona XtraDB Cluster",
            Self::MongoDbServer => "Percona Server for MongoDB",
            Self::PostgreSqlServer => "Percona Distribution for PostgreSQL",
            Self::Everest => "Everest",
        }
    }

    pub fn summary(self) -> &'static str {
        match self {
            Self::PmmInstallation => "Version, uptime, how PMM was installed and a few settings.",
            Self::FeatureSwitches => {
                "Whether Alerting, Advisors, Backup Management, DBaaS, access control and update \
                 checks are switched on."
            }
            Self::MonitoredMySql => "Versions and size figures of the MySQL servers PMM monitors.",
            Self::MonitoredMongoDb => "Versions and topology of the MongoDB servers PMM monitors.",
            Self::MonitoredPostgreSql => {
                "Versions and extensions of the PostgreSQL servers PMM monitors."
            }
            Self::MonitoredProxies => "Versions of the HAProxy and ProxySQL services PMM monitors.",
            Self::GrafanaUsers => "How many people use PMM's dashboards; never who they are.",
            Self::NodesAndServices => "How many nodes, services and clusters PMM monitors.",
            Self::AgentVersions => "Versions of the PMM agents and exporters that are installed.",
            Self::NodeTypes => {
                "What kind of nodes are monitored and which operating systems they run."
            }
            Self::PmmServerHost => "Size and load of the machine that runs PMM Server.",
            Self::FeatureUsage => {
                "Counts of alerts, advisor checks, backups, exports, API calls and slow screens."
            }
            Self::DatabaseHost => {
                "Sent by the telemetry agent and by the one-off installation report."
            }
            Self::DatabaseServer => "Keys every Percona database server writes.",
            Self::MySqlServer => "Written by the telemetry component of the MySQL server.",
            Self::MongoDbServer => "Written by mongod and mongos.",
            Self::PostgreSqlServer => "Written by the percona_pg_telemetry extension.",
            Self::Everest => "Sent by Everest itself.",
        }
    }

    /// The catalogue entries of this group, in catalogue order.
    pub fn keys(self) -> impl Iterator<Item = &'static MetricKey> {
        METRIC_KEYS.iter().filter(move |entry| entry.group == self)
    }
}

/// The shape of a metric's value. Every value travels as a JSON string; this says how to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Free text such as an operating system name or an enum name.
    Text,
    /// A product version such as `8.0.36-28` or `3.2.0`.
    Version,
    /// A whole number rendered as text, possibly negative.
    Integer,
    /// A decimal number rendered as text (`2.0034722222222223`).
    Decimal,
    /// A yes/no value: `1`/`0` or `true`/`false` depending on the sender.
    Flag,
    /// A protobuf Duration in text format: `seconds:86401 nanos:318260114`.
    ProtoDuration,
    /// Serialized JSON (an array or an object).
    Json,
    /// An identifier generated by the product (a UUID, a database OID or system identifier).
    Identifier,
}

impl ValueKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Version => "version",
            Self::Integer => "whole number",
            Self::Decimal => "number",
            Self::Flag => "yes/no",
            Self::ProtoDuration => "duration",
            Self::Json => "JSON",
            Self::Identifier => "identifier",
        }
    }
}

/// One known metric key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricKey {
    /// The key exactly as sent.
    pub key: &'static str,
    pub group: Group,
    /// The product families whose reports carry this key.
    pub families: &'static [ProductFamily],
    pub value: ValueKind,
    /// Whether one report can carry the key several times (one per service, node or series).
    pub repeated: bool,
    /// What the value tells, in plain words.
    pub meaning: &'static str,
}

impl MetricKey {
    pub(super) const fn new(
        key: &'static str,
        group: Group,
        families: &'static [ProductFamily],
        value: ValueKind,
        meaning: &'static str,
    ) -> Self {
        Self {
            key,
            group,
            families,
            value,
            repeated: false,
            meaning,
        }
    }

    pub(super) const fn repeated(mut self) -> Self {
        self.repeated = true;
        self
    }

    /// The products that send this key, as a short human-readable label.
    pub fn sent_by(&self) -> String {
        if self.families == ANY_DATABASE_PACKAGE {
            return "any Percona database package".to_owned();
        }
        let names: Vec<&str> = self.families.iter().map(|f| product_name(*f).0).collect();
        names.join(", ")
    }
}

/// Short and full name of a product family as people know it.
pub fn product_name(family: ProductFamily) -> (&'static str, &'static str) {
    match family {
        ProductFamily::Invalid => ("unknown", "Unknown product"),
        ProductFamily::Ps => ("PS", "Percona Server for MySQL"),
        ProductFamily::Pxc => ("PXC", "Percona XtraDB Cluster"),
        ProductFamily::Psmdb => ("PSMDB", "Percona Server for MongoDB"),
        ProductFamily::Pbm => ("PBM", "Percona Backup for MongoDB"),
        ProductFamily::Postgresql => ("PostgreSQL", "Percona Distribution for PostgreSQL"),
        ProductFamily::Pmm => ("PMM", "Percona Monitoring and Management"),
        ProductFamily::Everest => ("Everest", "Percona Everest"),
        ProductFamily::PerconaToolkit => ("Toolkit", "Percona Toolkit"),
        ProductFamily::Pxb => ("PXB", "Percona XtraBackup"),
        ProductFamily::OperatorPxc => ("PXC Operator", "Percona Operator for MySQL based on PXC"),
        ProductFamily::OperatorPostgresql => ("PG Operator", "Percona Operator for PostgreSQL"),
        ProductFamily::OperatorPsmdb => ("PSMDB Operator", "Percona Operator for MongoDB"),
        ProductFamily::OperatorPs => ("PS Operator", "Percona Operator for MySQL"),
        ProductFamily::Pbs => ("PBS", "PBS"),
    }
}

/// Looks a key up in the reports of one product family.
pub fn find(family: ProductFamily, key: &str) -> Option<&'static MetricKey> {
    METRIC_KEYS
        .iter()
        .find(|entry| entry.key == key && entry.families.contains(&family))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::Group::*;
    use super::ValueKind::*;
    use super::*;

    #[test]
    fn every_group_has_keys_and_a_place_on_the_page() {
        for group in Group::ALL {
            assert!(group.keys().next().is_some(), "{group:?} is empty");
            assert!(Product::ALL.contains(&group.product()));
        }
        let slugs: HashSet<&str> = Group::ALL.iter().map(|g| g.slug()).collect();
        assert_eq!(slugs.len(), Group::ALL.len(), "slugs are unique");
    }

    #[test]
    fn lookup_respects_the_family() {
        assert_eq!(
            find(ProductFamily::Pmm, "pmm_server_stt_enabled").map(|k| k.group),
            Some(FeatureSwitches)
        );
        assert_eq!(
            find(ProductFamily::Everest, "version").map(|k| k.value),
            Some(Version)
        );
        assert!(find(ProductFamily::Pmm, "version").is_none());
        assert!(find(ProductFamily::Ps, "mongodb_version").is_none());
        assert_eq!(
            find(ProductFamily::Psmdb, "pillar_version").map(|k| k.group),
            Some(DatabaseHost)
        );
    }

    #[test]
    fn the_version_metric_of_every_family_is_catalogued() {
        for family in [
            ProductFamily::Pmm,
            ProductFamily::Everest,
            ProductFamily::Ps,
            ProductFamily::Postgresql,
        ] {
            let key = family.version_metric_key();
            assert_eq!(
                find(family, key).map(|k| k.value),
                Some(Version),
                "{family:?} {key}"
            );
        }
    }

    #[test]
    fn sent_by_labels() {
        let pillar = find(ProductFamily::Ps, "pillar_version").unwrap();
        assert_eq!(pillar.sent_by(), "any Percona database package");
        let plugins = find(ProductFamily::Ps, "active_plugins").unwrap();
        assert_eq!(plugins.sent_by(), "PS, PXC");
    }
}
