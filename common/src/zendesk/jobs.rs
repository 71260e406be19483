//! Bulk writes as Zendesk background jobs, paced (SPEC §8; apis.md A7, A8).
//!
//! - The caller's items are cut into jobs of at most [`MAX_JOB_ITEMS`].
//! - At most `max_inflight_jobs` jobs of this client are queued or working at once: a
//!   semaphore shared by every bulk call of the client holds one permit per job until it
//!   finishes.
//! - Jobs are polled together with Show Many Job Statuses (all in-flight ids, ≤100 per
//!   call), never one request per job. The poll interval starts at `job_poll_min` whenever
//!   jobs are queued into an empty pipeline, stays put while polls show progress (a job
//!   started or finished), and doubles up to `job_poll_max` while nothing changes.
//! - `TooManyJobs` (the account's 30 slots are full) puts the job back at the head of the
//!   queue. With jobs of our own in flight, the next submission waits until a poll shows one
//!   of them finished; with none, other clients hold the slots and the submission backs off
//!   (`Retry-After` if Zendesk sent one). A refused job was never created, so re-submitting
//!   it neither loses nor duplicates it. The in-flight header's `remaining=0` is honoured
//!   the same way, before Zendesk has to refuse anything.
//! - A finished job's `results[]` are mapped back to the caller's indexes. A job that ended
//!   `failed` or `killed`, vanished, or outlived `job_timeout` marks each of its items that
//!   has no result with an [`ItemError`]; nothing is dropped.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::Retryable;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::retry::RetryPolicy;

use super::config::{MAX_JOB_ITEMS, ZendeskConfig};
use super::error::ZendeskError;
use super::outcomes::{ItemError, Outcomes, ResultShape, job_item_results};
use super::transport::{Answer, Counters, Transport};

/// Show Many Job Statuses takes up to 100 ids.
const MAX_IDS_PER_POLL: usize = 100;
/// A job missing from this many polls in a row is taken as gone (expired or unknown): one
/// miss could be a freshly queued job not yet visible to every Zendesk replica.
const VANISHED_AFTER_MISSED_POLLS: u32 = 2;

/// A bulk endpoint and the shape of its request and results.
pub(super) struct BulkEndpoint {
    pub verb: Verb,
    /// Under `/api/v2/`.
    pub path: &'static str,
    /// The request's array key: `{"organizations": [...]}`.
    pub root: &'static str,
    pub shape: ResultShape,
}

#[derive(Clone, Copy)]
pub(super) enum Verb {
    Post,
    Put,
}

pub(super) const CREATE_ORGANIZATIONS: BulkEndpoint = BulkEndpoint {
    verb: Verb::Post,
    path: "organizations/create_many",
    root: "organizations",
    shape: ResultShape::Create,
};
pub(super) const UPDATE_ORGANIZATIONS: BulkEndpoint = BulkEndpoint {
    verb: Verb::Put,
    path: "organizations/update_many",
    root: "organizations",
    shape: ResultShape::Update,
};
pub(super) const CREATE_USERS: BulkEndpoint = BulkEndpoint {
    verb: Verb::Post,
    path: "users/create_many",
    root: "users",
    shape: ResultShape::Create,
};
pub(super) const CREATE_MEMBERSHIPS: BulkEndpoint = BulkEndpoint {
    verb: Verb::Post,
    path: "organization_memberships/create_many",
    root: "organization_memberships",
    shape: ResultShape::Create,
};
pub(super) const UPDATE_USERS: BulkEndpoint = BulkEndpoint {
    verb: Verb::Put,
    path: "users/update_many",
    root: "users",
    shape: ResultShape::Update,
};

/// What to do when a bulk endpoint answers 403.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum OnForbidden {
    Fail,
    /// Stop submitting and hand the unsubmitted items back (Create Many Users with bulk
    /// import off; the caller creates them one by one).
    HandBack,
}

/// Consecutive caller items sent as one job.
pub(super) struct Chunk {
    /// The caller's index of `items[0]`.
    pub first: usize,
    pub items: Vec<Value>,
}

impl Chunk {
    fn indexes(&self) -> Range<usize> {
        self.first..self.first + self.items.len()
    }

    /// The items with the caller's indexes.
    pub(super) fn into_indexed(self) -> impl Iterator<Item = (usize, Value)> {
        (self.first..).zip(self.items)
    }
}

/// The outcome of a bulk run: one slot per item, and the items a 403 handed back.
pub(super) struct BulkRun {
    pub outcomes: Outcomes,
    pub refused: Vec<Chunk>,
}

/// The job machinery of one client.
pub(super) struct Jobs {
    /// One permit per queued-or-working job of this client, across concurrent bulk calls.
    slots: Arc<Semaphore>,
    poll_min: Duration,
    poll_max: Duration,
    timeout: Duration,
    /// Backoff while Zendesk's job slots are all held by others.
    retry: RetryPolicy,
}

impl Jobs {
    pub(super) fn new(config: &ZendeskConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(config.max_inflight_jobs)),
            poll_min: config.job_poll_min,
            poll_max: config.job_poll_max,
            timeout: config.job_timeout,
            retry: config.retry.clone(),
        }
    }

    /// Sends `items` through `endpoint` as paced jobs and waits for all of them.
    pub(super) async fn run(
        &self,
        transport: &Transport,
        endpoint: &BulkEndpoint,
        items: Vec<Value>,
        on_forbidden: OnForbidden,
    ) -> Result<BulkRun, ZendeskError> {
        let batch = Batch {
            jobs: self,
            transport,
            endpoint,
            on_forbidden,
            outcomes: Outcomes::new(items.len()),
            pending: chunks(items),
            running: Vec::new(),
            refused: Vec::new(),
            account_full: false,
            poll: PollInterval::new(self.poll_min, self.poll_max),
        };
        batch.run().await
    }
}

fn chunks(items: Vec<Value>) -> VecDeque<Chunk> {
    let mut chunks = VecDeque::with_capacity(items.len().div_ceil(MAX_JOB_ITEMS));
    let mut items = items.into_iter();
    let mut first = 0;
    loop {
        let chunk: Vec<Value> = items.by_ref().take(MAX_JOB_ITEMS).collect();
        if chunk.is_empty() {
            return chunks;
        }
        let len = chunk.len();
        chunks.push_back(Chunk {
            first,
            items: chunk,
        });
        first += len;
    }
}

/// A job's status as Zendesk reports it; every field but `id` may be missing or null.
#[derive(Debug, Clone, Deserialize)]
struct JobStatus {
    id: String,
    status: Option<String>,
    message: Option<String>,
    results: Option<Value>,
}

impl JobStatus {
    /// `results` is an array for bulk jobs; other shapes (an object for some job types,
    /// null while working) carry no per-item entries.
    fn entries(&self) -> &[Value] {
        match &self.results {
            Some(Value::Array(entries)) => entries,
            _ => &[],
        }
    }
}

/// An accepted job of ours.
struct RunningJob {
    id: String,
    chunk: Chunk,
    accepted_at: Instant,
    last_status: Option<String>,
    missed_polls: u32,
    /// Released (dropped) when the job finishes.
    _slot: OwnedSemaphorePermit,
}

/// What one observation says about a job.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Still queued or working; `changed` when its status moved since the last look.
    Pending { changed: bool },
    /// Finished: its result entries, and the error for items they do not cover.
    Finished {
        entries: Vec<Value>,
        uncovered: ItemError,
    },
}

impl RunningJob {
    fn observe(&mut self, status: Option<&JobStatus>, timeout: Duration) -> Verdict {
        let Some(status) = status else {
            self.missed_polls += 1;
            if self.missed_polls >= VANISHED_AFTER_MISSED_POLLS {
                return self.ended(
                    Vec::new(),
                    ItemError::JOB_VANISHED,
                    "Zendesk no longer knows the job status (expired or unknown)",
                );
            }
            return self.pending_unless_timed_out(false, timeout);
        };
        self.missed_polls = 0;
        let message = status.message.clone().unwrap_or_default();
        let entries = status.entries().to_vec();
        match status.status.as_deref() {
            Some("completed") => self.ended(
                entries,
                ItemError::NO_RESULT,
                "the job completed without a result for this item",
            ),
            Some("failed") => self.ended(entries, ItemError::JOB_FAILED, message),
            Some("killed") => self.ended(entries, ItemError::JOB_KILLED, message),
            other => {
                if !matches!(other, Some("queued" | "working")) {
                    tracing::warn!(
                        job = %self.id,
                        status = ?other,
                        "unknown job status; still waiting"
                    );
                }
                let changed = self.last_status.as_deref() != other;
                self.last_status = other.map(str::to_owned);
                self.pending_unless_timed_out(changed, timeout)
            }
        }
    }

    fn pending_unless_timed_out(&self, changed: bool, timeout: Duration) -> Verdict {
        if self.accepted_at.elapsed() < timeout {
            return Verdict::Pending { changed };
        }
        self.ended(
            Vec::new(),
            ItemError::JOB_TIMED_OUT,
            format!(
                "still {} after {timeout:?}",
                self.last_status.as_deref().unwrap_or("unseen")
            ),
        )
    }

    fn ended(&self, entries: Vec<Value>, error: &str, details: impl Into<String>) -> Verdict {
        Verdict::Finished {
            entries,
            uncovered: ItemError::new(error, format!("job {}: {}", self.id, details.into())),
        }
    }
}

/// The wait between polls, derived from what the polls see.
struct PollInterval {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl PollInterval {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// Fresh jobs into an empty pipeline: look early, small jobs finish fast.
    fn restart(&mut self) {
        self.next = self.min;
    }

    /// Jobs that move are looked at as often as before; jobs that sit still, less often.
    fn after_poll(&mut self, progressed: bool) {
        if !progressed {
            self.next = (self.next * 2).min(self.max);
        }
    }

    /// The job-poll wait: the client's only pause outside backoff and `Retry-After`, its
    /// length set by what the polls saw (above).
    async fn sleep_until_next_poll(&self) {
        tokio::time::sleep(self.next).await;
    }
}

/// A job Zendesk accepted, and how many more it says the account may queue.
struct Accepted {
    status: JobStatus,
    slots_left: Option<u64>,
}

/// One bulk call in progress.
struct Batch<'a> {
    jobs: &'a Jobs,
    transport: &'a Transport,
    endpoint: &'a BulkEndpoint,
    on_forbidden: OnForbidden,
    outcomes: Outcomes,
    pending: VecDeque<Chunk>,
    running: Vec<RunningJob>,
    refused: Vec<Chunk>,
    /// Zendesk will take no job until one finishes (TooManyJobs, or `remaining=0`).
    account_full: bool,
    poll: PollInterval,
}

impl Batch<'_> {
    async fn run(mut self) -> Result<BulkRun, ZendeskError> {
        loop {
            self.submit_what_fits().await?;
            if self.running.is_empty() {
                if self.pending.is_empty() {
                    break;
                }
                continue;
            }
            self.poll.sleep_until_next_poll().await;
            self.poll_running().await?;
        }
        Ok(BulkRun {
            outcomes: self.outcomes,
            refused: self.refused,
        })
    }

    /// Submits pending jobs while this client has a free slot and Zendesk has room.
    async fn submit_what_fits(&mut self) -> Result<(), ZendeskError> {
        if self.running.is_empty() {
            // Nothing of ours to wait for: the next submission backs off instead.
            self.account_full = false;
        }
        while !self.account_full {
            let Some(chunk) = self.pending.pop_front() else {
                return Ok(());
            };
            let idle = self.running.is_empty();
            let Some(slot) = self.take_slot(idle).await else {
                self.pending.push_front(chunk);
                return Ok(());
            };
            let submitted = if idle {
                self.submit_backing_off(&chunk).await
            } else {
                self.submit(&chunk).await
            };
            match submitted {
                Ok(accepted) => self.track(chunk, accepted, slot),
                Err(ZendeskError::TooManyJobs { .. }) if !idle => {
                    tracing::debug!(
                        "Zendesk's job slots are full; resubmitting after one of ours finishes"
                    );
                    self.pending.push_front(chunk);
                    self.account_full = true;
                }
                Err(ZendeskError::Forbidden { message })
                    if self.on_forbidden == OnForbidden::HandBack =>
                {
                    tracing::warn!(
                        %message,
                        path = self.endpoint.path,
                        "bulk endpoint refused; handing the items back"
                    );
                    self.refused.push(chunk);
                    self.refused.extend(self.pending.drain(..));
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// A slot of this client's job allowance. When we have jobs running, only a free one
    /// (else poll ours first); when we have none, wait for one another call of this client
    /// releases.
    async fn take_slot(&self, idle: bool) -> Option<OwnedSemaphorePermit> {
        let slots = Arc::clone(&self.jobs.slots);
        if idle {
            let slot = slots.acquire_owned().await;
            Some(slot.expect("the job slot semaphore is private to the client and never closed"))
        } else {
            slots.try_acquire_owned().ok()
        }
    }

    /// Submits with backoff on TooManyJobs: used when none of our jobs is running, so the
    /// slots are held by other clients and no poll of ours can tell when one frees. Their jobs
    /// take as long as they take, so the wait is bounded by the job timeout, not by a number
    /// of tries (a fixed count of short backoffs gave up while another integration's jobs
    /// were still running).
    async fn submit_backing_off(&self, chunk: &Chunk) -> Result<Accepted, ZendeskError> {
        let patient = self
            .jobs
            .retry
            .backoff()
            .without_max_times()
            .with_total_delay(Some(self.jobs.timeout));
        (|| self.submit(chunk))
            .retry(patient)
            .when(|e| matches!(e, ZendeskError::TooManyJobs { .. }))
            .adjust(|error, backoff| match error {
                ZendeskError::TooManyJobs {
                    retry_after: Some(wait),
                    ..
                } => backoff.map(|_| *wait),
                _ => backoff,
            })
            .notify(|_, wait| {
                tracing::info!(?wait, "Zendesk's job slots are held by other jobs; waiting");
            })
            .await
    }

    async fn submit(&self, chunk: &Chunk) -> Result<Accepted, ZendeskError> {
        let url = self.transport.url(self.endpoint.path, &[])?;
        let body = json!({ self.endpoint.root: chunk.items });
        let answer = match self.endpoint.verb {
            Verb::Post => self.transport.post(url, &body).await?,
            Verb::Put => self.transport.put(url, &body).await?,
        };
        Counters::bump(&self.transport.counters.jobs_submitted);
        accepted(answer)
    }

    fn track(&mut self, chunk: Chunk, accepted: Accepted, slot: OwnedSemaphorePermit) {
        if self.running.is_empty() {
            self.poll.restart();
        }
        if accepted.slots_left == Some(0) {
            self.account_full = true;
        }
        let mut job = RunningJob {
            id: accepted.status.id.clone(),
            chunk,
            accepted_at: Instant::now(),
            last_status: None,
            missed_polls: 0,
            _slot: slot,
        };
        tracing::debug!(
            job = %job.id,
            items = job.chunk.items.len(),
            path = self.endpoint.path,
            "job queued"
        );
        // Zendesk may answer with a job that already finished.
        match job.observe(Some(&accepted.status), self.jobs.timeout) {
            Verdict::Pending { .. } => self.running.push(job),
            Verdict::Finished { entries, uncovered } => self.record(&job, &entries, &uncovered),
        }
    }

    /// One round of Show Many Job Statuses over every running job.
    async fn poll_running(&mut self) -> Result<(), ZendeskError> {
        let ids: Vec<&str> = self.running.iter().map(|j| j.id.as_str()).collect();
        let statuses = show_many(self.transport, &ids).await?;
        let mut progressed = false;
        for mut job in std::mem::take(&mut self.running) {
            match job.observe(statuses.get(&job.id), self.jobs.timeout) {
                Verdict::Pending { changed } => {
                    progressed |= changed;
                    self.running.push(job);
                }
                Verdict::Finished { entries, uncovered } => {
                    progressed = true;
                    self.account_full = false;
                    self.record(&job, &entries, &uncovered);
                }
            }
        }
        self.poll.after_poll(progressed);
        Ok(())
    }

    fn record(&mut self, job: &RunningJob, entries: &[Value], uncovered: &ItemError) {
        for (position, result) in job_item_results(self.endpoint.shape, &job.chunk.items, entries) {
            self.outcomes.record(job.chunk.first + position, result);
        }
        self.outcomes.fail_rest(job.chunk.indexes(), uncovered);
        tracing::debug!(job = %job.id, "job finished");
        crate::progress::job_finished(job.chunk.items.len());
    }
}

fn accepted(answer: Answer) -> Result<Accepted, ZendeskError> {
    let status = answer
        .body
        .get("job_status")
        .cloned()
        .ok_or_else(|| ZendeskError::InvalidResponse {
            message: format!(
                "a bulk write answered {} without a job_status",
                answer.status
            ),
        })
        .and_then(|status| {
            serde_json::from_value(status).map_err(|e| ZendeskError::InvalidResponse {
                message: format!("unreadable job_status: {e}"),
            })
        })?;
    Ok(Accepted {
        status,
        slots_left: answer.job_slots_left,
    })
}

/// The statuses Zendesk still has for `ids`, by id (unknown and expired ids are absent).
async fn show_many(
    transport: &Transport,
    ids: &[&str],
) -> Result<HashMap<String, JobStatus>, ZendeskError> {
    let mut statuses = HashMap::with_capacity(ids.len());
    for group in ids.chunks(MAX_IDS_PER_POLL) {
        let joined = group.join(",");
        let url = transport.url("job_statuses/show_many", &[("ids", &joined)])?;
        Counters::bump(&transport.counters.job_polls);
        let answer = transport.get(url).await?;
        let listed = answer
            .body
            .get("job_statuses")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        let listed: Vec<JobStatus> =
            serde_json::from_value(listed).map_err(|e| ZendeskError::InvalidResponse {
                message: format!("unreadable job_statuses: {e}"),
            })?;
        statuses.extend(listed.into_iter().map(|status| (status.id.clone(), status)));
    }
    Ok(statuses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(value: Value) -> JobStatus {
        serde_json::from_value(value).unwrap()
    }

    fn job(items: usize) -> RunningJob {
        RunningJob {
            id: "j1".into(),
            chunk: Chunk {
                first: 200,
                items: vec![json!({"name": "x"}); items],
            },
            accepted_at: Instant::now(),
            last_status: None,
            missed_polls: 0,
            _slot: Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap(),
        }
    }

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn items_are_cut_into_jobs_of_at_most_one_hundred() {
        let cut = chunks(vec![json!({}); 250]);
        let shape: Vec<(usize, usize)> = cut.iter().map(|c| (c.first, c.items.len())).collect();
        assert_eq!(shape, vec![(0, 100), (100, 100), (200, 50)]);
        assert!(chunks(Vec::new()).is_empty());
    }

    #[test]
    fn a_job_moving_counts_as_progress_and_sitting_still_does_not() {
        let mut job = job(1);
        let queued = status(json!({"id": "j1", "status": "queued"}));
        let working = status(json!({"id": "j1", "status": "working", "results": null}));
        assert_eq!(
            job.observe(Some(&queued), LONG),
            Verdict::Pending { changed: true }
        );
        assert_eq!(
            job.observe(Some(&queued), LONG),
            Verdict::Pending { changed: false }
        );
        assert_eq!(
            job.observe(Some(&working), LONG),
            Verdict::Pending { changed: true }
        );
    }

    #[test]
    fn finished_jobs_name_the_error_for_items_without_a_result() {
        for (state, code) in [
            ("completed", ItemError::NO_RESULT),
            ("failed", ItemError::JOB_FAILED),
            ("killed", ItemError::JOB_KILLED),
        ] {
            let mut job = job(2);
            let seen = status(json!({"id": "j1", "status": state, "message": "m",
                "results": [{"index": 0, "id": 5}]}));
            let Verdict::Finished { entries, uncovered } = job.observe(Some(&seen), LONG) else {
                panic!("{state} is final");
            };
            assert_eq!(entries, vec![json!({"index": 0, "id": 5})]);
            assert_eq!(uncovered.error, code);
            assert!(
                uncovered
                    .details
                    .as_deref()
                    .unwrap()
                    .starts_with("job j1: ")
            );
        }
    }

    #[test]
    fn a_job_missing_from_two_polls_in_a_row_has_vanished() {
        let mut job = job(1);
        assert_eq!(job.observe(None, LONG), Verdict::Pending { changed: false });
        let working = status(json!({"id": "j1", "status": "working"}));
        assert!(matches!(
            job.observe(Some(&working), LONG),
            Verdict::Pending { .. }
        ));
        assert_eq!(job.observe(None, LONG), Verdict::Pending { changed: false });
        let Verdict::Finished { uncovered, .. } = job.observe(None, LONG) else {
            panic!("two misses in a row");
        };
        assert_eq!(uncovered.error, ItemError::JOB_VANISHED);
    }

    #[test]
    fn a_job_past_the_timeout_is_given_up() {
        let mut job = job(1);
        let queued = status(json!({"id": "j1", "status": "queued"}));
        let Verdict::Finished { uncovered, .. } = job.observe(Some(&queued), Duration::ZERO) else {
            panic!("timed out");
        };
        assert_eq!(uncovered.error, ItemError::JOB_TIMED_OUT);
    }

    #[test]
    fn the_poll_interval_grows_while_nothing_moves_and_restarts_for_new_work() {
        let ms = Duration::from_millis;
        let mut interval = PollInterval::new(ms(100), ms(500));
        let mut seen = vec![interval.next];
        for progressed in [false, true, false, false, false] {
            interval.after_poll(progressed);
            seen.push(interval.next);
        }
        assert_eq!(seen, [ms(100), ms(200), ms(200), ms(400), ms(500), ms(500)]);
        interval.restart();
        assert_eq!(interval.next, ms(100));
    }

    #[test]
    fn an_accepted_job_needs_a_job_status() {
        let answer = |body| Answer {
            status: reqwest::StatusCode::OK,
            body,
            job_slots_left: Some(3),
        };
        let ok = accepted(answer(
            json!({"job_status": {"id": "abc", "status": "queued"}}),
        ))
        .unwrap();
        assert_eq!((ok.status.id.as_str(), ok.slots_left), ("abc", Some(3)));
        assert!(matches!(
            accepted(answer(json!({"organizations": []}))),
            Err(ZendeskError::InvalidResponse { .. })
        ));
    }
}
