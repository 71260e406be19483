//! One instance's state: its settings, credentials, records (behind one lock), limits, and the
//! shutdown signal its background jobs watch.

use std::sync::Mutex;
use std::sync::MutexGuard;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::index;
use super::limits::Limits;
use super::store::InstanceData;
use crate::clock::Clock;
use crate::config::SandboxConfig;
use crate::error::FixtureError;
use crate::fixture::{ZendeskCredentials, ZendeskFixture};
use crate::instance::ZendeskInstance;

/// The knobs of one instance that come from [`SandboxConfig`].
#[derive(Clone, Debug)]
pub(crate) struct InstanceSettings {
    pub job_delay: Duration,
    /// Jobs working at once; 0 for no limit.
    pub job_workers: usize,
    pub job_ttl: Duration,
    pub max_inflight_jobs: usize,
}

pub(crate) struct InstanceState {
    pub instance: ZendeskInstance,
    /// `http://127.0.0.1:PORT`: absolute links are built from it.
    pub server_url: String,
    pub(crate) credentials: ZendeskCredentials,
    data: Mutex<InstanceData>,
    pub limits: Limits,
    pub settings: InstanceSettings,
    shutdown: watch::Receiver<bool>,
}

impl InstanceState {
    pub(crate) fn new(
        instance: ZendeskInstance,
        server_url: &str,
        fixture: &ZendeskFixture,
        config: &SandboxConfig,
        clock: Clock,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, FixtureError> {
        let base_url = format!("{server_url}/zendesk/{instance}");
        let job_seed = config.seed ^ (instance as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut data = InstanceData::from_fixture(instance, &base_url, fixture, job_seed, clock)?;
        // Set after loading: the starting world is already indexed.
        data.index = index::SearchIndex::new(config.search_index_delay);
        Ok(InstanceState {
            instance,
            server_url: server_url.to_owned(),
            credentials: fixture
                .credentials
                .clone()
                .unwrap_or_else(|| ZendeskCredentials::default_for(instance)),
            data: Mutex::new(data),
            limits: Limits::from_config(config),
            settings: InstanceSettings {
                job_delay: config.job_delay,
                job_workers: config.job_workers,
                job_ttl: config.job_ttl,
                max_inflight_jobs: config.max_inflight_jobs,
            },
            shutdown,
        })
    }

    pub(crate) fn data(&self) -> MutexGuard<'_, InstanceData> {
        self.data.lock().expect("zendesk instance lock")
    }

    /// Waits `duration`; false when the sandbox shuts down first.
    pub(crate) async fn pause(&self, duration: Duration) -> bool {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = shutdown.changed() => false,
        }
    }

    /// The instance as a fixture loads it back; see [`InstanceData::snapshot`].
    pub(crate) fn snapshot(&self) -> ZendeskFixture {
        let data = self.data();
        let in_flight = data.jobs_in_flight();
        if in_flight > 0 {
            // Jobs are not part of a fixture: what they would still do is lost.
            tracing::warn!(
                "snapshot of {} leaves out {in_flight} unfinished job(s)",
                self.instance
            );
        }
        ZendeskFixture {
            credentials: Some(self.credentials.clone()),
            ..data.snapshot()
        }
    }

    pub(crate) fn dump(&self) -> Value {
        let mut dump = self.data().dump();
        dump["credentials"] = json!(self.credentials);
        dump
    }
}
