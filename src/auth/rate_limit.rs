//! Login and sign-up rate limits, per client IP and per account, with governor's keyed GCRA
//! limiters. A refused attempt answers 429 with `Retry-After` and costs no password hash.
//!
//! The client IP is the TCP peer: behind a reverse proxy every client shares the proxy's
//! address, so set the per-IP limit with that in mind (the per-account limit still holds).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::metrics::Metrics;

pub struct AuthLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
    metrics: Metrics,
}

impl AuthLimiter {
    pub fn new(per_ip_per_minute: u32, per_account_per_minute: u32, metrics: Metrics) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
            metrics,
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.refuse_if_limited(self.per_ip.check_key(&ip))
    }

    /// `account` is the normalised email.
    pub fn check_account(&self, account: &str) -> Result<(), ApiError> {
        self.refuse_if_limited(self.per_account.check_key(&account.to_owned()))
    }

    /// Forgets keys whose limit has fully recovered and gives back the table space a burst of
    /// keys took, bounding memory (run periodically).
    pub fn forget_idle(&self) {
        self.per_ip.retain_recent();
        self.per_ip.shrink_to_fit();
        self.per_account.retain_recent();
        self.per_account.shrink_to_fit();
    }

    fn refuse_if_limited(
        &self,
        outcome: Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
    ) -> Result<(), ApiError> {
        outcome.map_err(|not_until| {
            self.metrics.rate_limited.inc();
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::too_many_requests(wait.as_secs_f64().ceil() as u64)
        })
    }
}
