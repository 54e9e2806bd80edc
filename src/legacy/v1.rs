//! The "v1" report PMM 2.0–2.27 posted to Percona Toolkit's version-check host `v.percona.com`:
//! plain text, one `<telemetry id>;<key>;<value>` line per item, in practice exactly
//!
//! ```text
//! 0b5ea5ad0a3f4e4e9e0c1c2d3e4f5a6b;OS;Ubuntu 18.04
//! 0b5ea5ad0a3f4e4e9e0c1c2d3e4f5a6b;PMM;2.20.0
//! ```

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ingest::{IngestError, invalid, parse_uuid, quoted_excerpt};
use crate::metric_keys as keys;
use crate::report::{Metric, ProductFamily, Protocol, Report};

/// Namespace of the report ids derived below: the version 5 UUID of the URL
/// `https://v.percona.com/` in the URL namespace (a unit test checks it).
const REPORT_ID_NAMESPACE: Uuid = Uuid::from_u128(0xe597d920_d5fb_5e5a_b104_bf8ebca6e0a9);

/// The line that names PMM's version; Percona Toolkit tools post other items to the same host, and
/// a body without this line is not a PMM report.
const PMM_KEY: &str = "PMM";

/// Decodes a v1 body received at `received_at`, which becomes the report's `created_at` (v1 carries
/// no time of its own).
pub fn parse_v1_report(body: &[u8], received_at: DateTime<Utc>) -> Result<Report, IngestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::EmptyBody);
    }
    let text =
        std::str::from_utf8(body).map_err(|_| invalid("request body", "is not UTF-8 text"))?;
    let mut instance: Option<(Uuid, usize)> = None;
    let mut version = None;
    let mut items = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let path = format!("line {number}");
        let mut fields = line.splitn(3, ';');
        let (Some(id), Some(key), Some(value)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(invalid(
                path,
                format!(
                    "{} is not of the form <telemetry id>;<key>;<value>",
                    quoted_excerpt(line)
                ),
            ));
        };
        let id = parse_uuid(id.trim()).ok_or_else(|| {
            invalid(
                &path,
                format!("telemetry id {} is not a UUID", quoted_excerpt(id)),
            )
        })?;
        match instance {
            None => instance = Some((id, number)),
            Some((first, first_line)) if first != id => {
                return Err(invalid(
                    path,
                    format!("telemetry id {id} differs from {first} on line {first_line}"),
                ));
            }
            Some(_) => {}
        }
        if key.is_empty() {
            return Err(invalid(path, "the key is empty"));
        }
        if key == PMM_KEY && version.is_none() {
            version = Some(value.to_owned());
        } else {
            items.push(Metric {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
    }
    let Some((instance_id, _)) = instance else {
        return Err(IngestError::EmptyBody);
    };
    let Some(version) = version else {
        return Err(invalid(
            "request body",
            "has no PMM line (<telemetry id>;PMM;<version>); only PMM's v1 reports are accepted",
        ));
    };
    let mut metrics = Vec::with_capacity(items.len() + 1);
    if !version.is_empty() {
        metrics.push(Metric {
            key: keys::PMM_SERVER_VERSION.into(),
            value: version.clone(),
        });
    }
    metrics.extend(items);
    Ok(Report::new(
        Protocol::V1,
        report_id(instance_id, received_at, &version),
        instance_id,
        ProductFamily::Pmm,
        received_at,
        metrics,
    ))
}

/// v1 reports carry no id, yet a server that did not see the 200 (timeout) sends the same report
/// again, and early PMM 2 builds sent it far more often than daily. The id is therefore derived,
/// deterministically, from what makes a report distinct: the instance, the UTC day it arrived and
/// the version it names. Re-sends on the same day collapse into one stored report (the first, as
/// stored ids are never overwritten), one report per day is what PMM's daily schedule produces
/// anyway, and an upgrade within a day still shows because the new version gives a new id.
fn report_id(instance_id: Uuid, received_at: DateTime<Utc>, version: &str) -> Uuid {
    let name = format!(
        "{}/{}/{version}",
        instance_id.simple(),
        received_at.format("%Y-%m-%d")
    );
    Uuid::new_v5(&REPORT_ID_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn namespace_is_the_url_uuid_of_the_v1_host() {
        assert_eq!(
            REPORT_ID_NAMESPACE,
            Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://v.percona.com/")
        );
    }

    #[test]
    fn pmm_body_becomes_a_pmm_report() {
        let body = b"0b5ea5ad0a3f4e4e9e0c1c2d3e4f5a6b;OS;Ubuntu 18.04\n0b5ea5ad0a3f4e4e9e0c1c2d3e4f5a6b;PMM;2.20.0\n";
        let report = parse_v1_report(body, at("2021-06-01T10:00:00Z")).unwrap();
        assert_eq!(
            report.instance_id.to_string(),
            "0b5ea5ad-0a3f-4e4e-9e0c-1c2d3e4f5a6b"
        );
        assert_eq!(report.version.as_deref(), Some("2.20.0"));
        assert_eq!(report.product_family, ProductFamily::Pmm);
        let pairs: Vec<(&str, &str)> = report
            .metrics
            .iter()
            .map(|m| (m.key.as_str(), m.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("PMMServerVersion", "2.20.0"), ("OS", "Ubuntu 18.04")]
        );
    }

    #[test]
    fn report_id_is_stable_within_a_day_only() {
        let body = b"0b5ea5ad0a3f4e4e9e0c1c2d3e4f5a6b;PMM;2.20.0\r\n";
        let morning = parse_v1_report(body, at("2021-06-01T00:00:01Z")).unwrap();
        let evening = parse_v1_report(body, at("2021-06-01T23:59:59Z")).unwrap();
        let next_day = parse_v1_report(body, at("2021-06-02T00:00:01Z")).unwrap();
        assert_eq!(morning.report_id, evening.report_id);
        assert_ne!(morning.report_id, next_day.report_id);
        let upgraded = parse_v1_report(
            b"0b5ea5ad0a3f4e4e9e0c1c2d3e4f5a6b;PMM;2.21.0\n",
            at("2021-06-01T23:59:59Z"),
        )
        .unwrap();
        assert_ne!(morning.report_id, upgraded.report_id);
    }

    #[test]
    fn refused_bodies() {
        let now = at("2021-06-01T00:00:00Z");
        let cases: [(&[u8], &str); 6] = [
            (b"\n\n", "empty"),
            (b"0b5ea5ad0a3f4e4e9e0c1c2d3e4f5a6b;OS;Ubuntu\n", "has no PMM line"),
            (b"0b5ea5ad0a3f4e4e9e0c1c2d3e4f5a6b PMM 2.20.0\n", "line 1: "),
            (b"nope;PMM;2.20.0\n", "line 1: telemetry id \"nope\" is not a UUID"),
            (
                b"0b5ea5ad0a3f4e4e9e0c1c2d3e4f5a6b;OS;x\nffffffff0a3f4e4e9e0c1c2d3e4f5a6b;PMM;2.20.0\n",
                "line 2: telemetry id ffffffff-0a3f-4e4e-9e0c-1c2d3e4f5a6b differs",
            ),
            (b"\xff\xfe;PMM;2\n", "not UTF-8"),
        ];
        for (body, expected) in cases {
            let error = parse_v1_report(body, now).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
    }
}
