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
//!   `failed` or `killed` marks each of its items that has no result with an [`ItemError`].
//! - Time: a job's `job_timeout` counts from when a poll first sees it working, never from
//!   its acceptance (25 jobs submitted at once are worked a few at a time; the last can sit
//!   queued for a long while). A job past it, and every job still running at the caller's
//!   deadline, is handed back *open*: its outcome is unknown, never an error or a success,
//!   and the caller keeps its id to ask Zendesk again later. Nothing is submitted after the
//!   deadline.
//! - Jobs accepted earlier (by an invocation that stopped or crashed) can be *adopted*:
//!   followed to their end instead of submitted again. An adopted job Zendesk no longer knows
//!   (a job status is kept about a day), or one of ours that vanished, is submitted again: a
//!   create that had landed then answers "taken", which the caller looks up.
//! - A create job whose answer was lost (a 5xx, a timeout, a broken connection after
//!   sending) may have been queued: before sending it again, the account's recent job
//!   statuses are read and a job with the same items is adopted (its created records checked
//!   against the items by Show Many); only when none is found is the job sent again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::Retryable;
use serde::{Deserialize, Serialize};
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
/// A chunk whose jobs keep vanishing is given up after this many submissions.
const MAX_SUBMISSIONS: u32 = 3;
/// Looks at the account's recent jobs for one whose answer was lost, while such a job is
/// still queued or working (its records cannot be checked before it finishes).
const MAX_RECOVERY_ROUNDS: u32 = 30;

/// A bulk endpoint and the shape of its request and results.
pub(super) struct BulkEndpoint {
    pub verb: Verb,
    /// Under `/api/v2/`.
    pub path: &'static str,
    /// The request's array key: `{"organizations": [...]}`.
    pub root: &'static str,
    pub shape: ResultShape,
    /// How to tell whether a job in the account's recent jobs carried our items, for an
    /// endpoint whose job must not be sent twice (creates); `None`: sending it twice is
    /// harmless (updates, memberships) and a lost answer is simply sent again.
    pub identity: Option<Identity>,
}

/// The records a create job made, read back by id, and the attribute that names an item.
pub(super) struct Identity {
    /// Show Many of the created records (`organizations/show_many`).
    pub show_many: &'static str,
    /// The answer's array key.
    pub root: &'static str,
    /// The attribute compared, case-insensitively: `name`, `email`.
    pub attribute: &'static str,
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
    identity: Some(Identity {
        show_many: "organizations/show_many",
        root: "organizations",
        attribute: "name",
    }),
};
pub(super) const UPDATE_ORGANIZATIONS: BulkEndpoint = BulkEndpoint {
    verb: Verb::Put,
    path: "organizations/update_many",
    root: "organizations",
    shape: ResultShape::Update,
    identity: None,
};
pub(super) const CREATE_USERS: BulkEndpoint = BulkEndpoint {
    verb: Verb::Post,
    path: "users/create_many",
    root: "users",
    shape: ResultShape::Create,
    identity: Some(Identity {
        show_many: "users/show_many",
        root: "users",
        attribute: "email",
    }),
};
pub(super) const CREATE_MEMBERSHIPS: BulkEndpoint = BulkEndpoint {
    verb: Verb::Post,
    path: "organization_memberships/create_many",
    root: "organization_memberships",
    shape: ResultShape::Create,
    // A membership created twice answers "already a member", which counts as done.
    identity: None,
};
pub(super) const UPDATE_USERS: BulkEndpoint = BulkEndpoint {
    verb: Verb::Put,
    path: "users/update_many",
    root: "users",
    shape: ResultShape::Update,
    identity: None,
};

/// What to do when a bulk endpoint answers 403.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum OnForbidden {
    Fail,
    /// Stop submitting and hand the unsubmitted items back (Create Many Users with bulk
    /// import off; the caller creates them one by one).
    HandBack,
}

/// A job Zendesk accepted, as a caller keeps it to learn its outcome later: its id and which
/// of the bulk call's items it carries (`first..first + count`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedJob {
    pub id: String,
    pub first: usize,
    pub count: usize,
}

impl AcceptedJob {
    pub fn items(&self) -> Range<usize> {
        self.first..self.first + self.count
    }
}

/// Hears of each job the moment Zendesk accepts it, before the next one is sent, so the
/// caller can record it where a crash does not lose it.
#[async_trait]
pub trait JobWatcher: Send + Sync {
    async fn accepted(&self, job: &AcceptedJob);
}

/// How a bulk write runs beyond its items.
#[derive(Default)]
pub struct BulkOptions<'a> {
    /// Jobs of these items Zendesk accepted earlier: followed to their end, not sent again
    /// while Zendesk still knows them.
    pub adopt: Vec<AcceptedJob>,
    pub watcher: Option<&'a dyn JobWatcher>,
    /// Nothing is sent and nothing waited for after this instant.
    pub deadline: Option<Instant>,
    /// Items whose outcome the caller already has: never sent, and given no outcome.
    pub skip: Vec<usize>,
}

/// Answers lost in transit for job submissions, and what was done about them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostAnswers {
    /// Submissions whose answer was lost.
    pub submissions: usize,
    /// Of those, jobs found queued in the account's recent jobs and followed instead.
    pub found: usize,
    /// Items sent again because no job of them was found.
    pub resubmitted_items: usize,
}

impl LostAnswers {
    pub fn add(&mut self, other: &LostAnswers) {
        self.submissions += other.submissions;
        self.found += other.found;
        self.resubmitted_items += other.resubmitted_items;
    }

    pub fn is_empty(&self) -> bool {
        self.submissions == 0
    }
}

/// Consecutive caller items sent as one job.
pub(super) struct Chunk {
    /// The caller's index of `items[0]`.
    pub first: usize,
    pub items: Vec<Value>,
    /// Times this chunk was sent (a vanished job's chunk is sent again).
    submissions: u32,
}

impl Chunk {
    fn new(first: usize, items: Vec<Value>) -> Self {
        Self {
            first,
            items,
            submissions: 0,
        }
    }

    fn indexes(&self) -> Range<usize> {
        self.first..self.first + self.items.len()
    }

    /// The items with the caller's indexes.
    pub(super) fn into_indexed(self) -> impl Iterator<Item = (usize, Value)> {
        (self.first..).zip(self.items)
    }
}

/// The outcome of a bulk run: one slot per item that finished, the jobs still open, the items
/// never sent, and the items a 403 handed back.
pub(super) struct BulkRun {
    pub outcomes: Outcomes,
    pub refused: Vec<Chunk>,
    pub open: Vec<AcceptedJob>,
    pub unsubmitted: Vec<usize>,
    pub lost: LostAnswers,
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

    /// Sends `items` through `endpoint` as paced jobs and waits for them (until the
    /// deadline, if any).
    pub(super) async fn run(
        &self,
        transport: &Transport,
        endpoint: &BulkEndpoint,
        items: Vec<Value>,
        on_forbidden: OnForbidden,
        options: BulkOptions<'_>,
    ) -> Result<BulkRun, ZendeskError> {
        let outcomes = Outcomes::new(items.len());
        let (adopted, pending) = adopt(items, options.adopt, &options.skip);
        let mut batch = Batch {
            jobs: self,
            transport,
            endpoint,
            on_forbidden,
            watcher: options.watcher,
            deadline: options.deadline,
            outcomes,
            pending,
            running: Vec::new(),
            refused: Vec::new(),
            account_full: false,
            poll: PollInterval::new(self.poll_min, self.poll_max),
            lost: LostAnswers::default(),
        };
        for (job, chunk) in adopted {
            batch.follow(job, chunk);
        }
        batch.run().await
    }
}

/// Splits `items` into the chunks of adopted jobs (each taken at most once, inside the items)
/// and the chunks still to send, in index order; the items of `skip` are in neither.
fn adopt(
    items: Vec<Value>,
    jobs: Vec<AcceptedJob>,
    skip: &[usize],
) -> (Vec<(AcceptedJob, Chunk)>, VecDeque<Chunk>) {
    let len = items.len();
    let mut taken = vec![false; len];
    for &index in skip {
        if let Some(t) = taken.get_mut(index) {
            *t = true;
        }
    }
    let mut adopted_jobs = Vec::new();
    for job in jobs {
        let range = job.items();
        if job.count == 0 || range.end > len || taken[range.clone()].iter().any(|t| *t) {
            tracing::warn!(job = %job.id, ?range, "an earlier job does not fit these items; ignored");
            continue;
        }
        taken[range].iter_mut().for_each(|t| *t = true);
        adopted_jobs.push(job);
    }
    let mut slots: Vec<Option<Value>> = items.into_iter().map(Some).collect();
    let adopted = adopted_jobs
        .into_iter()
        .map(|job| {
            let items = job
                .items()
                .map(|i| slots[i].take().expect("taken once"))
                .collect();
            let chunk = Chunk::new(job.first, items);
            (job, chunk)
        })
        .collect();
    for &index in skip {
        if let Some(slot) = slots.get_mut(index) {
            *slot = None;
        }
    }
    let mut pending = VecDeque::new();
    let mut run: Option<Chunk> = None;
    for (index, slot) in slots.into_iter().enumerate() {
        match slot {
            Some(item) => {
                let current = run.get_or_insert_with(|| Chunk::new(index, Vec::new()));
                current.items.push(item);
                if current.items.len() == MAX_JOB_ITEMS {
                    pending.extend(run.take());
                }
            }
            None => pending.extend(run.take()),
        }
    }
    pending.extend(run);
    (adopted, pending)
}

#[cfg(test)]
fn chunks(items: Vec<Value>) -> VecDeque<Chunk> {
    adopt(items, Vec::new(), &[]).1
}

/// A job's status as Zendesk reports it; every field but `id` may be missing or null.
#[derive(Debug, Clone, Deserialize)]
struct JobStatus {
    id: String,
    status: Option<String>,
    message: Option<String>,
    total: Option<u64>,
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

    fn is_finished(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some("completed" | "failed" | "killed")
        )
    }
}

/// An accepted job of ours.
struct RunningJob {
    id: String,
    chunk: Chunk,
    /// When a poll first saw it working (or finished): its `job_timeout` counts from here.
    working_since: Option<Instant>,
    last_status: Option<String>,
    missed_polls: u32,
    /// Released (dropped) when the job finishes.
    _slot: Option<OwnedSemaphorePermit>,
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
    /// Zendesk no longer knows it: its outcome is unknown.
    Vanished,
    /// Working longer than the job timeout: the client stops waiting; its outcome is unknown.
    TimedOut,
}

impl RunningJob {
    fn observe(&mut self, status: Option<&JobStatus>, timeout: Duration) -> Verdict {
        let Some(status) = status else {
            self.missed_polls += 1;
            if self.missed_polls >= VANISHED_AFTER_MISSED_POLLS {
                return Verdict::Vanished;
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
                if other == Some("working") && self.working_since.is_none() {
                    self.working_since = Some(Instant::now());
                }
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

    /// Queued time never counts: only a job working longer than `timeout` is given up.
    fn pending_unless_timed_out(&self, changed: bool, timeout: Duration) -> Verdict {
        match self.working_since {
            Some(since) if since.elapsed() >= timeout => Verdict::TimedOut,
            _ => Verdict::Pending { changed },
        }
    }

    fn ended(&self, entries: Vec<Value>, error: &str, details: impl Into<String>) -> Verdict {
        Verdict::Finished {
            entries,
            uncovered: ItemError::new(error, format!("job {}: {}", self.id, details.into())),
        }
    }

    fn accepted(&self) -> AcceptedJob {
        AcceptedJob {
            id: self.id.clone(),
            first: self.chunk.first,
            count: self.chunk.items.len(),
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
}

/// The wait until `deadline` (none: forever), capped at `wait`.
fn capped(wait: Duration, deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(deadline) => wait.min(deadline.saturating_duration_since(Instant::now())),
        None => wait,
    }
}

fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// A job Zendesk accepted, and how many more it says the account may queue.
struct Accepted {
    status: JobStatus,
    slots_left: Option<u64>,
}

/// What became of a create job whose answer was lost.
enum Recovered {
    /// Found in the account's recent jobs: follow it.
    Found(JobStatus),
    /// No such job: it never landed; send it again.
    NotFound,
    /// The deadline came while a candidate was still running.
    Unknown,
}

/// One bulk call in progress.
struct Batch<'a> {
    jobs: &'a Jobs,
    transport: &'a Transport,
    endpoint: &'a BulkEndpoint,
    on_forbidden: OnForbidden,
    watcher: Option<&'a dyn JobWatcher>,
    deadline: Option<Instant>,
    outcomes: Outcomes,
    pending: VecDeque<Chunk>,
    running: Vec<RunningJob>,
    refused: Vec<Chunk>,
    /// Zendesk will take no job until one finishes (TooManyJobs, or `remaining=0`).
    account_full: bool,
    poll: PollInterval,
    lost: LostAnswers,
}

impl Batch<'_> {
    async fn run(mut self) -> Result<BulkRun, ZendeskError> {
        let mut open = Vec::new();
        // Adopted jobs were accepted a while ago: ask about them at once.
        if !self.running.is_empty() {
            open.extend(self.poll_running().await?);
        }
        loop {
            if !past(self.deadline) {
                self.submit_what_fits().await?;
            }
            if self.running.is_empty() {
                if self.pending.is_empty() || past(self.deadline) {
                    break;
                }
                continue;
            }
            // The wait ends at the deadline, and the jobs are looked at once more then.
            tokio::time::sleep(capped(self.poll.next, self.deadline)).await;
            open.extend(self.poll_running().await?);
            if past(self.deadline) {
                break;
            }
        }
        // The deadline: what runs stays open, what was not sent is handed back.
        open.extend(self.running.drain(..).map(|job| job.accepted()));
        let unsubmitted = self.pending.drain(..).flat_map(|c| c.indexes()).collect();
        Ok(BulkRun {
            outcomes: self.outcomes,
            refused: self.refused,
            open,
            unsubmitted,
            lost: self.lost,
        })
    }

    /// Follows a job accepted earlier (adopted) without a slot of this client's allowance:
    /// Zendesk counts it whoever submitted it.
    fn follow(&mut self, job: AcceptedJob, chunk: Chunk) {
        self.running.push(RunningJob {
            id: job.id,
            chunk,
            working_since: None,
            last_status: None,
            missed_polls: 0,
            _slot: None,
        });
    }

    /// Submits pending jobs while this client has a free slot and Zendesk has room.
    async fn submit_what_fits(&mut self) -> Result<(), ZendeskError> {
        if self.running.is_empty() {
            // Nothing of ours to wait for: the next submission backs off instead.
            self.account_full = false;
        }
        while !self.account_full && !past(self.deadline) {
            let Some(mut chunk) = self.pending.pop_front() else {
                return Ok(());
            };
            let idle = self.running.is_empty();
            let Some(slot) = self.take_slot(idle).await else {
                self.pending.push_front(chunk);
                return Ok(());
            };
            chunk.submissions += 1;
            let submitted = if idle {
                self.submit_backing_off(&chunk).await
            } else {
                self.submit(&chunk).await
            };
            match submitted {
                Ok(accepted) => self.track(chunk, accepted, slot).await,
                Err(ZendeskError::TooManyJobs { .. }) if !idle => {
                    tracing::debug!(
                        "Zendesk's job slots are full; resubmitting after one of ours finishes"
                    );
                    chunk.submissions -= 1;
                    self.pending.push_front(chunk);
                    self.account_full = true;
                }
                Err(ZendeskError::TooManyJobs { .. }) if past(self.deadline) => {
                    chunk.submissions -= 1;
                    self.pending.push_front(chunk);
                }
                Err(ZendeskError::AnswerLost { message }) => {
                    self.lost.submissions += 1;
                    tracing::warn!(%message, path = self.endpoint.path, "a job submission's answer was lost; finding out what it did");
                    match self.recover(&chunk).await? {
                        Recovered::Found(status) => {
                            self.lost.found += 1;
                            let accepted = Accepted {
                                status,
                                slots_left: None,
                            };
                            self.track(chunk, accepted, slot).await;
                        }
                        Recovered::NotFound => {
                            self.transport.count_retry();
                            self.lost.resubmitted_items += chunk.items.len();
                            chunk.submissions -= 1;
                            self.pending.push_front(chunk);
                        }
                        Recovered::Unknown => {
                            chunk.submissions -= 1;
                            self.pending.push_front(chunk);
                            return Ok(());
                        }
                    }
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
            let wait = slots.acquire_owned();
            let slot = match self.deadline {
                Some(deadline) => tokio::time::timeout_at(deadline.into(), wait).await.ok()?,
                None => wait.await,
            };
            Some(slot.expect("the job slot semaphore is private to the client and never closed"))
        } else {
            slots.try_acquire_owned().ok()
        }
    }

    /// Submits with backoff on TooManyJobs: used when none of our jobs is running, so the
    /// slots are held by other clients and no poll of ours can tell when one frees. Their jobs
    /// take as long as they take, so the wait is bounded by the job timeout (and the
    /// deadline), not by a number of tries (a fixed count of short backoffs gave up while
    /// another integration's jobs were still running).
    async fn submit_backing_off(&self, chunk: &Chunk) -> Result<Accepted, ZendeskError> {
        let total = capped(self.jobs.timeout, self.deadline);
        let patient = self
            .jobs
            .retry
            .backoff()
            .without_max_times()
            .with_total_delay(Some(total));
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
        let answer = match (self.endpoint.verb, &self.endpoint.identity) {
            // A create job must not be queued twice: a lost answer is looked into first.
            (Verb::Post, Some(_)) => self.transport.post_once(url, &body).await?,
            (Verb::Post, None) => self.transport.post(url, &body).await?,
            (Verb::Put, _) => self.transport.put(url, &body).await?,
        };
        Counters::bump(&self.transport.counters.jobs_submitted);
        accepted(answer)
    }

    async fn track(&mut self, chunk: Chunk, accepted: Accepted, slot: OwnedSemaphorePermit) {
        if self.running.is_empty() {
            self.poll.restart();
        }
        if accepted.slots_left == Some(0) {
            self.account_full = true;
        }
        let mut job = RunningJob {
            id: accepted.status.id.clone(),
            chunk,
            working_since: None,
            last_status: None,
            missed_polls: 0,
            _slot: Some(slot),
        };
        tracing::debug!(
            job = %job.id,
            items = job.chunk.items.len(),
            path = self.endpoint.path,
            "job queued"
        );
        if let Some(watcher) = self.watcher {
            watcher.accepted(&job.accepted()).await;
        }
        // Zendesk may answer with a job that already finished.
        match job.observe(Some(&accepted.status), self.jobs.timeout) {
            Verdict::Finished { entries, uncovered } => self.record(&job, &entries, &uncovered),
            _ => self.running.push(job),
        }
    }

    /// One round of Show Many Job Statuses over every running job; answers the jobs given up
    /// on (working past the timeout): their outcome stays open.
    async fn poll_running(&mut self) -> Result<Vec<AcceptedJob>, ZendeskError> {
        let ids: Vec<&str> = self.running.iter().map(|j| j.id.as_str()).collect();
        let statuses = show_many(self.transport, &ids).await?;
        let mut progressed = false;
        let mut open = Vec::new();
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
                Verdict::TimedOut => {
                    tracing::warn!(job = %job.id, "a job has worked longer than the job timeout; its outcome is left open");
                    open.push(job.accepted());
                }
                Verdict::Vanished => {
                    progressed = true;
                    self.account_full = false;
                    self.vanished(job);
                }
            }
        }
        self.poll.after_poll(progressed);
        Ok(open)
    }

    /// A job Zendesk no longer knows: its items are sent again (a create that landed answers
    /// "taken", which the caller looks up), unless the chunk was sent too often already.
    fn vanished(&mut self, job: RunningJob) {
        let RunningJob { id, mut chunk, .. } = job;
        if chunk.submissions >= MAX_SUBMISSIONS {
            let error = ItemError::new(
                ItemError::JOB_VANISHED,
                format!("job {id}: Zendesk no longer knows the job status (expired or unknown)"),
            );
            self.outcomes.fail_rest(chunk.indexes(), &error);
            return;
        }
        tracing::warn!(job = %id, "Zendesk no longer knows a job; sending its items again");
        chunk.submissions = chunk.submissions.max(1);
        self.pending.push_front(chunk);
    }

    fn record(&mut self, job: &RunningJob, entries: &[Value], uncovered: &ItemError) {
        for (position, result) in job_item_results(self.endpoint.shape, &job.chunk.items, entries) {
            self.outcomes.record(job.chunk.first + position, result);
        }
        self.outcomes.fail_rest(job.chunk.indexes(), uncovered);
        tracing::debug!(job = %job.id, "job finished");
        crate::progress::job_finished(job.chunk.items.len());
    }

    /// Finds the job of a create whose answer was lost among the account's recent jobs: one
    /// of the same size that no call of ours follows, whose created records (read back by id)
    /// are the chunk's items at the same positions. A candidate still running is waited for,
    /// as its records can only be checked once it finishes.
    async fn recover(&self, chunk: &Chunk) -> Result<Recovered, ZendeskError> {
        let Some(identity) = &self.endpoint.identity else {
            return Ok(Recovered::NotFound);
        };
        let ours: HashSet<&str> = self.running.iter().map(|j| j.id.as_str()).collect();
        let mut looked_twice = false;
        for _ in 0..MAX_RECOVERY_ROUNDS {
            let recent = recent_jobs(self.transport).await?;
            let candidates: Vec<&JobStatus> = recent
                .iter()
                .filter(|job| !ours.contains(job.id.as_str()))
                .filter(|job| job.total.is_none_or(|t| t == chunk.items.len() as u64))
                .collect();
            let mut running = false;
            for candidate in candidates {
                if !candidate.is_finished() {
                    running = true;
                    continue;
                }
                if self.carries(identity, candidate, chunk).await? {
                    tracing::info!(job = %candidate.id, "the lost submission's job is found; following it");
                    return Ok(Recovered::Found(candidate.clone()));
                }
            }
            if !running {
                // Zendesk lists a job a moment after it accepts it: look once more.
                if looked_twice {
                    return Ok(Recovered::NotFound);
                }
                looked_twice = true;
            }
            if past(self.deadline) {
                return Ok(Recovered::Unknown);
            }
            tokio::time::sleep(capped(self.jobs.poll_min, self.deadline)).await;
        }
        Ok(Recovered::Unknown)
    }

    /// Whether a finished job created the chunk's items: every record it reports created is,
    /// read back, the item at its position. A job that created nothing carries no proof
    /// either way and is not taken.
    async fn carries(
        &self,
        identity: &Identity,
        job: &JobStatus,
        chunk: &Chunk,
    ) -> Result<bool, ZendeskError> {
        let created: Vec<(usize, u64)> = job
            .entries()
            .iter()
            .filter(|e| e.get("error").is_none())
            .filter_map(|e| {
                let index = usize::try_from(e.get("index")?.as_u64()?).ok()?;
                Some((index, e.get("id")?.as_u64()?))
            })
            .collect();
        if created.is_empty() || created.iter().any(|(i, _)| *i >= chunk.items.len()) {
            return Ok(false);
        }
        let ids: Vec<String> = created.iter().map(|(_, id)| id.to_string()).collect();
        let mut found: HashMap<u64, String> = HashMap::new();
        for group in ids.chunks(MAX_IDS_PER_POLL) {
            let joined = group.join(",");
            let url = self
                .transport
                .url(identity.show_many, &[("ids", &joined)])?;
            let answer = self.transport.get(url).await?;
            for record in answer
                .body
                .get(identity.root)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(id), Some(value)) = (
                    record.get("id").and_then(Value::as_u64),
                    record.get(identity.attribute).and_then(Value::as_str),
                ) {
                    found.insert(id, value.trim().to_lowercase());
                }
            }
        }
        Ok(created.iter().all(|(index, id)| {
            let wanted = chunk.items[*index]
                .get(identity.attribute)
                .and_then(Value::as_str)
                .map(|v| v.trim().to_lowercase());
            wanted.is_some() && found.get(id) == wanted.as_ref()
        }))
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
        statuses.extend(
            statuses_of(&answer.body, "job_statuses")?
                .into_iter()
                .map(|status| (status.id.clone(), status)),
        );
    }
    Ok(statuses)
}

/// The account's most recent job statuses (the first page of List Job Statuses, newest
/// first): where a job whose answer was lost shows up.
async fn recent_jobs(transport: &Transport) -> Result<Vec<JobStatus>, ZendeskError> {
    let url = transport.url("job_statuses", &[("page[size]", "100")])?;
    Counters::bump(&transport.counters.job_polls);
    let answer = transport.get(url).await?;
    statuses_of(&answer.body, "job_statuses")
}

fn statuses_of(body: &Value, key: &str) -> Result<Vec<JobStatus>, ZendeskError> {
    let listed = body.get(key).cloned().unwrap_or(Value::Array(Vec::new()));
    serde_json::from_value(listed).map_err(|e| ZendeskError::InvalidResponse {
        message: format!("unreadable {key}: {e}"),
    })
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
            chunk: Chunk::new(200, vec![json!({"name": "x"}); items]),
            working_since: None,
            last_status: None,
            missed_polls: 0,
            _slot: None,
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
    fn adopted_jobs_take_their_items_and_the_rest_is_cut_around_them() {
        let items: Vec<Value> = (0..250).map(|i| json!({ "n": i })).collect();
        let known = |id: &str, first, count| AcceptedJob {
            id: id.into(),
            first,
            count,
        };
        let (adopted, pending) = adopt(
            items,
            vec![
                known("a", 100, 100),
                known("overlaps", 150, 10),
                known("outside", 240, 20),
            ],
            &[0, 1, 249],
        );
        assert_eq!(adopted.len(), 1);
        assert_eq!(adopted[0].1.first, 100);
        assert_eq!(adopted[0].1.items[0], json!({"n": 100}));
        let shape: Vec<(usize, usize)> = pending.iter().map(|c| (c.first, c.items.len())).collect();
        assert_eq!(
            shape,
            vec![(2, 98), (200, 49)],
            "the settled items 0, 1 and 249 are not sent"
        );
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
        assert_eq!(job.observe(None, LONG), Verdict::Vanished);
    }

    #[test]
    fn the_timeout_counts_from_when_the_job_works_never_from_its_queueing() {
        let mut job = job(1);
        let queued = status(json!({"id": "j1", "status": "queued"}));
        // However long it sits queued, a zero timeout does not give it up.
        assert!(matches!(
            job.observe(Some(&queued), Duration::ZERO),
            Verdict::Pending { .. }
        ));
        let working = status(json!({"id": "j1", "status": "working"}));
        assert!(matches!(
            job.observe(Some(&working), LONG),
            Verdict::Pending { .. }
        ));
        assert_eq!(
            job.observe(Some(&working), Duration::ZERO),
            Verdict::TimedOut,
            "working past the timeout: given up, its outcome open"
        );
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
    fn waits_end_at_the_deadline() {
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(capped(Duration::from_secs(10), Some(soon)) <= Duration::from_millis(50));
        assert_eq!(
            capped(Duration::from_secs(10), None),
            Duration::from_secs(10)
        );
        assert!(past(Some(Instant::now())));
        assert!(!past(None));
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
