//! Background jobs (apis.md A7 job limit, A8 job statuses).
//!
//! A bulk endpoint validates the request's shape, queues a job and answers at once. The job
//! is queued for the first half of `job_delay`, working for the second half, and applies its
//! items when it completes, validating each against the records as they are *then*: two
//! in-flight creates of one name give one success and one `DuplicateValue`.
//!
//! With `job_workers` set, at most that many jobs of an instance work at once; the others
//! stay queued, past their half `job_delay`, until a worker is free, and are taken in the
//! order they were submitted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::RngExt;
use serde_json::{Map, Value, json};

use super::errors::{RecordInvalid, ZendeskError};
use super::headers::{INFLIGHT_HEADER, inflight_header};
use super::job_book::{Job, JobListKey, JobState, JobWork, UpdateItem};
use super::organizations::Organizations;
use super::pagination::{self, PageRequest};
use super::request::{RequestUrl, check_batch_size};
use super::state::InstanceState;
use super::store::InstanceData;
use super::users::Users;

/// Queues `work` and answers with its job status, or refuses with `TooManyJobs`.
pub(crate) fn enqueue(state: &Arc<InstanceState>, work: JobWork) -> Result<Response, ZendeskError> {
    check_batch_size(work.len())?;
    let max = state.settings.max_inflight_jobs;
    let (id, body, header) = {
        let mut data = state.data();
        data.forget_expired_jobs(state.settings.job_ttl);
        let in_flight = data.in_flight_job_ids();
        if in_flight.len() >= max {
            return Err(ZendeskError::TooManyJobs {
                job_type: work.job_type(),
                inflight_header: inflight_header(
                    max,
                    0,
                    data.next_slot_frees_in(state.settings.job_delay),
                ),
                current_job_ids: in_flight,
            });
        }
        let id = data.new_job_id();
        let number = data.next_job_number;
        data.next_job_number += 1;
        let job = Job {
            id: id.clone(),
            number,
            job_type: work.job_type(),
            state: JobState::Queued,
            total: work.len(),
            progress: 0,
            message: None,
            results: None,
            created: Instant::now(),
            created_at: data.now(),
            ready: false,
            started: None,
            completed_at: None,
            work: Some(work),
        };
        let body = json!({"job_status": job.render(&data.base_url)});
        data.jobs.insert(id.clone(), job);
        data.job_queue.push_back(id.clone());
        let remaining = max - in_flight.len() - 1;
        let header = inflight_header(
            max,
            remaining,
            data.next_slot_frees_in(state.settings.job_delay),
        );
        (id, body, header)
    };
    tokio::spawn(run(Arc::clone(state), id));
    let mut response = Json(body).into_response();
    response.headers_mut().insert(INFLIGHT_HEADER, header);
    Ok(response)
}

/// A job's queued half: once it has waited half of `job_delay` it may start, and starts at
/// once unless every worker is busy or an earlier job is still waiting.
async fn run(state: Arc<InstanceState>, id: String) {
    if !state.pause(state.settings.job_delay / 2).await {
        return;
    }
    let started = {
        let mut data = state.data();
        if let Some(job) = data.jobs.get_mut(&id) {
            job.ready = true;
        }
        data.start_ready_jobs(state.settings.job_workers)
    };
    work_on(&state, started);
}

fn work_on(state: &Arc<InstanceState>, ids: Vec<String>) {
    for id in ids {
        tokio::spawn(work(Arc::clone(state), id));
    }
}

/// A job's working half; completing it frees its worker for the next queued job.
async fn work(state: Arc<InstanceState>, id: String) {
    let delay = state.settings.job_delay;
    if !state.pause(delay - delay / 2).await {
        return;
    }
    let started = {
        let mut data = state.data();
        let now = data.now();
        data.complete_job(&id, now);
        data.start_ready_jobs(state.settings.job_workers)
    };
    work_on(&state, started);
}

impl InstanceData {
    fn new_job_id(&mut self) -> String {
        let bytes: [u8; 16] = self.job_ids.random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn in_flight_job_ids(&self) -> Vec<String> {
        let mut in_flight: Vec<&Job> = self.jobs.values().filter(|j| j.in_flight()).collect();
        in_flight.sort_by_key(|j| j.number);
        in_flight.into_iter().map(|j| j.id.clone()).collect()
    }

    /// When the first in-flight job should finish, freeing a slot: a working job half a
    /// `job_delay` after it started, a queued one half a `job_delay` after it can start
    /// (when every worker is busy, a working job finishes first anyway).
    fn next_slot_frees_in(&self, job_delay: Duration) -> Duration {
        let (queued_for, working_for) = (job_delay / 2, job_delay - job_delay / 2);
        let now = Instant::now();
        self.jobs
            .values()
            .filter(|j| j.in_flight())
            .map(|j| {
                let start = j
                    .started
                    .unwrap_or_else(|| (j.created + queued_for).max(now));
                (start + working_for).saturating_duration_since(now)
            })
            .min()
            .unwrap_or_default()
    }

    /// Moves queued jobs that have served their queued time to `working`, oldest first, while
    /// a worker is free (`workers` 0: no limit), and returns their ids. With a limit the
    /// queue is strict: no job starts before one submitted earlier.
    fn start_ready_jobs(&mut self, workers: usize) -> Vec<String> {
        let limited = workers > 0;
        let mut working = if limited {
            self.jobs
                .values()
                .filter(|j| j.state == JobState::Working)
                .count()
        } else {
            0
        };
        let now = Instant::now();
        let mut started = Vec::new();
        let mut blocked = false;
        let jobs = &mut self.jobs;
        self.job_queue.retain(|id| {
            let Some(job) = jobs.get_mut(id) else {
                // Expired (job_ttl) before it could start.
                return false;
            };
            if blocked {
                return true;
            }
            if !job.ready || (limited && working >= workers) {
                blocked = limited;
                return true;
            }
            job.state = JobState::Working;
            job.started = Some(now);
            working += 1;
            started.push(id.clone());
            false
        });
        started
    }

    fn forget_expired_jobs(&mut self, ttl: Duration) {
        self.jobs.retain(|_, job| job.created.elapsed() < ttl);
    }

    fn complete_job(&mut self, id: &str, now: DateTime<Utc>) {
        let Some(work) = self.jobs.get_mut(id).and_then(|job| job.work.take()) else {
            return;
        };
        let results = match work {
            JobWork::CreateOrganizations(items) => create_results(&items, |attributes| {
                self.create_organization(attributes, now)
            }),
            JobWork::UpdateOrganizations(items) => update_results(&items, "Organization", |item| {
                let id = self.resolve::<Organizations>(&item.target)?;
                Some((id, self.update_organization(id, &item.attributes, now)?))
            }),
            JobWork::CreateUsers(items) => {
                create_results(&items, |attributes| self.create_user(attributes, now))
            }
            JobWork::UpdateUsers(items) => update_results(&items, "User", |item| {
                let id = self.resolve::<Users>(&item.target)?;
                Some((id, self.update_user(id, &item.attributes, now)?))
            }),
            JobWork::CreateMemberships(items) => create_results(&items, |attributes| {
                self.create_membership(attributes, None, now)
            }),
        };
        if let Some(job) = self.jobs.get_mut(id) {
            job.state = JobState::Completed;
            job.completed_at = Some(now);
            job.progress = results.len();
            job.message = Some(
                now.format("Completed at %Y-%m-%d %H:%M:%S +0000")
                    .to_string(),
            );
            job.results = Some(results);
        }
    }

    pub(crate) fn jobs_json(&self) -> Vec<Value> {
        let mut jobs: Vec<&Job> = self.jobs.values().collect();
        jobs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        jobs.into_iter()
            .map(|job| job.render(&self.base_url))
            .collect()
    }
}

/// One result per item: `{id, index}`, or `{index, error, details}` when it failed.
fn create_results(
    items: &[Map<String, Value>],
    mut create: impl FnMut(&Map<String, Value>) -> Result<u64, RecordInvalid>,
) -> Vec<Value> {
    items
        .iter()
        .enumerate()
        .map(|(index, attributes)| match create(attributes) {
            Ok(id) => json!({"id": id, "index": index}),
            Err(invalid) => {
                json!({"index": index, "error": invalid.code(), "details": invalid.summary()})
            }
        })
        .collect()
}

/// One result per item. `update` gives the record it found (none: not found) and whether
/// the change was valid.
fn update_results(
    items: &[UpdateItem],
    kind: &str,
    mut update: impl FnMut(&UpdateItem) -> Option<(u64, Result<(), RecordInvalid>)>,
) -> Vec<Value> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match update(item) {
            Some((id, Ok(()))) => {
                json!({"id": id, "action": "update", "success": true, "status": "Updated"})
            }
            Some((id, Err(invalid))) => {
                failed_update(index, Some(id), invalid.code(), &invalid.summary())
            }
            None => failed_update(index, None, "RecordNotFound", &format!("{kind} not found")),
        })
        .collect()
}

fn failed_update(index: usize, id: Option<u64>, error: &str, details: &str) -> Value {
    let mut result = json!({"index": index, "action": "update", "success": false,
        "status": "Failed", "error": error, "details": details});
    if let Some(id) = id {
        result["id"] = json!(id);
    }
    result
}

/// The account's job statuses still kept (`job_ttl`), cursor-paginated only, in
/// [`JobListKey`] order. Without `page[size]` a page holds 100.
pub(crate) async fn list(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let request = PageRequest::cursor_from_url(&url)?;
    let mut data = state.data();
    data.forget_expired_jobs(state.settings.job_ttl);
    let by_key: BTreeMap<JobListKey, &Job> = data
        .jobs
        .values()
        .map(|job| (job.list_key(), job))
        .collect();
    let keys: Vec<JobListKey> = by_key.keys().cloned().collect();
    Ok(Json(pagination::page(
        keys,
        request,
        "job_statuses",
        &url,
        &state.server_url,
        |key| by_key[&key].render(&data.base_url),
    )))
}

pub(crate) async fn show(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ZendeskError> {
    let mut data = state.data();
    data.forget_expired_jobs(state.settings.job_ttl);
    let job = data.jobs.get(&id).ok_or(ZendeskError::RecordNotFound)?;
    Ok(Json(json!({"job_status": job.render(&data.base_url)})))
}

/// Unknown and expired ids are left out of the list.
pub(crate) async fn show_many(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let ids = url.query.list("ids").ok_or_else(|| {
        ZendeskError::bad_request(
            "ParameterMissing",
            "param is missing or the value is empty: ids",
        )
    })?;
    check_batch_size(ids.len())?;
    let mut data = state.data();
    data.forget_expired_jobs(state.settings.job_ttl);
    let statuses: Vec<Value> = ids
        .iter()
        .filter_map(|id| data.jobs.get(id))
        .map(|job| job.render(&data.base_url))
        .collect();
    Ok(Json(json!({"job_statuses": statuses})))
}
