//! What the client needs to reach one Zendesk instance, and how hard it may push it.

use std::time::Duration;

use crate::config::Secret;
use crate::retry::RetryPolicy;

use super::error::ZendeskError;

/// Zendesk's cap on a cursor page and on the records of one bulk job (apis.md A1, A3, A5).
pub const MAX_PAGE_SIZE: u32 = 100;
/// Records per bulk job (Create/Update Many take "up to 100").
pub const MAX_JOB_ITEMS: usize = 100;
/// The sync's default share of Zendesk's 30 queued-or-running jobs (SPEC §8), leaving room
/// for an agent's or another integration's jobs.
pub const DEFAULT_MAX_INFLIGHT_JOBS: usize = 25;

/// Everything the client needs to reach an instance. `Debug` shows the token redacted.
#[derive(Debug, Clone)]
pub struct ZendeskConfig {
    /// `https://{subdomain}.zendesk.com` (the client appends `/api/v2/...`).
    pub base_url: String,
    /// The API token's owner; the Basic user is `{email}/token`.
    pub email: String,
    pub token: Secret,
    /// Bulk jobs this client keeps queued or working at once (Zendesk allows 30 per account).
    pub max_inflight_jobs: usize,
    /// This client's share of the account's per-minute rate limit; `None`: half the limit the
    /// account reports in its rate-limit headers (see `pacing.rs`).
    pub max_requests_per_minute: Option<u32>,
    /// Records per cursor page when listing (1..=100).
    pub page_size: u32,
    /// Retries of a request after 5xx answers, dropped connections and 429s.
    pub retry: RetryPolicy,
    /// Per-request timeout; a timed-out request is transient and retried.
    pub request_timeout: Duration,
    /// The first wait before polling freshly queued jobs: small jobs finish in a few seconds.
    pub job_poll_min: Duration,
    /// The longest wait between polls, however long jobs stay queued.
    pub job_poll_max: Duration,
    /// A job still queued or working this long after it was accepted is given up on and its
    /// items reported as failed, so a stuck job cannot outlive the stage's Lambda.
    pub job_timeout: Duration,
    /// What the client's calls count under in a stage's call stats (`zendesk_global`).
    pub service: String,
}

impl ZendeskConfig {
    /// A configuration with the sync's defaults for everything but where, who and how many
    /// jobs at once.
    pub fn new(
        base_url: impl Into<String>,
        email: impl Into<String>,
        token: Secret,
        max_inflight_jobs: usize,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            email: email.into(),
            token,
            max_inflight_jobs,
            max_requests_per_minute: None,
            page_size: MAX_PAGE_SIZE,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(60),
            job_poll_min: Duration::from_secs(1),
            job_poll_max: Duration::from_secs(10),
            job_timeout: Duration::from_secs(10 * 60),
            service: "zendesk".into(),
        }
    }

    /// Checks what cannot work, naming the setting.
    pub(super) fn validate(&self) -> Result<url::Url, ZendeskError> {
        let invalid = |message: String| Err(ZendeskError::InvalidConfig { message });
        let base = match url::Url::parse(self.base_url.trim_end_matches('/')) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => url,
            _ => {
                return invalid(format!(
                    "base_url {:?} is not an http(s) URL",
                    self.base_url
                ));
            }
        };
        if base.query().is_some() || base.fragment().is_some() {
            return invalid(format!(
                "base_url {:?} must not have a query or fragment",
                self.base_url
            ));
        }
        if self.email.trim().is_empty() {
            return invalid("email is empty".into());
        }
        if self.token.expose().is_empty() {
            return invalid("token is empty".into());
        }
        if self.max_inflight_jobs == 0 {
            return invalid("max_inflight_jobs must be at least 1".into());
        }
        if self.max_requests_per_minute == Some(0) {
            return invalid("max_requests_per_minute must be at least 1".into());
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return invalid(format!(
                "page_size {} is outside Zendesk's 1..={MAX_PAGE_SIZE}",
                self.page_size
            ));
        }
        if self.job_poll_min.is_zero() || self.job_poll_min > self.job_poll_max {
            return invalid(format!(
                "job_poll_min ({:?}) must be positive and at most job_poll_max ({:?})",
                self.job_poll_min, self.job_poll_max
            ));
        }
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> ZendeskConfig {
        ZendeskConfig::new(
            "https://acme.zendesk.com/",
            "sync@acme.example",
            Secret::new("s3cr3t"),
            DEFAULT_MAX_INFLIGHT_JOBS,
        )
    }

    #[test]
    fn debug_output_never_contains_the_token() {
        let shown = format!("{:?} {:#?}", good(), good());
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("sync@acme.example"), "{shown}");
    }

    #[test]
    fn a_trailing_slash_is_tolerated() {
        assert_eq!(
            good().validate().unwrap().as_str(),
            "https://acme.zendesk.com/"
        );
    }

    #[test]
    fn settings_that_cannot_work_are_refused_by_name() {
        type Spoil = fn(&mut ZendeskConfig);
        let cases: [(&str, Spoil); 8] = [
            ("base_url", |c| c.base_url = "acme.zendesk.com".into()),
            ("base_url", |c| c.base_url = "ftp://acme.zendesk.com".into()),
            ("base_url", |c| c.base_url = "https://a.example/?x=1".into()),
            ("email", |c| c.email = " ".into()),
            ("token", |c| c.token = Secret::new("")),
            ("max_inflight_jobs", |c| c.max_inflight_jobs = 0),
            ("page_size", |c| c.page_size = 101),
            ("job_poll_min", |c| c.job_poll_min = Duration::ZERO),
        ];
        for (setting, spoil) in cases {
            let mut config = good();
            spoil(&mut config);
            match config.validate() {
                Err(ZendeskError::InvalidConfig { message }) => {
                    assert!(message.contains(setting), "{setting}: {message}")
                }
                other => panic!("{setting}: expected InvalidConfig, got {other:?}"),
            }
        }
    }
}
