//! The names of a run's artifacts (SPEC §2), relative to `runs/{run_id}/`, that the stages write
//! whatever the sync: the gathers, the processor's desired objects, the summary. The names of one
//! sync's own artifacts (its change sets, result and place) are its spec's (`crate::syncs`);
//! `stages::artifacts` offers both under one roof.

use crate::model::Instance;

pub const SALESFORCE_ACCOUNTS: &str = "salesforce_accounts.json";
pub const PROCESS_REPORT: &str = "process_report.json";
pub const SUMMARY: &str = "summary.json";
/// The run in words for an admin, beside the summary (Markdown).
pub const REPORT: &str = "report.md";
/// The pointer to the run summarized last. A top-level key, not a run's artifact: it must
/// outlive the runs/ lifecycle rule.
pub const LATEST_RUN: &str = "latest_run.json";
/// An operator's deletion allowance for a redrive of this run (`{"global": 40}`): a redriven
/// execution keeps its input, so the allowance cannot travel in it.
pub const ALLOW_DELETIONS: &str = "allow_deletions.json";

/// Where each stage leaves its counts, calls and time (`stages/sync-global.json`).
pub const STAGE_STATS: &str = "stages/";

/// The partner sync's gathers (`partner/`).
pub const PARTNER_ACCOUNTS: &str = "partner/salesforce_accounts.json";
pub const PARTNER_ORGS: &str = "partner/zendesk_orgs.json";
/// The user sync's gathers (`users/`).
pub const USER_ORGS: &str = "users/zendesk_orgs.json";
pub const USERS: &str = "users/zendesk_users.json";
pub const CONTACTS: &str = "users/salesforce_contacts.json";

/// `zendesk_global.json`, `zendesk_usgov.json`.
pub fn zendesk_orgs(instance: Instance) -> String {
    format!("zendesk_{instance}.json")
}

/// `global_accounts.json`, `usgov_accounts.json`: the desired objects.
pub fn desired_orgs(instance: Instance) -> String {
    format!("{instance}_accounts.json")
}
