//! What a PMM server is set up with and what it monitors: its distribution, feature switches,
//! monitored MySQL / MongoDB / PostgreSQL services (with their versions), Grafana users and host
//! size, drawn when it is installed and drifting a little from day to day.

use rand::RngExt;
use rand::rngs::SmallRng;

use super::random::{geometric, pick};

/// Versions of the monitored services, each with its weight.
const MYSQL_VERSIONS: &[(&str, f64)] = &[
    ("5.7.42-46", 0.04),
    ("5.7.43-47", 0.05),
    ("5.7.44-48", 0.09),
    ("8.0.32-24", 0.05),
    ("8.0.34-26", 0.07),
    ("8.0.35-27", 0.08),
    ("8.0.36-28", 0.12),
    ("8.0.37-29", 0.1),
    ("8.0.39-30", 0.12),
    ("8.0.40-31", 0.08),
    ("8.4.0-1", 0.04),
    ("8.4.2-2", 0.07),
    ("8.4.3-3", 0.09),
];
const MONGODB_VERSIONS: &[(&str, f64)] = &[
    ("5.0.26-22", 0.1),
    ("6.0.15-12", 0.15),
    ("6.0.16-13", 0.2),
    ("7.0.12-7", 0.2),
    ("7.0.14-8", 0.25),
    ("8.0.4-1", 0.1),
];
const POSTGRESQL_VERSIONS: &[(&str, f64)] = &[
    ("13.16.0", 0.1),
    ("14.13.0", 0.15),
    ("15.8.0", 0.2),
    ("16.4.0", 0.25),
    ("16.6.0", 0.15),
    ("17.2.0", 0.15),
];
const DISTRIBUTIONS: &[(&str, f64)] = &[
    ("DOCKER", 0.78),
    ("AMI", 0.1),
    ("OVF", 0.08),
    ("AZURE", 0.03),
    ("DO", 0.01),
];

/// Alerting, Advisors, Backup Management, DBaaS, access control, updates disabled.
const FEATURE_ODDS: [f64; 6] = [0.55, 0.85, 0.2, 0.06, 0.12, 0.09];

/// With chance `odds`, one or more monitored services, each of a version drawn from `versions`.
fn pick_versions(
    rng: &mut SmallRng,
    odds: f64,
    stop: f64,
    versions: &[(&str, f64)],
) -> Vec<String> {
    if !rng.random_bool(odds) {
        return Vec::new();
    }
    let count = 1 + geometric(rng, stop).min(60);
    (0..count)
        .map(|_| (pick(rng, versions)).to_owned())
        .collect()
}

/// A PMM server: how it was installed, its feature switches and what it monitors.
pub(super) struct PmmServer {
    pub(super) distribution: &'static str,
    pub(super) features: [bool; 6],
    pub(super) mysql: Vec<String>,
    pub(super) mongodb: Vec<String>,
    pub(super) postgresql: Vec<String>,
    other_services: u32,
    pub(super) grafana_users: u32,
    pub(super) cpu_cores: u32,
}

impl PmmServer {
    pub(super) fn new(rng: &mut SmallRng) -> Self {
        let normal: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        Self {
            distribution: pick(rng, DISTRIBUTIONS),
            features: FEATURE_ODDS.map(|odds| rng.random_bool(odds)),
            mysql: pick_versions(rng, 0.65, 0.35, MYSQL_VERSIONS),
            mongodb: pick_versions(rng, 0.35, 0.45, MONGODB_VERSIONS),
            postgresql: pick_versions(rng, 0.3, 0.45, POSTGRESQL_VERSIONS),
            other_services: geometric(rng, 0.6),
            grafana_users: 1 + (0.8 + 1.1 * normal).exp().min(5000.0) as u32,
            cpu_cores: pick(rng, &[(2, 0.2), (4, 0.35), (8, 0.3), (16, 0.1), (32, 0.05)]),
        }
    }

    pub(super) fn services(&self) -> u32 {
        (self.mysql.len() + self.mongodb.len() + self.postgresql.len()) as u32 + self.other_services
    }

    /// Nodes grow with services: several services often share a host.
    pub(super) fn nodes(&self) -> u32 {
        1 + self.services().div_ceil(2)
    }

    /// A day's changes: now and then a feature switched, a database added or one removed.
    pub(super) fn drift(&mut self, rng: &mut SmallRng) {
        if rng.random_bool(0.003) {
            let feature = rng.random_range(0..self.features.len());
            self.features[feature] = !self.features[feature];
        }
        if rng.random_bool(0.002) {
            match rng.random_range(0..3) {
                0 => self.mysql.push(pick(rng, MYSQL_VERSIONS).to_owned()),
                1 => self.mongodb.push(pick(rng, MONGODB_VERSIONS).to_owned()),
                _ => self
                    .postgresql
                    .push(pick(rng, POSTGRESQL_VERSIONS).to_owned()),
            }
        }
        if rng.random_bool(0.001) {
            self.mysql.pop();
        }
    }
}
