//! What a sync stage did (SPEC §8): `{instance}_sync_result.json`, `partner/sync_result.json`,
//! `users/sync_result.json`.

use serde::{Deserialize, Serialize};

use super::Instance;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncResult {
    pub instance: Option<Instance>,
    pub created: Vec<RecordOutcome>,
    pub updated: Vec<RecordOutcome>,
    pub marked: Vec<RecordOutcome>,
    pub errors: Vec<RecordError>,
    /// Things that did not fail the record but need a person (no Slack configured, a new org
    /// with no contact attached, …).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Set when the deletion guard held the marks back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_guard: Option<crate::rules::deletion_guard::GuardDecision>,
}

/// A record Zendesk accepted. `key` is the join key (Salesforce id, or email for users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordOutcome {
    pub key: String,
    pub id: Option<u64>,
}

/// A record Zendesk refused; the stage goes on (up to `max_record_errors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    pub key: String,
    pub action: SyncAction,
    pub error: String,
    pub details: Option<String>,
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
