//! What the emulator keeps of a background job: its work, its state and its place in the
//! job status list. The job runner (`jobs.rs`) moves it along.

use std::cmp::Reverse;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::pagination::CursorKey;

/// How an update item names its record.
#[derive(Clone, Debug)]
pub(crate) enum RecordRef {
    Id(u64),
    ExternalId(String),
    /// Neither `id` nor `external_id` (or not usable): the item fails.
    Unnamed,
}

impl RecordRef {
    /// The `id` or `external_id` of a batch item.
    pub(crate) fn of_item(item: &Map<String, Value>) -> Self {
        if let Some(id) = item.get("id") {
            return id.as_u64().map_or(RecordRef::Unnamed, RecordRef::Id);
        }
        match item.get("external_id") {
            Some(Value::String(external_id)) => RecordRef::ExternalId(external_id.clone()),
            _ => RecordRef::Unnamed,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct UpdateItem {
    pub target: RecordRef,
    pub attributes: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub(crate) enum JobWork {
    CreateOrganizations(Vec<Map<String, Value>>),
    UpdateOrganizations(Vec<UpdateItem>),
    CreateUsers(Vec<Map<String, Value>>),
    UpdateUsers(Vec<UpdateItem>),
    CreateMemberships(Vec<Map<String, Value>>),
}

impl JobWork {
    /// Zendesk names the job class in `job_type` and in `TooManyJobs`. Only
    /// `UserBulkUpdateJobV2` appears in the docs; the others follow its pattern.
    pub(crate) fn job_type(&self) -> &'static str {
        match self {
            JobWork::CreateOrganizations(_) => "OrganizationBulkCreateJob",
            JobWork::UpdateOrganizations(_) => "OrganizationBulkUpdateJob",
            JobWork::CreateUsers(_) => "UserBulkCreateJobV2",
            JobWork::UpdateUsers(_) => "UserBulkUpdateJobV2",
            JobWork::CreateMemberships(_) => "OrganizationMembershipBulkCreateJob",
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            JobWork::CreateOrganizations(items)
            | JobWork::CreateUsers(items)
            | JobWork::CreateMemberships(items) => items.len(),
            JobWork::UpdateOrganizations(items) | JobWork::UpdateUsers(items) => items.len(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobState {
    Queued,
    Working,
    Completed,
}

impl JobState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Working => "working",
            JobState::Completed => "completed",
        }
    }
}

pub(crate) struct Job {
    pub(crate) id: String,
    /// Its place in the instance's submission order.
    pub(crate) number: u64,
    pub(crate) job_type: &'static str,
    pub(crate) state: JobState,
    pub(crate) total: usize,
    pub(crate) progress: usize,
    pub(crate) message: Option<String>,
    pub(crate) results: Option<Vec<Value>>,
    pub(crate) created: Instant,
    pub(crate) created_at: DateTime<Utc>,
    /// It has been queued for its half of `job_delay` and may start when a worker is free.
    pub(crate) ready: bool,
    /// When it started working.
    pub(crate) started: Option<Instant>,
    pub(crate) completed_at: Option<DateTime<Utc>>,
    pub(crate) work: Option<JobWork>,
}

impl Job {
    pub(crate) fn in_flight(&self) -> bool {
        self.state != JobState::Completed
    }

    /// Where the job sorts in the job status list.
    pub(crate) fn list_key(&self) -> JobListKey {
        JobListKey {
            completed: self.completed_at.is_some(),
            completed_at: Reverse(
                self.completed_at
                    .map_or(0, |at| at.timestamp_nanos_opt().unwrap_or(i64::MAX)),
            ),
            submitted: Reverse(self.number),
        }
    }

    pub(crate) fn render(&self, base_url: &str) -> Value {
        json!({
            "id": self.id,
            "url": format!("{base_url}/api/v2/job_statuses/{}", self.id),
            "job_type": self.job_type,
            "total": self.total,
            "progress": self.progress,
            "status": self.state.as_str(),
            "message": self.message,
            "results": self.results,
        })
    }
}

/// The order of `GET /api/v2/job_statuses`: "by completion date then creation date,
/// descending" (apis.md A8). Jobs still queued or working have no completion date and come
/// first, newest submitted first; then completed ones, most recently completed first, ties
/// by newest submitted. Cursors of the list carry this key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct JobListKey {
    pub(crate) completed: bool,
    /// Nanoseconds since the epoch; 0 while in flight.
    pub(crate) completed_at: Reverse<i64>,
    /// The job's place in submission order (creation order, exactly).
    pub(crate) submitted: Reverse<u64>,
}

impl CursorKey for JobListKey {
    fn to_text(&self) -> String {
        format!(
            "job:{}:{}:{}",
            u8::from(self.completed),
            self.completed_at.0,
            self.submitted.0
        )
    }

    fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix("job:")?.split(':');
        let completed = match parts.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let completed_at = parts.next()?.parse().ok()?;
        let submitted = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(JobListKey {
            completed,
            completed_at: Reverse(completed_at),
            submitted: Reverse(submitted),
        })
    }
}
