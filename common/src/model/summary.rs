//! `summary.json`: one page an operator reads after a run (SPEC §2), written for every run —
//! by the state machine's last state when it succeeds, and for a failed, timed-out or aborted
//! execution by the failure path (SPEC §10).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub as_of: Option<NaiveDate>,
    #[serde(default)]
    pub status: RunStatus,
    /// Set when the execution did not succeed: where and why it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<RunFailure>,
    /// Per stage (`gather_accounts`, `gather_orgs_global`, `process`, `compare_users`,
    /// `sync_partners`, …): its counts, retries, time and errors.
    pub stages: BTreeMap<String, StageSummary>,
    /// Every stage's API calls added up, by service: requests, retries, throttling answers.
    #[serde(default)]
    pub calls: crate::calls::CallStats,
    /// Deletion-guard and overlap-guard decisions, in words.
    #[serde(default)]
    pub guard_decisions: Vec<String>,
    /// Syncs whose work did not fit the execution's time, in words: "global: 1200 creates
    /// left for the next run".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_for_next_run: Vec<String>,
    /// For a redriven run, per sync: what the last redrive did and what earlier attempts did,
    /// in words ("global: this redrive marked 3; earlier attempts created 19, updated 6").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<String>,
    /// Salesforce's daily API allowance: this run's calls, and the org's use and allowance as
    /// the run's last answer reported them (`Sforce-Limit-Info`; every integration's use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesforce_api: Option<SalesforceApi>,
    #[serde(default)]
    pub errors: Vec<String>,
}

/// Salesforce's daily API allowance at the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesforceApi {
    /// Requests this run sent to Salesforce.
    pub calls: u64,
    /// The org's calls so far today, everybody's.
    pub used: u64,
    /// The org's daily allowance.
    pub limit: u64,
}

impl SalesforceApi {
    /// Over 80 % of the allowance used: warned about in the log and the report, alarmed on.
    pub fn is_high(&self) -> bool {
        self.limit > 0 && self.used as f64 > 0.8 * self.limit as f64
    }

    /// "Salesforce API: 6 calls this run; the org has used 4012 of its 5000 daily calls (80 %)".
    pub fn describe(&self) -> String {
        let percent = (self.used * 100).checked_div(self.limit).unwrap_or(0);
        let warning = if self.is_high() {
            " — over 80 %: every integration of the org shares it, and at 100 % Salesforce refuses every call for the rest of the day"
        } else {
            ""
        };
        format!(
            "Salesforce API: {} call{} this run; the org has used {} of its {} daily calls ({percent} %){warning}",
            self.calls,
            if self.calls == 1 { "" } else { "s" },
            self.used,
            self.limit
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    #[default]
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "SUCCEEDED",
            RunStatus::Failed => "FAILED",
            RunStatus::TimedOut => "TIMED OUT",
            RunStatus::Aborted => "ABORTED",
        }
    }
}

/// Why an execution did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFailure {
    pub status: RunStatus,
    /// The state that failed (`Instances[0].SyncGlobal`), when it is known.
    #[serde(default)]
    pub state: Option<String>,
    /// The error name (`DeletionGuardTripped`, `States.Timeout`, …) and its message.
    pub error: String,
    #[serde(default)]
    pub cause: String,
    /// States that were still running when the execution stopped (in AWS a Lambda invocation
    /// runs on after its execution failed: wait for them before redriving).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    pub counts: BTreeMap<String, u64>,
    /// Requests the stage had to repeat (5xx, dropped connections, throttling).
    #[serde(default)]
    pub retries: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The stage's error name, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its first record errors (sync stages).
    #[serde(default)]
    pub errors: Vec<String>,
    /// A gather that keeps a snapshot: how it read its source — in full (and why) or only the
    /// changes — and how far its snapshot reaches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gathers: Vec<super::GatherNote>,
}

/// `latest_run.json`, at the top of the store (outside `runs/`, which the bucket's lifecycle
/// rule expires): the run summarized last, so an operator's tools find it without listing
/// every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestRun {
    pub run_id: String,
    pub status: RunStatus,
    pub as_of: Option<NaiveDate>,
    pub finished_at: DateTime<Utc>,
}
