//! The errors a stage reports to Step Functions (SPEC §11). The *name* is what the state
//! machine's `Retry` matches, so it is stable and never a Rust type path.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::model::SyncKind;

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "PascalCase")]
pub enum StageError {
    /// Network, throttling, 5xx — after the stage's own retries. Step Functions retries the
    /// stage with backoff.
    #[error("{0}")]
    Retryable(String),
    /// An artifact did not parse or validate; no Zendesk write happened in this stage.
    #[error("artifact {key} is invalid at {path}: {message}")]
    InvalidArtifact {
        key: String,
        path: String,
        message: String,
    },
    #[error("{0}")]
    InvalidConfig(String),
    /// The sync would mark more records than the guard allows; creates and updates were
    /// applied, the marks were not.
    #[error(
        "{sync}: {marks} {records} would be marked, more than the limit of {limit} \
         ({managed} managed {records}); nothing was marked. If the list in {not_in_sync} is right, \
         start an execution with {{\"allow_deletions\": {{\"{sync}\": {marks}}}}}, or redrive this \
         one with --allow-deletions {sync}={marks} (zdsync redrive / zdsync cloud redrive)"
    )]
    DeletionGuardTripped {
        sync: SyncKind,
        /// `orgs` or `users`.
        records: String,
        marks: usize,
        limit: f64,
        managed: usize,
        /// The artifact listing the marks.
        not_in_sync: String,
    },
    #[error("{count} records failed ({max} allowed); see {result_key}")]
    TooManyRecordErrors {
        count: usize,
        max: usize,
        result_key: String,
    },
    #[error("{0}")]
    EmptySource(String),
    #[error("{0}")]
    AuthFailed(String),
    /// The plan was made from gathers older than `sync.plan_max_age_secs`: applying it could
    /// write stale values or mark an org whose account came back. Nothing was written.
    #[error(
        "{sync}: the plan was made from Zendesk and Salesforce as they were {age_secs} s ago, \
         more than sync.plan_max_age_secs ({max_secs} s); nothing was written. Start a new \
         execution, which gathers afresh{allowance}"
    )]
    PlanStale {
        sync: SyncKind,
        age_secs: u64,
        max_secs: u64,
        /// What to add to the new execution's input when the deletion guard had tripped.
        allowance: String,
    },
    /// A redriven execution's sync found another execution of the state machine running: two
    /// syncs writing at once could duplicate creates. Nothing was written.
    #[error(
        "{sync}: another execution of the state machine is running ({other}); this redriven \
         execution wrote nothing. Redrive it again once that execution has ended, or let that \
         execution bring Zendesk up to date"
    )]
    AnotherExecutionRunning { sync: SyncKind, other: String },
}

impl StageError {
    /// The stable error name Step Functions sees.
    pub fn name(&self) -> &'static str {
        match self {
            StageError::Retryable(_) => "Retryable",
            StageError::InvalidArtifact { .. } => "InvalidArtifact",
            StageError::InvalidConfig(_) => "InvalidConfig",
            StageError::DeletionGuardTripped { .. } => "DeletionGuardTripped",
            StageError::TooManyRecordErrors { .. } => "TooManyRecordErrors",
            StageError::EmptySource(_) => "EmptySource",
            StageError::AuthFailed(_) => "AuthFailed",
            StageError::PlanStale { .. } => "PlanStale",
            StageError::AnotherExecutionRunning { .. } => "AnotherExecutionRunning",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, StageError::Retryable(_))
    }

    /// Every name, for checks against the state machine's Retry rules.
    pub const NAMES: [&'static str; 9] = [
        "Retryable",
        "InvalidArtifact",
        "InvalidConfig",
        "DeletionGuardTripped",
        "TooManyRecordErrors",
        "EmptySource",
        "AuthFailed",
        "PlanStale",
        "AnotherExecutionRunning",
    ];
}

/// Store failures as the state machine sees them: a missing or corrupt artifact is
/// `InvalidArtifact` (a redrive of the same stage cannot fix it), an outage is `Retryable`.
impl From<crate::store::StoreError> for StageError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::InvalidArtifact { key, path, message } => {
                StageError::InvalidArtifact { key, path, message }
            }
            crate::store::StoreError::Missing { key } => StageError::InvalidArtifact {
                key,
                path: ".".into(),
                message: "the artifact does not exist; did an earlier stage of this run fail?"
                    .into(),
            },
            e if e.is_retryable() => StageError::Retryable(e.to_string()),
            e => StageError::InvalidConfig(e.to_string()),
        }
    }
}

impl From<crate::salesforce::SalesforceError> for StageError {
    fn from(e: crate::salesforce::SalesforceError) -> Self {
        use crate::salesforce::SalesforceError as E;
        match e {
            E::AuthFailed { .. } => StageError::AuthFailed(e.to_string()),
            e if e.is_retryable() => StageError::Retryable(e.to_string()),
            // Expired cursors: a fresh query in a retried stage starts over.
            E::InvalidQueryLocator { .. } => StageError::Retryable(e.to_string()),
            // The query or the org's schema does not match the configuration (API version,
            // fields): nothing a retry changes.
            e => StageError::InvalidConfig(e.to_string()),
        }
    }
}

impl From<crate::zendesk::ZendeskError> for StageError {
    fn from(e: crate::zendesk::ZendeskError) -> Self {
        use crate::zendesk::ZendeskError as E;
        match e {
            // 401, or 403 on an endpoint the sync must use: the credentials or their role.
            E::AuthFailed { .. } | E::Forbidden { .. } => StageError::AuthFailed(e.to_string()),
            e if e.is_retryable() => StageError::Retryable(e.to_string()),
            // A wrong base URL, or Zendesk refusing what the sync sends: nothing a retry fixes.
            e => StageError::InvalidConfig(e.to_string()),
        }
    }
}

impl From<ConfigError> for StageError {
    fn from(e: ConfigError) -> Self {
        StageError::InvalidConfig(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        let errors = [
            StageError::Retryable("x".into()),
            StageError::InvalidArtifact {
                key: "k".into(),
                path: "p".into(),
                message: "m".into(),
            },
            StageError::InvalidConfig("x".into()),
            StageError::DeletionGuardTripped {
                sync: SyncKind::Global,
                records: "orgs".into(),
                marks: 60,
                limit: 25.0,
                managed: 100,
                not_in_sync: "global_not_in_sync.json".into(),
            },
            StageError::TooManyRecordErrors {
                count: 51,
                max: 50,
                result_key: "k".into(),
            },
            StageError::EmptySource("x".into()),
            StageError::AuthFailed("x".into()),
            StageError::PlanStale {
                sync: SyncKind::Global,
                age_secs: 4000,
                max_secs: 3600,
                allowance: String::new(),
            },
            StageError::AnotherExecutionRunning {
                sync: SyncKind::Global,
                other: "arn".into(),
            },
        ];
        let names: Vec<&str> = errors.iter().map(StageError::name).collect();
        assert_eq!(names, StageError::NAMES);
        assert_eq!(errors.iter().filter(|e| e.is_retryable()).count(), 1);
    }

    #[test]
    fn the_guard_message_tells_the_operator_what_to_do() {
        let e = StageError::DeletionGuardTripped {
            sync: SyncKind::Users,
            records: "users".into(),
            marks: 60,
            limit: 25.0,
            managed: 100,
            not_in_sync: "users/not_in_sync.json".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("60 users would be marked")
                && text.contains("limit of 25")
                && text.contains("users/not_in_sync.json"),
            "{text}"
        );
        assert!(
            text.contains(r#"{"allow_deletions": {"users": 60}}"#),
            "{text}"
        );
    }
}
