//! The service's integration tests, in one test binary so that the crate is linked into a test
//! executable once rather than once per file. Each module is one area of behaviour (its own `//!`
//! says what it covers); the helpers are in `tests/common/`, shared with the binaries that stay
//! separate because a real process or a browser is their point (`browser.rs`, `privacy.rs`,
//! `shutdown.rs`). The few tests here that start the real binary (`common::binary`) can do so from
//! this binary too: `CARGO_BIN_EXE_telemetry-server` is set for every integration test.

#[path = "../common/mod.rs"]
mod common;

mod analytics;
mod geoip;
mod group_commit;
mod ingest;
mod landing_page;
mod legacy;
mod packing;
mod partitions;
mod production;
mod properties;
mod retention;
mod stats;
