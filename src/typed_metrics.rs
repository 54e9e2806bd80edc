//! The known PMM and agent metric keys, typed once at ingest for `analytics.instance_days`.
//!
//! This is the same mapping as the SQL function `analytics.extract_metrics()` (which analysts can
//! call on `reports.metrics`), done here because the service has the metrics parsed already: doing
//! it in PostgreSQL meant unpacking every report's JSON again and was the largest part of the
//! batch statement's cost. `tests/api/analytics.rs` holds the two to the same answers.

use crate::label::is_plausible_label;
use crate::metric_keys as keys;
use crate::report::Metric;
use crate::stored_metrics::fits_text;

/// The typed fields of one report's metrics; `None` where the report did not carry the key or its
/// value does not parse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypedMetrics {
    pub distribution_method: Option<String>,
    pub alerting_enabled: Option<bool>,
    pub stt_enabled: Option<bool>,
    pub advisors_disabled: Option<bool>,
    pub backup_management_enabled: Option<bool>,
    pub dbaas_enabled: Option<bool>,
    pub access_control_enabled: Option<bool>,
    pub updates_disabled: Option<bool>,
    pub grafana_users: Option<i32>,
    pub nodes: Option<i32>,
    pub services: Option<i32>,
    pub mysql_versions: Option<Vec<String>>,
    pub mongodb_versions: Option<Vec<String>>,
    pub postgresql_versions: Option<Vec<String>>,
}

impl TypedMetrics {
    /// Single-valued keys take the first value sent; the per-service version keys take every
    /// plain value ([`is_plausible_label`]), in order.
    pub fn from_metrics(metrics: &[Metric]) -> Self {
        let first = |key: &str| {
            metrics
                .iter()
                .find(|metric| metric.key == key)
                .map(|metric| metric.value.as_str())
                .filter(|value| fits_text(value))
        };
        let every = |key: &str| {
            let values: Vec<String> = metrics
                .iter()
                .filter(|metric| metric.key == key && is_plausible_label(&metric.value))
                .map(|metric| metric.value.clone())
                .collect();
            (!values.is_empty()).then_some(values)
        };
        let flag = |key: &str| first(key).and_then(parse_flag);
        Self {
            distribution_method: first(keys::DISTRIBUTION_METHOD)
                .or_else(|| first(keys::DEPLOYMENT))
                .filter(|method| is_plausible_label(method))
                .map(str::to_owned),
            alerting_enabled: flag(keys::ALERTING_ENABLED),
            stt_enabled: flag(keys::STT_ENABLED),
            advisors_disabled: flag(keys::ADVISORS_DISABLED),
            backup_management_enabled: flag(keys::BACKUP_MANAGEMENT_ENABLED),
            dbaas_enabled: flag(keys::DBAAS_ENABLED),
            access_control_enabled: flag(keys::ACCESS_CONTROL_ENABLED),
            updates_disabled: flag(keys::UPDATES_DISABLED),
            // A present but unreadable first key does not fall back to the second, as in SQL's
            // coalesce over the raw values.
            grafana_users: first(keys::GRAFANA_USERS_COUNT)
                .or_else(|| first(keys::GRAFANA_STAT_TOTAL_USERS))
                .and_then(parse_count),
            nodes: first(keys::NODES_COUNT).and_then(parse_count),
            services: first(keys::SERVICES_COUNT)
                .or_else(|| first(keys::SERVICES_COUNT_EARLY_2X))
                .and_then(parse_count),
            mysql_versions: every(keys::MYSQL_VERSION),
            mongodb_versions: every(keys::MONGODB_VERSION),
            postgresql_versions: every(keys::POSTGRESQL_VERSION),
        }
    }
}

/// `analytics.parse_flag()`: 1/t/true and 0/f/false in any case, around spaces.
fn parse_flag(value: &str) -> Option<bool> {
    match value.trim_matches(' ').to_lowercase().as_str() {
        "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

/// `analytics.parse_count()`: up to nine ASCII digits with an optional fraction, rounded half up.
fn parse_count(value: &str) -> Option<i32> {
    let trimmed = value.trim_matches(' ');
    let (whole, fraction) = match trimmed.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (trimmed, None),
    };
    let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if whole.len() > 9 || !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    let whole: i32 = whole.parse().ok()?;
    let rounds_up = fraction.is_some_and(|f| f.as_bytes()[0] >= b'5');
    Some(whole + i32::from(rounds_up))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, &str)]) -> Vec<Metric> {
        pairs
            .iter()
            .map(|(key, value)| Metric {
                key: (*key).to_owned(),
                value: (*value).to_owned(),
            })
            .collect()
    }

    #[test]
    fn counts_parse_like_the_sql_function() {
        assert_eq!(parse_count("12"), Some(12));
        assert_eq!(parse_count(" 12 "), Some(12));
        assert_eq!(parse_count("2.5"), Some(3));
        assert_eq!(parse_count("2.49"), Some(2));
        assert_eq!(parse_count("999999999.5"), Some(1_000_000_000));
        for bad in [
            "",
            "1e3",
            "-1",
            "1.",
            ".5",
            "1234567890",
            "٣",
            "12\t",
            "0x10",
        ] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn flags_parse_like_the_sql_function() {
        for (value, expected) in [("1", Some(true)), (" TRUE ", Some(true)), ("t", Some(true))] {
            assert_eq!(parse_flag(value), expected);
        }
        for (value, expected) in [("0", Some(false)), ("False", Some(false)), ("yes", None)] {
            assert_eq!(parse_flag(value), expected);
        }
    }

    #[test]
    fn first_values_win_and_version_lists_keep_every_value() {
        let typed = TypedMetrics::from_metrics(&metrics(&[
            ("deployment", "PACKAGE"),
            ("DistributionMethod", "DOCKER"),
            ("pmm_server_ia_enabled", "1"),
            ("pmm_server_ia_enabled", "0"),
            ("grafana_users_count", "many"),
            ("pmm_server_grafana_stat_total_users", "7"),
            ("mysql_version", "8.0.36"),
            ("mysql_version", ""),
            ("mysql_version", "5.7.44"),
            ("mysql_version", &"5".repeat(3000)),
        ]));
        assert_eq!(typed.distribution_method.as_deref(), Some("DOCKER"));
        assert_eq!(typed.alerting_enabled, Some(true));
        assert_eq!(typed.grafana_users, None);
        assert_eq!(
            typed.mysql_versions,
            Some(vec!["8.0.36".to_owned(), "5.7.44".to_owned()])
        );
        assert_eq!(typed.mongodb_versions, None);
    }
}
