//! Which address a report came from: the TCP peer, unless that peer is a trusted reverse proxy, in
//! which case the right-most forwarded address that is not itself a trusted proxy. A client outside
//! the trusted ranges cannot choose its country by sending headers.
//!
//! Only one forwarding header is read, the one the proxies are configured to append to: a proxy
//! passes every other header through untouched, so a client could otherwise write its own
//! `Forwarded: for=...` behind a proxy that only appends to `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;
use clap::ValueEnum;
use ipnet::IpNet;

/// The header trusted proxies append the client address to.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx, HAProxy, cloud load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The configured trusted proxy ranges and the header they write.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    ranges: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { ranges, header }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.ranges.iter().any(|range| range.contains(&ip))
    }

    /// The client's address, or None when a trusted proxy forwarded something that is not an address
    /// (the client is then unknown, and so is its country).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return Some(peer);
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded_for(headers),
        };
        let Some(hops) = hops else {
            return Some(peer);
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            let ip = (*hop)?.to_canonical();
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// The `for=` parameters of every `Forwarded` header, in order; None if there is no such header.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all(FORWARDED) {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim().trim_matches('"'))
            });
            if let Some(node) = node {
                hops.push(parse_node(node));
            }
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// Every `X-Forwarded-For` entry, in order; None if there is no such header.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(value) => hops.extend(value.split(',').map(|entry| parse_node(entry.trim()))),
            Err(_) => hops.push(None),
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies_using(header: ForwardedHeader, ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect(), header)
    }

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        proxies_using(ForwardedHeader::XForwardedFor, ranges)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_cannot_choose_its_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "81.2.69.142")]);
        assert_eq!(
            trusted.client_ip(ip("203.0.113.9"), &h),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            proxies(&[]).client_ip(ip("10.0.0.1"), &h),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn right_most_untrusted_hop_wins() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.0.0/16"]);
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 81.2.69.142, 192.168.1.1")]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &h),
            Some(ip("81.2.69.142"))
        );
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "81.2.69.142:1234, 10.1.1.1"),
        ]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &split),
            Some(ip("81.2.69.142"))
        );
    }

    #[test]
    fn forwarded_header_and_mapped_addresses() {
        let trusted = proxies_using(ForwardedHeader::Forwarded, &["127.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            "for=1.1.1.1;proto=https, for=\"[2001:218::1]:4711\";by=127.0.0.1",
        )]);
        assert_eq!(
            trusted.client_ip(ip("::ffff:127.0.0.1"), &h),
            Some(ip("2001:218::1"))
        );
    }

    #[test]
    fn garbage_from_a_trusted_proxy_means_unknown() {
        let trusted = proxies(&["127.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), &h), None);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn only_the_configured_header_is_read() {
        // The proxy appended the real client to one header; the client wrote the other itself.
        let h = headers(&[
            ("x-forwarded-for", "89.160.20.112"),
            ("forwarded", "for=81.2.69.142"),
        ]);
        assert_eq!(
            proxies_using(ForwardedHeader::XForwardedFor, &["127.0.0.0/8"])
                .client_ip(ip("127.0.0.1"), &h),
            Some(ip("89.160.20.112"))
        );
        assert_eq!(
            proxies_using(ForwardedHeader::Forwarded, &["127.0.0.0/8"])
                .client_ip(ip("127.0.0.1"), &h),
            Some(ip("81.2.69.142"))
        );
        let only_forwarded = headers(&[("forwarded", "for=81.2.69.142")]);
        assert_eq!(
            proxies(&["127.0.0.0/8"]).client_ip(ip("127.0.0.1"), &only_forwarded),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn every_hop_trusted_gives_the_left_most() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &h), Some(ip("10.9.9.9")));
    }
}
