//! The keys Everest sends (`docs/protocol.md` §6).

use crate::catalogue::Group::*;
use crate::catalogue::MetricKey;
use crate::catalogue::ValueKind::*;
use crate::report::ProductFamily;

const EVEREST: &[ProductFamily] = &[ProductFamily::Everest];

pub(super) const KEYS: &[MetricKey] = &[
    // Everest
    MetricKey::new("version", Everest, EVEREST, Version, "Everest version."),
    MetricKey::new(
        "pxc",
        Everest,
        EVEREST,
        Integer,
        "Number of MySQL (Percona XtraDB Cluster) database clusters Everest manages.",
    ),
    MetricKey::new(
        "psmdb",
        Everest,
        EVEREST,
        Integer,
        "Number of MongoDB database clusters Everest manages.",
    ),
    MetricKey::new(
        "postgresql",
        Everest,
        EVEREST,
        Integer,
        "Number of PostgreSQL database clusters Everest manages.",
    ),
];
