//! telemetry-server: the receiving end of Percona product telemetry.
//!
//! `ingest` decodes the wire format (`legacy` the protocols of PMM 2), `geoip` and `client_ip`
//! turn the sender's address into a country, `store` holds all SQL (`stored_metrics` the form metrics are stored in, `typed_metrics` the
//! typed columns, `label` what may enter one), `writer` batches commits, `body`
//! reads and inflates request bodies, `app` is the HTTP surface, `web` the landing page built from the `catalogue` of known metric keys,
//! `stats` the public statistics page (its privacy rule in `stats::model`),
//! `body_budget` bounds the request-body bytes held at once, `connections` the open and idle
//! connections, `rate_limit` each client's requests, `reload` re-reads files on SIGHUP, `retention` keeps the analytics rollups current and expires raw
//! reports, `synthetic` generates test history, and `server` wires them together at start-up.

// The one exception, memory-mapping the GeoIP database, carries its own `allow` and SAFETY comment.
#![deny(unsafe_code)]

pub mod app;
pub mod assets;
pub mod body;
pub mod body_budget;
pub mod catalogue;
pub mod client_ip;
pub mod config;
pub mod connections;
pub mod geoip;
pub mod ingest;
pub mod intake;
pub mod label;
pub mod legacy;
pub mod observability;
pub mod rate_limit;
pub mod reload;
pub mod retention;
pub mod server;
pub mod stats;
pub mod store;
pub mod stored_metrics;
pub mod synthetic;
pub mod typed_metrics;
pub mod web;
pub mod writer;
