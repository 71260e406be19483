//! `stages/<stage>[-<sync>].json`: what one stage did (counts, calls, time, error), written by
//! the runner as the stage ends and read by the summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::artifacts;
use super::table::Stage;

/// `stages/{name}.json`: what one stage did, for the run summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    pub stage: String,
    pub seconds: f64,
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    #[serde(default)]
    pub calls: crate::calls::CallStats,
    /// The artifacts it read and wrote, with their sizes.
    #[serde(default)]
    pub artifacts: crate::calls::ArtifactIo,
    /// Gathers that keep a snapshot: how they read their source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gathers: Vec<crate::model::GatherNote>,
    /// The stage's error name, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StageStats {
    /// Folds in an earlier invocation's stats of the same stage and run.
    pub(super) fn add_earlier(&mut self, earlier: &StageStats) {
        self.seconds += earlier.seconds;
        self.calls.add(&earlier.calls);
        for (key, bytes) in &earlier.artifacts.read {
            *self.artifacts.read.entry(key.clone()).or_default() += bytes;
        }
        for (key, bytes) in &earlier.artifacts.written {
            *self.artifacts.written.entry(key.clone()).or_default() += bytes;
        }
    }

    /// The sync (or instance) a stage that serves several works for in this invocation.
    pub(super) fn sync_of(stage: Stage, input: &Value) -> Option<String> {
        let serves_several = matches!(
            stage,
            Stage::GatherAccounts | Stage::GatherOrgs | Stage::Compare | Stage::Sync
        );
        input
            .get("sync")
            .or_else(|| input.get("instance"))
            .and_then(Value::as_str)
            .filter(|w| serves_several && w.chars().all(|c| c.is_ascii_lowercase()))
            .map(str::to_owned)
    }

    /// What one invocation's stats are named by: `sync-partners`, `gather-orgs-global`,
    /// `process` (the stages that serve several syncs carry theirs).
    pub fn label(stage: Stage, input: &Value) -> String {
        match Self::sync_of(stage, input) {
            Some(which) => format!("{}-{which}", stage.function_name()),
            None => stage.function_name().to_owned(),
        }
    }

    /// The run and the artifact a stage's stats go to: `stages/sync-partners.json`,
    /// `stages/gather-orgs-global.json`, `stages/process.json`. None for the guard (it has no
    /// run yet) and the summary (which reads them).
    pub(super) fn artifact_name(stage: Stage, input: &Value) -> Option<(String, String)> {
        if matches!(stage, Stage::Guard | Stage::Summarize) {
            return None;
        }
        let run_id = input.get("run_id")?.as_str()?.to_owned();
        let name = format!(
            "{}{}.json",
            artifacts::STAGE_STATS,
            Self::label(stage, input)
        );
        Some((run_id, name))
    }
}
