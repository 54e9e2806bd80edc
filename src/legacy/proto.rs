//! The legacy PMM 2 messages, written out by hand from Percona's .proto files (field numbers and types
//! as in `docs/protocol.md` §3.7): `percona.platform.telemetry.reporter.v1` (`ReportRequest`, `Event`,
//! `AnyEvent`) and `percona.platform.telemetry.events.pmm.v1` (`ServerUptimeEvent`, `ServerMetric`).
//! Public so that a gRPC client (the tests) can be built from the very same types.

/// `ReportRequest`: PMM 2.4–2.27 fill `events`, PMM 2.28+ fill `metrics`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReportRequest {
    #[prost(message, repeated, tag = "1")]
    pub events: Vec<Event>,
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<ServerMetric>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReportResponse {}

/// One event as the sender wrapped it: its own id and time around a serialized event.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// 16 random bytes, new for every event.
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub time: Option<prost_types::Timestamp>,
    #[prost(message, optional, tag = "3")]
    pub event: Option<AnyEvent>,
}

/// Like `google.protobuf.Any`, but the type URL has no `type.googleapis.com/` prefix and the event
/// may come as protobuf `binary` or as protojson text in `json`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyEvent {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub binary: Vec<u8>,
    #[prost(string, tag = "3")]
    pub json: String,
}

/// The only event PMM ever sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerUptimeEvent {
    /// The 16 bytes of the PMM server's telemetry UUID.
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(message, optional, tag = "3")]
    pub up_duration: Option<prost_types::Duration>,
    #[prost(enumeration = "DistributionMethod", tag = "4")]
    pub distribution_method: i32,
    /// `google.protobuf.BoolValue`: unset before PMM 2.17.
    #[prost(message, optional, tag = "5")]
    pub stt_enabled: Option<bool>,
    #[prost(message, optional, tag = "6")]
    pub ia_enabled: Option<bool>,
}

/// PMM 2.28+'s report: the same header fields as the event plus key/value metrics.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerMetric {
    /// 16 random bytes, new for every report.
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub time: Option<prost_types::Timestamp>,
    /// The 16 bytes of the PMM server's telemetry UUID.
    #[prost(bytes = "vec", tag = "3")]
    pub pmm_server_telemetry_id: Vec<u8>,
    #[prost(string, tag = "4")]
    pub pmm_server_version: String,
    #[prost(message, optional, tag = "5")]
    pub up_duration: Option<prost_types::Duration>,
    #[prost(enumeration = "DistributionMethod", tag = "6")]
    pub distribution_method: i32,
    #[prost(message, repeated, tag = "7")]
    pub metrics: Vec<server_metric::Metric>,
}

pub mod server_metric {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DistributionMethod {
    DistributionMethodInvalid = 0,
    Docker = 1,
    Ovf = 2,
    Ami = 3,
    Azure = 4,
    Do = 5,
}

impl DistributionMethod {
    pub const ALL: [DistributionMethod; 6] = [
        Self::DistributionMethodInvalid,
        Self::Docker,
        Self::Ovf,
        Self::Ami,
        Self::Azure,
        Self::Do,
    ];

    /// The enum value's name, as protojson writes it and as PMM 3 sends it in `DistributionMethod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DistributionMethodInvalid => "DISTRIBUTION_METHOD_INVALID",
            Self::Docker => "DOCKER",
            Self::Ovf => "OVF",
            Self::Ami => "AMI",
            Self::Azure => "AZURE",
            Self::Do => "DO",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == name)
    }
}
