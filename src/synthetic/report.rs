//! What an installation's report carries: the metric keys and values each product sends (PMM
//! Server's settings, counts and monitored versions; Everest's cluster counts; the telemetry agent's
//! host and package facts), its version, uptime and country.

use chrono::{DateTime, Utc};
use rand::RngExt;

use super::calendar::Line;
use super::installation::Instance;
use super::random::random_uuid;
use crate::metric_keys as keys;
use crate::report::{Metric, ProductFamily, Protocol, Report};
use crate::store::NewReport;

impl Instance {
    /// The report the installation sends at `created_at`, with the keys its product really sends
    /// (PMM Server, Everest, or the telemetry agent of a database package).
    pub(super) fn report(&mut self, lines: &[Line], created_at: DateTime<Utc>) -> NewReport {
        let version = self.version(lines).to_owned();
        let versioned = self.rng.random_bool(0.995);
        let resolved = self.rng.random_bool(self.resolves);
        let up_duration = (created_at - self.started_at).num_seconds().max(1);
        let mut metrics = Vec::with_capacity(40);
        let mut add = |key: &str, value: String| {
            metrics.push(Metric {
                key: key.to_owned(),
                value,
            })
        };
        match (&self.pmm, self.family) {
            (Some(pmm), _) => {
                let pmm3 = version.starts_with("3.");
                let flag = |on: bool| if on { "1" } else { "0" }.to_owned();
                if versioned {
                    add(keys::PMM_SERVER_VERSION, version.clone());
                }
                add(
                    keys::UP_DURATION,
                    format!(
                        "seconds:{up_duration} nanos:{}",
                        self.rng.random_range(0..1_000_000_000)
                    ),
                );
                add(keys::DISTRIBUTION_METHOD, pmm.distribution.to_owned());
                add(keys::ALERTING_ENABLED, flag(pmm.features[0]));
                add(
                    "pmm_server_alert_rules_number",
                    self.rng.random_range(0..40).to_string(),
                );
                if pmm3 {
                    add(keys::ADVISORS_DISABLED, flag(!pmm.features[1]));
                } else {
                    add(keys::STT_ENABLED, flag(pmm.features[1]));
                }
                add(keys::BACKUP_MANAGEMENT_ENABLED, flag(pmm.features[2]));
                add("pmm_server_alert_manager_enabled", "false".to_owned());
                if !pmm3 {
                    add(keys::DBAAS_ENABLED, flag(pmm.features[3]));
                }
                add(keys::ACCESS_CONTROL_ENABLED, flag(pmm.features[4]));
                add(keys::UPDATES_DISABLED, flag(pmm.features[5]));
                add(
                    "pmm_server_data_retention_period",
                    "2592000000000000".to_owned(),
                );
                for mysql in &pmm.mysql {
                    add(keys::MYSQL_VERSION, mysql.clone());
                    add(
                        "mysql_version_comment",
                        format!(
                            "Percona Server (GPL), Release {}",
                            mysql.rsplit('-').next().unwrap_or("1")
                        ),
                    );
                }
                for mongodb in &pmm.mongodb {
                    add(keys::MONGODB_VERSION, mongodb.clone());
                    add("mongodb_edition", "Community".to_owned());
                }
                for postgresql in &pmm.postgresql {
                    add(keys::POSTGRESQL_VERSION, postgresql.clone());
                }
                add("pmm_server_postgresql_version", "14.13.0".to_owned());
                add(keys::GRAFANA_USERS_COUNT, pmm.grafana_users.to_string());
                add(keys::NODES_COUNT, pmm.nodes().to_string());
                add(keys::SERVICES_COUNT, pmm.services().to_string());
                add("pmm_server_node_cpu_core_count", pmm.cpu_cores.to_string());
                add(
                    "pmm_server_node_memory_size",
                    (u64::from(pmm.cpu_cores) * 4 * 1024 * 1024 * 1024).to_string(),
                );
                let agents: Vec<String> = (0..pmm.nodes())
                    .map(|node| {
                        format!(
                            r#"{{"1":"pmm-agent","2":"{}","3":"{version}"}}"#,
                            if node == 0 {
                                "pmm-server".to_owned()
                            } else {
                                format!("node-{node}")
                            }
                        )
                    })
                    .collect();
                add(
                    "pmm_server_agents_version",
                    format!(r#"{{"v":[{}]}}"#, agents.join(",")),
                );
            }
            (None, ProductFamily::Everest) => {
                if versioned {
                    add(keys::EVEREST_VERSION, version.clone());
                }
                add("pxc", self.rng.random_range(0..5).to_string());
                add("psmdb", self.rng.random_range(0..5).to_string());
                add("postgresql", self.rng.random_range(0..5).to_string());
            }
            (None, family) => {
                let package = match family {
                    ProductFamily::Ps => "percona-server-server",
                    ProductFamily::Pxc => "percona-xtradb-cluster-server",
                    ProductFamily::Psmdb => "percona-server-mongodb-server",
                    _ => "percona-postgresql-server",
                };
                add("hardware_arch", self.arch.to_owned());
                add(
                    "installed_packages",
                    format!(
                        r#"[{{"name":"percona-release","version":"1.0-29","repository":{{"name":"","component":""}}}},{{"name":"{package}","version":"{version}-1","repository":{{"name":"{}","component":"release"}}}},{{"name":"percona-telemetry-agent","version":"1.0.2-1","repository":{{"name":"telemetry","component":"release"}}}}]"#,
                        lines[self.line].name.replace('.', "")
                    ),
                );
                add("OS", self.os.to_owned());
                add(keys::DEPLOYMENT, self.deployment.to_owned());
                if versioned {
                    add(keys::PILLAR_VERSION, version.clone());
                }
                add("db_instance_id", self.database_instance_id.to_string());
                add("uptime", up_duration.to_string());
                add("databases_count", self.rng.random_range(1..40).to_string());
                add(
                    "databases_size",
                    self.rng.random_range(1_000..10_000_000_000u64).to_string(),
                );
                if matches!(family, ProductFamily::Ps | ProductFamily::Pxc) {
                    add(
                        "active_plugins",
                        r#"["binlog","mysql_native_password","caching_sha2_password","PERFORMANCE_SCHEMA"]"#.to_owned(),
                    );
                    add("se_engines_in_use", r#"["InnoDB"]"#.to_owned());
                }
            }
        }
        NewReport {
            report: Report::new(
                Protocol::Synthetic,
                random_uuid(&mut self.rng),
                self.id,
                self.family,
                created_at,
                metrics,
            ),
            country_code: self.country.filter(|_| resolved).map(str::to_owned),
            // Arriving as sent places the report on its own day (analytics.report_day()) and lets
            // retention age it as the history says.
            received_at: Some(created_at),
        }
    }
}
