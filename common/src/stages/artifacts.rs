//! Artifact names of a run (SPEC §2), relative to `runs/{run_id}/`. One place, so stages,
//! the summary and the docs cannot drift apart.

use crate::model::Instance;

pub const SALESFORCE_ACCOUNTS: &str = "salesforce_accounts.json";
pub const PROCESS_REPORT: &str = "process_report.json";
pub const SUMMARY: &str = "summary.json";

/// `zendesk_global.json`, `zendesk_usgov.json`.
pub fn zendesk_orgs(instance: Instance) -> String {
    format!("zendesk_{instance}.json")
}

/// `global_accounts.json`, `usgov_accounts.json`: the desired objects.
pub fn desired_orgs(instance: Instance) -> String {
    format!("{instance}_accounts.json")
}

pub fn creates(instance: Instance) -> String {
    format!("{instance}_creates.json")
}

pub fn updates(instance: Instance) -> String {
    format!("{instance}_updates.json")
}

pub fn not_in_sync(instance: Instance) -> String {
    format!("{instance}_not_in_sync.json")
}

pub fn sync_result(instance: Instance) -> String {
    format!("{instance}_sync_result.json")
}
