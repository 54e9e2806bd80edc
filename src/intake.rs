//! What every protocol does with its decoded reports, below HTTP and gRPC alike: resolve the
//! sender's country, forget the address, and return once the reports are committed. What goes on
//! to the writer carries the country only, never the address.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;

use crate::client_ip::TrustedProxies;
use crate::geoip::GeoIp;
use crate::observability;
use crate::report::Report;
use crate::store::NewReport;
use crate::writer::{WriteError, Writer};

/// The parts intake needs, shared by every request.
#[derive(Clone)]
pub struct Intake {
    pub writer: Writer,
    pub geoip: Arc<GeoIp>,
    /// Whose forwarding headers name the client (the rate limiter asks them too).
    pub trusted_proxies: TrustedProxies,
}

impl Intake {
    /// Queues `reports` for commit and returns once they are
    /// committed. `peer` is `None` when the transport did not say (the country is then unknown);
    /// `headers` may name the client behind a trusted proxy. The writer's refusal is the only
    /// failure, and it says nothing of HTTP: the caller maps it to its protocol's answer.
    pub async fn accept(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        reports: Vec<Report>,
    ) -> Result<(), WriteError> {
        let country_code = peer
            .and_then(|peer| self.trusted_proxies.client_ip(peer, headers))
            .and_then(|ip| self.geoip.country(ip));
        let families: Vec<&'static str> = reports
            .iter()
            .map(|report| report.product_family.as_str())
            .collect();
        let reports = reports
            .into_iter()
            .map(|report| NewReport {
                report,
                country_code: country_code.clone(),
                received_at: None,
            })
            .collect();
        self.writer.write(reports).await?;
        for family in families {
            observability::reports_accepted(family, 1);
        }
        Ok(())
    }
}
