//! What a sync stage did (SPEC §8): `{instance}_sync_result.json`, `partner/sync_result.json`,
//! `users/sync_result.json`.

use serde::{Deserialize, Serialize};

use super::{HeldBack, SalesforceId, SyncKind};
use crate::zendesk::{AcceptedJob, LostAnswers};

fn is_zero(n: &u32) -> bool {
    *n == 0
}

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
    /// A digest of the plan the result is of: a later invocation, retry or redrive of the run
    /// resumes it only on the same plan (and a finished one answers it as it is).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plan: String,
    /// An unfinished sync: how far it got. The next invocation of the same run goes on from
    /// here; a finished sync has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<SyncProgress>,
    /// Work the execution's time did not fit, left for the next run (whose compare finds it
    /// again): counts per kind.
    #[serde(default, skip_serializing_if = "Pending::is_empty")]
    pub left_for_next_run: Pending,
    /// The execution's redrive count when this result was last written (0: the first
    /// attempt); each record carries the attempt that settled it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The run's Slack digest went out (it goes out once, however often the sync is re-run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notified: bool,
    /// Job submissions whose answer was lost, and what was done about them.
    #[serde(default, skip_serializing_if = "LostAnswers::is_empty")]
    pub lost_answers: LostAnswers,
}

/// How far a sync got through its plan (creates, then updates, then marks): its place, kept
/// for the whole run so a later invocation, a retry or a redrive goes on from it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncProgress {
    /// Items done of each kind, in plan order: the windows settled.
    pub done: Pending,
    /// The plan's sizes.
    pub planned: Pending,
    /// Invocations so far.
    pub invocations: usize,
    /// The longest window of work so far, in seconds: what the next one is expected to take.
    pub slice_seconds: f64,
    /// The users this sync created or added to a new org (Global sold-to contacts): a sold-to
    /// email met again in a later window is a user in another org, whatever search says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<AssociatedUser>,
}

/// A user this sync put into a new org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociatedUser {
    /// Lower-cased.
    pub email: String,
    pub id: Option<u64>,
    pub organization_id: u64,
}

/// `{sync}_sync_window.json`: the window of the plan a sync is working on, and the Zendesk
/// jobs of it that were accepted but whose outcome is not yet in the result. Written the moment
/// a job is accepted, so a redo asks Zendesk what those jobs did instead of sending them again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncWindow {
    /// The plan digest (as [`SyncProgress::plan`]).
    pub plan: String,
    pub action: SyncAction,
    /// The window's items: `start..start + len` of the plan's items of `action`.
    pub start: usize,
    pub len: usize,
    pub step: WindowStep,
    /// Offsets (`0..len`) of the items whose outcome is in the result.
    #[serde(default)]
    pub settled: Vec<usize>,
    /// Jobs accepted whose outcome is not in the result yet.
    #[serde(default)]
    pub jobs: Vec<WindowJob>,
}

impl SyncResult {
    /// Records the outcomes of records of `action`, replacing any earlier outcome of the same
    /// records for it: a record has one outcome in a result, its last, however often its window
    /// was retried or continued.
    pub fn settle(
        &mut self,
        action: SyncAction,
        done: Vec<RecordOutcome>,
        errors: Vec<RecordError>,
    ) {
        let keys: std::collections::HashSet<String> = done
            .iter()
            .map(|o| o.key.clone())
            .chain(errors.iter().map(|e| e.key.clone()))
            .collect();
        if keys.is_empty() {
            return;
        }
        let list = match action {
            SyncAction::Create => &mut self.created,
            SyncAction::Update => &mut self.updated,
            _ => &mut self.marked,
        };
        list.retain(|o| !keys.contains(&o.key));
        list.extend(done);
        self.errors
            .retain(|e| e.action != action || !keys.contains(&e.key));
        self.errors.extend(errors);
    }
}

/// The part of a window under way: its own writes, then (Global creates) the sold-to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowStep {
    Write,
    SoldToUsers,
}

/// An accepted job of a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowJob {
    pub step: WindowStep,
    #[serde(flatten)]
    pub job: AcceptedJob,
    /// The attempt (redrive count) that sent it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
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
    /// updates). Counted by record, never by list length: a record has one outcome however
    /// often its slice was retried.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts = vec![
            ("created", records(&self.created)),
            (
                "already_done",
                records(self.created.iter().filter(|c| c.already)),
            ),
            ("updated", records(&self.updated)),
            ("marked", records(&self.marked)),
            ("errors", self.error_records()),
            ("held_back", self.held_back.len()),
            ("warnings", self.warnings.len()),
        ];
        if self.sync == Some(SyncKind::Global) {
            counts.push(("without_contacts", self.without_contacts.len()));
        }
        if !self.lost_answers.is_empty() {
            counts.extend([
                ("lost_answers", self.lost_answers.submissions),
                ("lost_answers_found", self.lost_answers.found),
                ("resubmitted", self.lost_answers.resubmitted_items),
            ]);
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

/// Distinct records among outcomes.
fn records<'a>(outcomes: impl IntoIterator<Item = &'a RecordOutcome>) -> usize {
    outcomes
        .into_iter()
        .map(|o| o.key.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

impl SyncResult {
    /// Record errors by record: a record (and, for sold-to contacts, each of its emails) counts
    /// once.
    pub fn error_records(&self) -> usize {
        self.errors
            .iter()
            .map(|e| (e.action, e.key.as_str(), e.subject()))
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// What each attempt of the run settled: `(attempt, created, updated, marked, errors)`,
    /// by attempt.
    pub fn by_attempt(&self) -> std::collections::BTreeMap<u32, AttemptCounts> {
        let mut by: std::collections::BTreeMap<u32, AttemptCounts> = Default::default();
        for c in &self.created {
            by.entry(c.attempt).or_default().created += 1;
        }
        for u in &self.updated {
            by.entry(u.attempt).or_default().updated += 1;
        }
        for m in &self.marked {
            by.entry(m.attempt).or_default().marked += 1;
        }
        for e in &self.errors {
            by.entry(e.attempt).or_default().errors += 1;
        }
        by
    }
}

/// What one attempt (the first, or a redrive) of a sync settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptCounts {
    pub created: usize,
    pub updated: usize,
    pub marked: usize,
    pub errors: usize,
}

/// A record Zendesk accepted. `key` is the join key (Salesforce id, or email for users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordOutcome {
    pub key: String,
    pub id: Option<u64>,
    /// A create that had landed in an earlier attempt (a redrive after a crash, a lost
    /// answer): found by its job's status or refused as taken by this very record, so it
    /// counts as done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already: bool,
    /// The attempt (the execution's redrive count) whose write settled it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
}

impl RecordOutcome {
    pub fn new(key: impl Into<String>, id: Option<u64>) -> RecordOutcome {
        RecordOutcome {
            key: key.into(),
            id,
            already: false,
            attempt: 0,
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
    /// The attempt (the execution's redrive count) that met it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
}

impl RecordError {
    /// What in the record the error is about beyond its key: a sold-to contact's email (its
    /// details start with it), else nothing.
    pub fn subject(&self) -> Option<&str> {
        (self.action == SyncAction::AssociateUser)
            .then(|| self.details.as_deref()?.split(':').next())
            .flatten()
    }

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
