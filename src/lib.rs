//! telemetry-server: the receiving end of Percona product telemetry.
//!
//! From the top down: `server` wires everything together at start-up; `http` is the whole HTTP
//! surface (routes, handlers, gRPC, pages, errors); `intake` takes every protocol's decoded reports,
//! turns the sender's address into a country (`geoip`, `client_ip`), forgets the address and queues
//! the reports for `writer`, which batches commits to `store` (all SQL; `stored_metrics` the form
//! metrics are stored in, `typed_metrics` the typed columns, `label` what may enter one).
//! `ingest` decodes the wire format (`legacy` the protocols of PMM 2) into the domain's `report`
//! (every metric key it reads spelled once in `metric_keys`), `body` reads and inflates
//! request bodies, `body_budget` bounds the request-body bytes held at once, `connections` the open
//! and idle connections, `rate_limit` each client's requests. The landing page is built from the
//! `catalogue` of known metric keys, `stats` is the public statistics page (its privacy rule in
//! `stats::model`), and both use the compiled-in `assets`. `reload` re-reads files on SIGHUP,
//! `retention` keeps the analytics rollups current and expires raw reports, and `synthetic`
//! generates test history. No modules import each other in a circle (`scripts/check-imports`).

// The one exception, memory-mapping the GeoIP database, carries its own `allow` and SAFETY comment.
#![deny(unsafe_code)]

pub mod assets;
pub mod body;
pub mod body_budget;
pub mod catalogue;
pub mod client_ip;
pub mod config;
pub mod connections;
pub mod geoip;
pub mod http;
pub mod ingest;
pub mod intake;
pub mod label;
pub mod legacy;
pub mod metric_keys;
pub mod observability;
pub mod rate_limit;
pub mod reload;
pub mod report;
pub mod retention;
pub mod server;
pub mod stats;
pub mod store;
pub mod stored_metrics;
pub mod synthetic;
pub mod typed_metrics;
pub mod writer;
