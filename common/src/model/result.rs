//! What a sync stage did (SPEC §8): `{instance}_sync_result.json`, `partner/sync_result.json`,
//! `users/sync_result.json`.

use serde::{Deserialize, Serialize};

use super::{HeldBack, SalesforceId, SyncKind};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncResult {
    pub sync: Option<SyncKind>,
    pub created: Vec<RecordOutcome>,
    pub updated: Vec<RecordOutcome>,
    pub marked: Vec<RecordOutcome>,
    /// Records Zendesk refused; more than `max_record_errors` fails the stage.
    pub errors: Vec<RecordError>,
    /// Creates and renames compare did not send (a taken name, a record another sync owns):
    /// reported every run until a person resolves them, never counted as record errors.
    #[serde(default)]
    pub held_back: Vec<HeldBack>,
    /// Things that did not fail a record but need a person (Slack not configured, bulk user
    /// import disabled, …).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Global org sync: the new orgs that no sold-to contact could be added to (all of them;
    /// the Slack digest names the first ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_contacts: Vec<NewOrgWithoutContacts>,
    /// What the deletion guard decided about this sync's marks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_guard: Option<GuardDecision>,
    /// An unfinished sync: how far it got. The next invocation of the same run goes on from
    /// here; a finished sync has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<SyncProgress>,
    /// Work the execution's time did not fit, left for the next run (whose compare finds it
    /// again): counts per kind.
    #[serde(default, skip_serializing_if = "Pending::is_empty")]
    pub left_for_next_run: Pending,
}

/// How far an unfinished sync got through its plan (creates, then updates, then marks).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncProgress {
    /// Items done of each kind, in plan order.
    pub done: Pending,
    /// The plan's sizes when it began: a resume of a different plan starts over.
    pub planned: Pending,
    /// Invocations so far.
    pub invocations: usize,
    /// The longest slice of work so far, in seconds: what the next one is expected to take.
    pub slice_seconds: f64,
}

/// Creates, updates and marks: done, planned or left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub creates: usize,
    pub updates: usize,
    pub marks: usize,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    pub fn total(&self) -> usize {
        self.creates + self.updates + self.marks
    }
}

impl SyncResult {
    /// Adds a warning once: a sync in several slices meets the same condition in each.
    pub fn warn(&mut self, warning: &str) {
        if !self.warnings.iter().any(|w| w == warning) {
            self.warnings.push(warning.to_owned());
        }
    }

    /// The counts a sync reports — as its stage's output, and in the summary of a run whose
    /// sync failed after writing its result (a tripped guard still applied creates and
    /// updates).
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts = vec![
            ("created", self.created.len()),
            (
                "already_done",
                self.created.iter().filter(|c| c.already).count(),
            ),
            ("updated", self.updated.len()),
            ("marked", self.marked.len()),
            ("errors", self.errors.len()),
            ("held_back", self.held_back.len()),
            ("warnings", self.warnings.len()),
        ];
        if self.sync == Some(SyncKind::Global) {
            counts.push(("without_contacts", self.without_contacts.len()));
        }
        let left = self.left_for_next_run;
        if !left.is_empty() {
            counts.extend([
                ("creates_left", left.creates),
                ("updates_left", left.updates),
                ("marks_left", left.marks),
            ]);
        }
        counts
    }
}

/// A record Zendesk accepted. `key` is the join key (Salesforce id, or email for users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordOutcome {
    pub key: String,
    pub id: Option<u64>,
    /// A create that had landed in an earlier attempt (a redrive after a crash, a lost
    /// answer): Zendesk refused it as taken by this very record, so it counts as done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already: bool,
}

impl RecordOutcome {
    pub fn new(key: impl Into<String>, id: Option<u64>) -> RecordOutcome {
        RecordOutcome {
            key: key.into(),
            id,
            already: false,
        }
    }
}

/// A record Zendesk refused; the stage goes on (up to `max_record_errors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    pub key: String,
    pub action: SyncAction,
    pub error: String,
    pub details: Option<String>,
}

impl RecordError {
    /// One line for people: `create 0011…: DuplicateValue the name is taken`.
    pub fn describe(&self) -> String {
        format!(
            "{} {}: {} {}",
            self.action.as_str(),
            self.key,
            self.error,
            self.details.as_deref().unwrap_or("")
        )
        .trim_end()
        .to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncAction {
    Create,
    Update,
    Mark,
    AssociateUser,
    Notify,
}

impl SyncAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncAction::Create => "create",
            SyncAction::Update => "update",
            SyncAction::Mark => "mark",
            SyncAction::AssociateUser => "associate user",
            SyncAction::Notify => "notify",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrgWithoutContacts {
    pub salesforce_id: SalesforceId,
    pub name: String,
    pub id: u64,
    /// The sold-to emails Salesforce lists for the account (none could be added).
    pub sold_to_emails: Vec<String>,
}

/// What the deletion guard decided, recorded in the sync result and the run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GuardDecision {
    /// Within the limit.
    Allowed { marks: usize, limit: f64 },
    /// Over the limit, but an operator allowed at least this many for this execution.
    AllowedByOperator {
        marks: usize,
        limit: f64,
        allowed: usize,
    },
    /// Over the limit: marks are held back and the stage fails with `DeletionGuardTripped`.
    Tripped {
        marks: usize,
        limit: f64,
        managed: usize,
    },
}

impl GuardDecision {
    pub fn is_tripped(&self) -> bool {
        matches!(self, GuardDecision::Tripped { .. })
    }

    /// In words, for the summary; `records` names what is counted (`orgs`, `users`).
    pub fn describe(&self, records: &str) -> String {
        match self {
            GuardDecision::Allowed { marks, limit } => {
                format!("deletion guard passed: {marks} marks, limit {limit}")
            }
            GuardDecision::AllowedByOperator {
                marks,
                limit,
                allowed,
            } => format!(
                "deletion guard: {marks} marks over the limit of {limit}, allowed by the operator (up to {allowed})"
            ),
            GuardDecision::Tripped {
                marks,
                limit,
                managed,
            } => format!(
                "deletion guard TRIPPED: {marks} marks over the limit of {limit} ({managed} managed {records}); nothing marked"
            ),
        }
    }
}
