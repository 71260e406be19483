//! `summary.json`: one page an operator reads after a run (SPEC §2).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub as_of: Option<NaiveDate>,
    /// Per stage (e.g. `sync_global`): its counts and errors.
    pub stages: BTreeMap<String, StageSummary>,
    /// Deletion-guard and overlap-guard decisions, in words.
    #[serde(default)]
    pub guard_decisions: Vec<String>,
    #[serde(default)]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    pub counts: BTreeMap<String, u64>,
    #[serde(default)]
    pub errors: Vec<String>,
}
