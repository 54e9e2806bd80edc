//! Per-client rate limit for the ingest endpoints: a token bucket (GCRA) per client, held in memory
//! only and keyed by a keyed hash of the client address, so that the limiter never holds an address
//! and its keys cannot be reversed or precomputed (the hash key is random per process).
//!
//! A client is a network prefix rather than one address: an IPv6 host is given a whole /64 and can
//! rotate through it at will, so per-address buckets would not limit it at all.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

/// Who shares a bucket and how full it may get.
#[derive(Clone, Copy, Debug)]
pub struct RateLimitSettings {
    /// Requests per client per minute on average; 0 turns the limit off.
    pub per_minute: u32,
    /// Requests a client may send at once before the rate applies.
    pub burst: u32,
    /// Leading bits of an IPv4 address that make one client (32: each address).
    pub ipv4_prefix: u8,
    /// Leading bits of an IPv6 address that make one client (64: each end-site subnet).
    pub ipv6_prefix: u8,
}

#[derive(Clone)]
pub struct ClientRateLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<u64>>,
    hasher: RandomState,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl ClientRateLimiter {
    /// None when the limit is off.
    pub fn new(settings: RateLimitSettings) -> Option<Self> {
        let per_minute = NonZeroU32::new(settings.per_minute)?;
        let burst = NonZeroU32::new(settings.burst).unwrap_or(per_minute);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Some(Self {
            limiter: Arc::new(RateLimiter::dashmap(quota)),
            hasher: RandomState::new(),
            ipv4_prefix: settings.ipv4_prefix.min(32),
            ipv6_prefix: settings.ipv6_prefix.min(128),
        })
    }

    /// Ok if the client may send now, otherwise how long it should wait.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        // Clients whose address is unknown share one bucket rather than escaping the limit.
        let network = client.map(|ip| {
            let prefix = match ip {
                IpAddr::V4(_) => self.ipv4_prefix,
                IpAddr::V6(_) => self.ipv6_prefix,
            };
            IpNet::new_assert(ip, prefix).trunc()
        });
        let key = self.hasher.hash_one(network);
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets clients whose buckets are full again, so memory follows the active clients only.
    pub fn forget_idle_clients(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Number of clients currently tracked.
    pub fn tracked_clients(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_minute: u32, burst: u32) -> RateLimitSettings {
        RateLimitSettings {
            per_minute,
            burst,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }

    #[test]
    fn burst_then_refusal_per_client() {
        let limiter = ClientRateLimiter::new(settings(60, 3)).unwrap();
        let a: IpAddr = [203, 0, 113, 1].into();
        let b: IpAddr = [203, 0, 113, 2].into();
        for _ in 0..3 {
            assert!(limiter.check(Some(a)).is_ok());
        }
        let wait = limiter.check(Some(a)).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(
            limiter.check(Some(b)).is_ok(),
            "another client has its own bucket"
        );
        assert_eq!(limiter.tracked_clients(), 2);
    }

    #[test]
    fn a_client_is_its_prefix() {
        let limiter = ClientRateLimiter::new(settings(60, 2)).unwrap();
        let rotating = [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff::9",
            "2001:db8:1:2:a::b",
        ];
        assert!(limiter.check(Some(rotating[0].parse().unwrap())).is_ok());
        assert!(limiter.check(Some(rotating[1].parse().unwrap())).is_ok());
        assert!(
            limiter.check(Some(rotating[2].parse().unwrap())).is_err(),
            "addresses of one /64 share a bucket"
        );
        assert!(
            limiter
                .check(Some("2001:db8:1:3::1".parse().unwrap()))
                .is_ok(),
            "the next /64 is another client"
        );

        let by_24 = ClientRateLimiter::new(RateLimitSettings {
            ipv4_prefix: 24,
            ..settings(60, 1)
        })
        .unwrap();
        assert!(by_24.check(Some([198, 51, 100, 1].into())).is_ok());
        assert!(by_24.check(Some([198, 51, 100, 2].into())).is_err());
        assert!(by_24.check(Some([198, 51, 101, 1].into())).is_ok());
    }

    #[test]
    fn zero_means_off() {
        assert!(ClientRateLimiter::new(settings(0, 10)).is_none());
    }
}
