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

    /// The client's address, or None when a trusted proxy said it does not know it (`unknown`, an
    /// obfuscated identifier, a `Forwarded` element without `for=`): the country is then unknown.
    ///
    /// The chain is read from the right, where our own proxies appended. A malformed element (not
    /// an address, bytes outside ASCII, broken quoting) makes everything left of it untrusted: the
    /// last address we could trust is taken as the client. Only that element is refused, so junk a
    /// client wrote to the left of the real address does not void the line.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return Some(peer);
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded_for(headers),
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            match *hop {
                Hop::Address(ip) => {
                    client = ip.to_canonical();
                    if !self.contains(client) {
                        break;
                    }
                }
                Hop::Unknown => return None,
                Hop::Malformed => break,
            }
        }
        Some(client)
    }
}

/// One element of a forwarding chain, as the proxy that wrote it saw its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    Address(IpAddr),
    /// The proxy did not know or would not say: `unknown`, an RFC 7239 obfuscated identifier
    /// (`_hidden`), or a `Forwarded` element without `for=`.
    Unknown,
    /// Not something a proxy writes: the chain cannot be followed past it.
    Malformed,
}

/// Every `X-Forwarded-For` entry, in order, over all lines of the header. Empty list elements are
/// skipped, as in every HTTP list (RFC 9110 section 5.6.1).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for entry in value.as_bytes().split(|&byte| byte == b',') {
            let entry = entry.trim_ascii();
            if entry.is_empty() {
                continue;
            }
            hops.push(match std::str::from_utf8(entry) {
                Ok(text) if entry.is_ascii() => node_hop(text),
                _ => Hop::Malformed,
            });
        }
    }
    hops
}

/// The hop each RFC 7239 `Forwarded` element describes, in order, over all lines of the header.
fn forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let mut hops = Vec::new();
    for value in headers.get_all(FORWARDED) {
        let mut rest = value.as_bytes();
        while !rest.is_empty() {
            let (element, after) = split_element(rest);
            rest = after;
            if let Some(hop) = forwarded_element(element) {
                hops.push(hop);
            }
        }
    }
    hops
}

/// Splits off the first element of a `Forwarded` list at the first comma outside a quoted string.
fn split_element(list: &[u8]) -> (&[u8], &[u8]) {
    let mut quoted = false;
    let mut escaped = false;
    for (index, &byte) in list.iter().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => return (&list[..index], &list[index + 1..]),
            _ => {}
        }
    }
    (list, &[])
}

/// `forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )`, with
/// `forwarded-pair = token "=" ( token / quoted-string )`. None for an empty list element.
fn forwarded_element(element: &[u8]) -> Option<Hop> {
    let element = element.trim_ascii();
    if element.is_empty() {
        return None;
    }
    let mut node = None;
    let mut rest = element;
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            break;
        }
        if let Some(after) = rest.strip_prefix(b";") {
            rest = after;
            continue;
        }
        let Some((name, value, after)) = forwarded_pair(rest) else {
            return Some(Hop::Malformed);
        };
        rest = after.trim_ascii_start();
        if !rest.is_empty() && !rest.starts_with(b";") {
            return Some(Hop::Malformed);
        }
        if name.eq_ignore_ascii_case(b"for") {
            if node.is_some() {
                return Some(Hop::Malformed);
            }
            node = Some(value);
        }
    }
    Some(match node {
        None => Hop::Unknown,
        Some(value) => match String::from_utf8(value) {
            Ok(text) if text.is_ascii() => node_hop(&text),
            _ => Hop::Malformed,
        },
    })
}

/// One `name=value` pair at the start of `input`: the name, the value with quoting removed, and what
/// follows. None when it is not well-formed.
fn forwarded_pair(input: &[u8]) -> Option<(&[u8], Vec<u8>, &[u8])> {
    let name_end = input.iter().position(|&byte| !is_tchar(byte))?;
    let (name, rest) = input.split_at(name_end);
    let rest = rest.strip_prefix(b"=")?;
    if name.is_empty() {
        return None;
    }
    if let Some(mut quoted) = rest.strip_prefix(b"\"") {
        let mut value = Vec::new();
        loop {
            match quoted {
                [b'"', after @ ..] => return Some((name, value, after)),
                [b'\\', escaped, after @ ..] => {
                    value.push(*escaped);
                    quoted = after;
                }
                [byte, after @ ..] if *byte != b'\\' => {
                    value.push(*byte);
                    quoted = after;
                }
                _ => return None,
            }
        }
    }
    let value_end = rest
        .iter()
        .position(|&byte| !is_tchar(byte))
        .unwrap_or(rest.len());
    let (value, after) = rest.split_at(value_end);
    (!value.is_empty()).then(|| (name, value.to_vec(), after))
}

/// RFC 9110 `tchar`: the characters of a token.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// What one node says: an address, the proxy not knowing (`unknown`, `_obfuscated`), or junk.
fn node_hop(node: &str) -> Hop {
    if node.eq_ignore_ascii_case("unknown") || node.starts_with('_') {
        return Hop::Unknown;
    }
    parse_node(node).map_or(Hop::Malformed, Hop::Address)
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
    fn forwarded_elements_without_for_count_as_a_hop() {
        // The proxy appended an element of its own without `for=`: it did not say who its client
        // was, so the `for=` the client wrote to the left must not be believed.
        let trusted = proxies_using(ForwardedHeader::Forwarded, &["127.0.0.0/8"]);
        let h = headers(&[("forwarded", "for=81.2.69.142, by=127.0.0.1;proto=https")]);
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), &h), None);
        let obfuscated = headers(&[("forwarded", "for=81.2.69.142, for=_hidden")]);
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), &obfuscated), None);
    }

    #[test]
    fn forwarded_quoted_strings_are_one_value() {
        let trusted = proxies_using(ForwardedHeader::Forwarded, &["127.0.0.0/8"]);
        let comma = headers(&[("forwarded", "for=\"81.2.69.142, for=89.160.20.112\"")]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &comma),
            Some(ip("127.0.0.1")),
            "a quoted comma does not start a new element"
        );
        let escaped = headers(&[(
            "forwarded",
            "for=81.2.69.142;ext=\"a\\\"b, c\", for=\"89.160.20.112\";proto=https",
        )]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &escaped),
            Some(ip("89.160.20.112"))
        );
        let hops = headers(&[("forwarded", "For=\"[2001:218::1]\" ; by=_p, FOR=10.0.0.1")]);
        assert_eq!(
            proxies_using(ForwardedHeader::Forwarded, &["127.0.0.0/8", "10.0.0.0/8"])
                .client_ip(ip("127.0.0.1"), &hops),
            Some(ip("2001:218::1"))
        );
    }

    #[test]
    fn malformed_elements_stop_the_chain_at_the_last_trusted_address() {
        let trusted = proxies_using(ForwardedHeader::Forwarded, &["127.0.0.0/8", "10.0.0.0/8"]);
        for broken in [
            "for=81.2.69.142, for=not-an-address, for=10.1.1.1",
            "for=81.2.69.142, for=1.2.3.4;for=5.6.7.8, for=10.1.1.1",
            "for=81.2.69.142, =1.2.3.4, for=10.1.1.1",
            "for=81.2.69.142, for=1.2.3.4 junk, for=10.1.1.1",
        ] {
            let h = headers(&[("forwarded", broken)]);
            assert_eq!(
                trusted.client_ip(ip("127.0.0.1"), &h),
                Some(ip("10.1.1.1")),
                "{broken}"
            );
        }
        // An unterminated quoted string runs to the end of the line: nothing in it is believed.
        let unterminated =
            headers(&[("forwarded", "for=10.1.1.1, for=\"81.2.69.142, for=10.2.2.2")]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &unterminated),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn non_ascii_refuses_only_its_element() {
        let trusted = proxies(&["127.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xe9, 89.160.20.112").unwrap(),
        );
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &h),
            Some(ip("89.160.20.112"))
        );
        let mut right_most = HeaderMap::new();
        right_most.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"89.160.20.112, 81.2.69.142\xe9").unwrap(),
        );
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &right_most),
            Some(ip("127.0.0.1")),
            "junk our own proxy passed on: nothing left of it is believed"
        );
        let mut forwarded = HeaderMap::new();
        forwarded.append(
            "forwarded",
            HeaderValue::from_bytes(b"for=\"\xe9\", for=89.160.20.112").unwrap(),
        );
        assert_eq!(
            proxies_using(ForwardedHeader::Forwarded, &["127.0.0.0/8"])
                .client_ip(ip("127.0.0.1"), &forwarded),
            Some(ip("89.160.20.112"))
        );
    }

    #[test]
    fn every_hop_trusted_gives_the_left_most() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &h), Some(ip("10.9.9.9")));
    }
}
