//! The rate limits of an instance (apis.md A7): the account-wide one, a fixed window per
//! account with the quota headers every answer carries; the incremental exports' own one, a
//! second window on top of it; and the per-record update limiter single-record updates pass.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};

use super::errors::ZendeskError;
use super::headers::ceil_secs;
use crate::config::SandboxConfig;

/// The paths the incremental exports' own limit counts (apis.md A7, A10).
const INCREMENTAL_PREFIX: &str = "/api/v2/incremental/";

pub(crate) struct Limits {
    account: Mutex<FixedWindow>,
    incremental: Mutex<FixedWindow>,
    records: Mutex<RecordLimiter>,
}

impl Limits {
    /// Both per-minute windows are `zendesk_rate_limit_window` long, so a test that shortens
    /// it shortens a client's wait on either.
    pub(crate) fn from_config(config: &SandboxConfig) -> Self {
        let window = config.zendesk_rate_limit_window;
        Limits {
            account: Mutex::new(FixedWindow::new(
                config.zendesk_rate_limit_per_minute,
                window,
            )),
            incremental: Mutex::new(FixedWindow::new(
                config.incremental_rate_limit_per_minute,
                window,
            )),
            records: Mutex::new(RecordLimiter {
                limit: config.record_update_limit_per_minute,
                calls: BTreeMap::new(),
            }),
        }
    }

    /// Counts one request against the account's window.
    pub(crate) fn admit_request(&self) -> Admission {
        self.account
            .lock()
            .expect("rate limit lock")
            .admit(Instant::now())
    }

    /// Counts a request to `path` (as the instance's router sees it: `/api/v2/…`, without
    /// `.json`) against the incremental exports' own window when it is one of theirs. It
    /// comes on top of the account limit: the request has already been counted there. Over
    /// it, the account limit's 429 (the docs say the mechanism "behaves identically").
    pub(crate) fn admit_endpoint(&self, path: &str) -> Result<(), ZendeskError> {
        if !path.starts_with(INCREMENTAL_PREFIX) {
            return Ok(());
        }
        match self
            .incremental
            .lock()
            .expect("incremental rate limit lock")
            .admit(Instant::now())
        {
            Admission::Throttled { retry_after, .. } => {
                Err(ZendeskError::RateLimited { retry_after })
            }
            Admission::Unlimited | Admission::Allowed(_) => Ok(()),
        }
    }

    /// Counts one single-record update of `record` (e.g. `"organization:42"`).
    pub(crate) fn admit_record_update(&self, record: &str) -> Result<(), ZendeskError> {
        self.records
            .lock()
            .expect("record limiter lock")
            .admit(record, Instant::now())
            .map_err(|retry_after| ZendeskError::RecordRateLimited { retry_after })
    }
}

pub(crate) enum Admission {
    Unlimited,
    Allowed(Quota),
    Throttled { quota: Quota, retry_after: u64 },
}

pub(crate) struct Quota {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
}

impl Quota {
    pub(crate) fn write_headers(&self, headers: &mut HeaderMap) {
        let pairs = [
            ("x-rate-limit", u64::from(self.limit)),
            ("x-rate-limit-remaining", u64::from(self.remaining)),
            ("ratelimit-limit", u64::from(self.limit)),
            ("ratelimit-remaining", u64::from(self.remaining)),
            ("ratelimit-reset", self.reset_secs),
        ];
        for (name, value) in pairs {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

/// A fixed window that opens with the first request after the previous one closed.
struct FixedWindow {
    /// Requests a window admits; 0 for no limit.
    limit: u32,
    window: Duration,
    started: Option<Instant>,
    used: u32,
}

impl FixedWindow {
    fn new(limit: u32, window: Duration) -> Self {
        FixedWindow {
            limit,
            window,
            started: None,
            used: 0,
        }
    }

    fn admit(&mut self, now: Instant) -> Admission {
        if self.limit == 0 {
            return Admission::Unlimited;
        }
        let started = match self.started {
            Some(started) if now < started + self.window => started,
            _ => {
                self.started = Some(now);
                self.used = 0;
                now
            }
        };
        let reset_secs = ceil_secs(started + self.window - now);
        if self.used >= self.limit {
            return Admission::Throttled {
                quota: Quota {
                    limit: self.limit,
                    remaining: 0,
                    reset_secs,
                },
                retry_after: reset_secs.max(1),
            };
        }
        self.used += 1;
        Admission::Allowed(Quota {
            limit: self.limit,
            remaining: self.limit - self.used,
            reset_secs,
        })
    }
}

/// Sliding one-minute windows per record.
struct RecordLimiter {
    limit: u32,
    calls: BTreeMap<String, VecDeque<Instant>>,
}

impl RecordLimiter {
    const WINDOW: Duration = Duration::from_secs(60);

    fn admit(&mut self, record: &str, now: Instant) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        let calls = self.calls.entry(record.to_owned()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Self::WINDOW)
        {
            calls.pop_front();
        }
        if calls.len() >= self.limit as usize {
            let oldest = *calls.front().expect("full window has calls");
            return Err(ceil_secs(oldest + Self::WINDOW - now).max(1));
        }
        calls.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_window_throttles_then_reopens() {
        let mut window = FixedWindow::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(matches!(
            window.admit(t0),
            Admission::Allowed(Quota { remaining: 1, .. })
        ));
        assert!(matches!(
            window.admit(t0),
            Admission::Allowed(Quota { remaining: 0, .. })
        ));
        let later = t0 + Duration::from_secs(20);
        assert!(matches!(
            window.admit(later),
            Admission::Throttled {
                retry_after: 40,
                ..
            }
        ));
        let next_window = t0 + Duration::from_secs(61);
        assert!(matches!(window.admit(next_window), Admission::Allowed(_)));
    }

    #[test]
    fn only_incremental_exports_meet_their_own_limit() {
        let mut config = SandboxConfig {
            incremental_rate_limit_per_minute: 1,
            ..SandboxConfig::default()
        };
        let limits = Limits::from_config(&config);
        let export = "/api/v2/incremental/organizations";
        assert!(limits.admit_endpoint(export).is_ok());
        assert!(matches!(
            limits.admit_endpoint(export),
            Err(ZendeskError::RateLimited {
                retry_after: 1..=60
            })
        ));
        assert!(limits.admit_endpoint("/api/v2/organizations").is_ok());

        config.incremental_rate_limit_per_minute = 0;
        let unlimited = Limits::from_config(&config);
        assert!((0..20).all(|_| unlimited.admit_endpoint(export).is_ok()));
    }

    #[test]
    fn record_limiter_is_per_record() {
        let mut limiter = RecordLimiter {
            limit: 1,
            calls: BTreeMap::new(),
        };
        let t0 = Instant::now();
        assert!(limiter.admit("organization:1", t0).is_ok());
        assert_eq!(
            limiter.admit("organization:1", t0 + Duration::from_secs(15)),
            Err(45)
        );
        assert!(limiter.admit("organization:2", t0).is_ok());
        assert!(
            limiter
                .admit("organization:1", t0 + Duration::from_secs(60))
                .is_ok()
        );
    }
}
