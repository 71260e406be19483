use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::faults::Faults;
use crate::fixture::Fixture;

/// Everything a [`crate::Sandbox`] needs to start. Build it with [`SandboxConfig::new`] and
/// adjust the public fields.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub fixture: Fixture,
    pub faults: Faults,
    /// How long a Zendesk background job takes from queued to completed. Half of it is spent
    /// queued, half working; the job's effects are applied when it completes.
    pub job_delay: Duration,
    /// How many jobs of one instance may be `working` at once; 0 (the default) for no limit.
    /// With a limit the others stay `queued` until a worker is free, taken in the order they
    /// were submitted; each still spends at least half of `job_delay` queued and half working.
    pub job_workers: usize,
    /// Account-wide requests per rate-limit window, per Zendesk instance (Enterprise: 700).
    /// 0 turns the account limit off.
    pub zendesk_rate_limit_per_minute: u32,
    /// Length of the account rate-limit window. Zendesk's is a minute; tests shorten it so a
    /// client's wait on `Retry-After` stays short.
    pub zendesk_rate_limit_window: Duration,
    /// Requests per rate-limit window, per Zendesk instance, to the incremental export
    /// endpoints (`/api/v2/incremental/...`), counted on top of the account limit: both apply
    /// (Zendesk: 10 a minute, 30 with the High Volume add-on). 0 turns it off.
    pub incremental_rate_limit_per_minute: u32,
    /// Queued plus working jobs allowed per instance before `TooManyJobs` (Zendesk: 30).
    pub max_inflight_jobs: usize,
    /// How long a job status stays readable after the job was created (Zendesk: one day).
    pub job_ttl: Duration,
    /// How far Zendesk's search index lags behind writes (default zero: search sees every
    /// write at once). The user and organization searches answer from the records as they
    /// were this long ago: a record created since is not found, one changed since is found
    /// (and rendered) as it was. Other reads are never stale.
    pub search_index_delay: Duration,
    /// Single-record updates (`PUT /organizations/{id}`, `PUT /users/{id}`) allowed per
    /// record per minute (Zendesk: 5). 0 turns the limit off.
    pub record_update_limit_per_minute: u32,
    pub bind: SocketAddr,
    /// Seeds the fault-injection random sequence.
    pub seed: u64,
    /// Salesforce credentials, paging and limits.
    pub salesforce: crate::salesforce::SalesforceOptions,
    /// Files a GitLab project serves under `/gitlab` (the overrides file of a managed-content
    /// project, private ones with a token).
    pub gitlab_files: Vec<crate::gitlab::GitlabFile>,
}

impl SandboxConfig {
    pub fn new(fixture: Fixture) -> Self {
        SandboxConfig {
            fixture,
            faults: Faults::default(),
            job_delay: Duration::from_millis(200),
            job_workers: 0,
            zendesk_rate_limit_per_minute: 700,
            zendesk_rate_limit_window: Duration::from_secs(60),
            incremental_rate_limit_per_minute: 10,
            max_inflight_jobs: 30,
            job_ttl: Duration::from_secs(24 * 60 * 60),
            search_index_delay: Duration::ZERO,
            record_update_limit_per_minute: 5,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            seed: 0,
            salesforce: crate::salesforce::SalesforceOptions::default(),
            gitlab_files: Vec::new(),
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig::new(Fixture::default())
    }
}
