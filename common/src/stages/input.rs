//! What a stage is given and answers: small JSON objects (ids, dates, keys and counts), since
//! Step Functions caps a payload at 256 KB and the data lives in the artifact store.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::snapshots::GatherRequest;
use super::table::Stage;
use crate::error::StageError;
use crate::model::{GatherNote, Instance, SyncKind};
use crate::store::RunKeys;

/// The input every stage after the guard receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    pub run_id: String,
    pub as_of: NaiveDate,
    /// The instance of a per-instance stage; alone, it names that instance's org sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
    /// The sync a gather, compare or sync stage works for (`partners`, `users`, or an org
    /// sync); its instance follows from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncKind>,
    /// Sync only: the operator's per-sync allowance for the deletion guard.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allow_deletions: BTreeMap<SyncKind, usize>,
    /// Sync only: the execution as Step Functions describes it (`$$.Execution`): when it
    /// started and whether and when it was redriven, which with `sync.execution_budget_secs`
    /// bounds the work this attempt may still start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionContext>,
    /// Sync only: the state machine (`$$.StateMachine.Id`), whose other running executions a
    /// redriven sync must not write beside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_arn: Option<String>,
    /// The part of the Zendesk instance's share this stage may use, when the state machine runs
    /// it beside another stage calling the same instance (read by `run_measured`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zendesk_share: Option<f64>,
    /// Gather only: read the source in full, whatever its snapshot (`{"full": true}`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// Gather only: a dry run reads snapshots and never advances them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// The execution part of Step Functions' context object (`$$.Execution`); its other fields
/// (`Input`, `Name`, `RoleArn`) are not read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecutionContext {
    /// The execution's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When it started; a redrive keeps it (so `as_of` stays the original's).
    pub start_time: chrono::DateTime<chrono::Utc>,
    /// 0 for the first attempt; each redrive adds one.
    #[serde(default)]
    pub redrive_count: u32,
    /// When it was last redriven (only present on a redriven execution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl ExecutionContext {
    /// When this attempt began: a redriven execution gets a fresh budget, counted from the
    /// redrive (SPEC §8), not from the original start hours before.
    pub fn attempt_started(&self) -> chrono::DateTime<chrono::Utc> {
        self.redrive_time.unwrap_or(self.start_time)
    }

    pub fn is_redriven(&self) -> bool {
        self.redrive_count > 0
    }
}

impl RunInput {
    pub(super) fn keys(&self) -> Result<RunKeys, StageError> {
        RunKeys::new(&self.run_id)
            .map_err(|e| StageError::InvalidConfig(format!("stage input: {e}")))
    }

    /// How a gather stage is asked to read its source.
    pub(super) fn gather_request(&self) -> GatherRequest {
        GatherRequest {
            full: self.full,
            dry_run: self.dry_run,
            run_started: self.execution.as_ref().map(|e| e.start_time),
        }
    }

    /// The sync this invocation works for: `sync`, or the org sync of `instance`. Both given
    /// must agree (`{"sync": "users", "instance": "global"}` is a mistake, not a choice).
    pub(super) fn sync(&self, stage: Stage) -> Result<SyncKind, StageError> {
        match (self.sync, self.instance) {
            (Some(sync), None) => Ok(sync),
            (Some(sync), Some(instance)) if sync.instance() == instance => Ok(sync),
            (Some(sync), Some(instance)) => Err(StageError::InvalidConfig(format!(
                "stage input: the {sync} sync writes to {}, not {instance}",
                sync.instance()
            ))),
            (None, Some(instance)) => Ok(SyncKind::orgs(instance)),
            (None, None) => Err(StageError::InvalidConfig(format!(
                "stage input: the {stage} stage needs \"instance\" or \"sync\""
            ))),
        }
    }
}

/// What every stage returns: small, for the state machine and the progress display.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageOutput {
    pub stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
    pub counts: BTreeMap<String, u64>,
    /// Artifact keys written.
    pub artifacts: Vec<String>,
    /// Sync only: work is left for another invocation of this stage in this run (the state
    /// machine loops back); `false` when the sync is done for this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    /// Gathers that keep a snapshot: whether they read in full or only the changes, and how far
    /// their snapshot reaches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gathers: Vec<GatherNote>,
}

impl StageOutput {
    pub(super) fn new(stage: Stage, instance: Option<Instance>) -> StageOutput {
        StageOutput {
            stage: stage.function_name().to_owned(),
            instance,
            ..StageOutput::default()
        }
    }

    pub(super) fn count(mut self, name: &str, value: usize) -> Self {
        self.counts.insert(name.to_owned(), value as u64);
        self
    }

    pub(super) fn with_gather(mut self, note: GatherNote) -> Self {
        self.gathers.push(note);
        self
    }

    pub(super) fn with_artifact(mut self, key: String) -> Self {
        self.artifacts.push(key);
        self
    }
}

/// A stage's input from the JSON it was given, or `InvalidConfig` naming the path that is wrong.
pub(super) fn parse_input<T: DeserializeOwned>(
    stage: Stage,
    input: Value,
) -> Result<T, StageError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        StageError::InvalidConfig(format!(
            "the {stage} stage's input is invalid at {}: {}",
            e.path(),
            e.inner()
        ))
    })
}
