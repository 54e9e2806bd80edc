//! Per-client rate limit for the ingest endpoints: a token bucket (GCRA) per client, held in memory
//! only and keyed by a keyed hash of the client address, so that the limiter never holds an address
//! and its keys cannot be reversed or precomputed (the hash key is random per process).

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

#[derive(Clone)]
pub struct ClientRateLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<u64>>,
    hasher: RandomState,
}

impl ClientRateLimiter {
    /// `per_minute` requests per client on average, bursts up to `burst`. None when `per_minute` is 0 (off).
    pub fn new(per_minute: u32, burst: u32) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_minute);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Some(Self {
            limiter: Arc::new(RateLimiter::dashmap(quota)),
            hasher: RandomState::new(),
        })
    }

    /// Ok if the client may send now, otherwise how long it should wait.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        // Clients whose address is unknown share one bucket rather than escaping the limit.
        let key = self.hasher.hash_one(client);
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

    #[test]
    fn burst_then_refusal_per_client() {
        let limiter = ClientRateLimiter::new(60, 3).unwrap();
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
    fn zero_means_off() {
        assert!(ClientRateLimiter::new(0, 10).is_none());
    }
}
