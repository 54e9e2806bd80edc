//! A report as the service understands it, whatever protocol brought it: its product family, its
//! metrics exactly as sent, and what is derived from them (the product's version, PMM's uptime),
//! derived in one place, [`Report::new`].

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::label::is_plausible_label;
use crate::metric_keys as keys;

/// `ProductFamily` from `reporter_api.proto`, in enum-number order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProductFamily {
    Invalid,
    Ps,
    Pxc,
    Psmdb,
    Pbm,
    Postgresql,
    Pmm,
    Everest,
    PerconaToolkit,
    Pxb,
    OperatorPxc,
    OperatorPostgresql,
    OperatorPsmdb,
    OperatorPs,
    Pbs,
}

impl ProductFamily {
    pub const ALL: [ProductFamily; 15] = [
        Self::Invalid,
        Self::Ps,
        Self::Pxc,
        Self::Psmdb,
        Self::Pbm,
        Self::Postgresql,
        Self::Pmm,
        Self::Everest,
        Self::PerconaToolkit,
        Self::Pxb,
        Self::OperatorPxc,
        Self::OperatorPostgresql,
        Self::OperatorPsmdb,
        Self::OperatorPs,
        Self::Pbs,
    ];

    /// The enum value's name, which is also what the database stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "PRODUCT_FAMILY_INVALID",
            Self::Ps => "PRODUCT_FAMILY_PS",
            Self::Pxc => "PRODUCT_FAMILY_PXC",
            Self::Psmdb => "PRODUCT_FAMILY_PSMDB",
            Self::Pbm => "PRODUCT_FAMILY_PBM",
            Self::Postgresql => "PRODUCT_FAMILY_POSTGRESQL",
            Self::Pmm => "PRODUCT_FAMILY_PMM",
            Self::Everest => "PRODUCT_FAMILY_EVEREST",
            Self::PerconaToolkit => "PRODUCT_FAMILY_PERCONA_TOOLKIT",
            Self::Pxb => "PRODUCT_FAMILY_PXB",
            Self::OperatorPxc => "PRODUCT_FAMILY_OPERATOR_PXC",
            Self::OperatorPostgresql => "PRODUCT_FAMILY_OPERATOR_POSTGRESQL",
            Self::OperatorPsmdb => "PRODUCT_FAMILY_OPERATOR_PSMDB",
            Self::OperatorPs => "PRODUCT_FAMILY_OPERATOR_PS",
            Self::Pbs => "PRODUCT_FAMILY_PBS",
        }
    }

    /// An unknown name decodes to `Invalid`, as protojson with `DiscardUnknown` does; the report is kept.
    pub fn from_name(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|family| family.as_str() == name)
            .unwrap_or(Self::Invalid)
    }

    /// An unknown number also decodes to `Invalid`: the family list grows with new Percona products.
    pub fn from_number(number: i64) -> Self {
        usize::try_from(number)
            .ok()
            .and_then(|index| Self::ALL.get(index).copied())
            .unwrap_or(Self::Invalid)
    }

    /// An enum number written as any JSON number with an integral value (`6`, `6.0`, `6e0`), which
    /// protojson reads as that integer; `None` for a fraction, which it refuses. Numbers no enum
    /// value has are `Invalid`, like unknown names (a documented leniency: Percona's validator
    /// refuses them).
    pub fn from_json_number(number: f64) -> Option<Self> {
        // The saturating cast maps numbers beyond i64 to no enum value, so to `Invalid`.
        (number.is_finite() && number.fract() == 0.0).then(|| Self::from_number(number as i64))
    }

    /// The metric that carries the version of the reporting product itself.
    pub fn version_metric_key(self) -> &'static str {
        match self {
            Self::Pmm => keys::PMM_SERVER_VERSION,
            Self::Everest => keys::EVEREST_VERSION,
            _ => keys::PILLAR_VERSION,
        }
    }

    /// The version a report of this family carries: its own key's first value, or, when that is
    /// absent or empty, `pillar_version` (Percona's `call-home.sh` sends only that, whatever the
    /// product). A value that is not a plain label ([`is_plausible_label`]) is no version: it stays
    /// in the metrics only, out of the version columns, their indexes and the rollups.
    pub fn version_in(self, metrics: &[Metric]) -> Option<String> {
        let present = |key| metric_value(metrics, key).filter(|value| !value.is_empty());
        present(self.version_metric_key())
            .or_else(|| present(keys::PILLAR_VERSION))
            .filter(|version| is_plausible_label(version))
            .map(str::to_owned)
    }
}

/// One key/value pair of a report, exactly as sent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Metric {
    pub key: String,
    pub value: String,
}

/// Which wire protocol a report came by, as `reports.protocol` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `POST /v1/telemetry/GenericReport`: PMM 3, the telemetry agent, `call-home.sh`, Everest.
    GenericReport,
    /// An event posted to `/v1/telemetry/Report` (PMM 2.25–2.27).
    ReportEvent,
    /// A `ServerMetric` posted to `/v1/telemetry/Report` (PMM 2.28–2.4x).
    ReportServerMetric,
    /// Anything received by the gRPC method (PMM 2.4–2.24).
    Grpc,
    /// A v1 plain-text report (PMM 2.0–2.27).
    V1,
    /// Generated history (`telemetry-server generate`), so that it can be told apart from real reports.
    Synthetic,
}

impl Protocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::GenericReport => "GenericReport",
            Self::ReportEvent => "Report/Event",
            Self::ReportServerMetric => "Report/ServerMetric",
            Self::Grpc => "gRPC",
            Self::V1 => "v1",
            Self::Synthetic => "synthetic",
        }
    }
}

/// A validated report, ready to be stored. Every protocol builds it with [`Report::new`], which
/// derives its version and uptime from its metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub protocol: Protocol,
    pub report_id: Uuid,
    pub instance_id: Uuid,
    pub product_family: ProductFamily,
    pub created_at: DateTime<Utc>,
    /// Version of the reporting product ([`ProductFamily::version_in`]).
    pub version: Option<String>,
    /// PMM's `UpDuration`, in whole seconds.
    pub up_duration_seconds: Option<i64>,
    /// Every pair in the order sent, duplicate keys included.
    pub metrics: Vec<Metric>,
}

impl Report {
    /// The report from its decoded fields: the version and PMM's uptime are read from its metrics,
    /// where PMM 2's protocols put their own fields too (as PMM 3 sends them).
    pub fn new(
        protocol: Protocol,
        report_id: Uuid,
        instance_id: Uuid,
        product_family: ProductFamily,
        created_at: DateTime<Utc>,
        metrics: Vec<Metric>,
    ) -> Self {
        let version = product_family.version_in(&metrics);
        let up_duration_seconds = match product_family {
            ProductFamily::Pmm => {
                metric_value(&metrics, keys::UP_DURATION).and_then(parse_up_duration)
            }
            _ => None,
        };
        Self {
            protocol,
            report_id,
            instance_id,
            product_family,
            created_at,
            version,
            up_duration_seconds,
            metrics,
        }
    }
}

fn metric_value<'a>(metrics: &'a [Metric], key: &str) -> Option<&'a str> {
    metrics
        .iter()
        .find(|metric| metric.key == key)
        .map(|metric| metric.value.as_str())
}

/// Parses PMM's `UpDuration`, a `google.protobuf.Duration` in prototext (`seconds:86401 nanos:318260114`,
/// sometimes with two spaces; either field is absent when zero) into whole seconds.
pub fn parse_up_duration(text: &str) -> Option<i64> {
    let mut seconds = 0;
    let mut nanos = 0;
    let mut saw_field = false;
    for part in text.split_whitespace() {
        let (name, number) = part.split_once(':')?;
        match name {
            "seconds" => seconds = number.parse::<i64>().ok()?,
            "nanos" => nanos = number.parse::<i32>().ok()?,
            _ => return None,
        }
        saw_field = true;
    }
    saw_field.then_some(())?;
    // A protobuf Duration may be negative and Percona accepts it, but no server has been up for
    // less than nothing, and analytics would count it.
    (seconds >= 0 && nanos >= 0).then_some(seconds)
}
