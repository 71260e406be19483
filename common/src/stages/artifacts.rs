//! Artifact names of a run (SPEC §2), relative to `runs/{run_id}/`. One place, so stages,
//! the summary and the docs cannot drift apart.

use crate::model::{Instance, SyncKind};

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

/// The Zendesk records a sync compares against and writes to.
pub fn zendesk_records(sync: SyncKind) -> String {
    match sync {
        SyncKind::Global | SyncKind::Usgov => zendesk_orgs(sync.instance()),
        SyncKind::Partners => PARTNER_ORGS.to_owned(),
        SyncKind::Users => USERS.to_owned(),
    }
}

/// `{instance}_{name}` for the org syncs, `partner/{name}` and `users/{name}` for the others.
fn of_sync(sync: SyncKind, name: &str) -> String {
    match sync {
        SyncKind::Global | SyncKind::Usgov => format!("{sync}_{name}"),
        SyncKind::Partners => format!("partner/{name}"),
        SyncKind::Users => format!("users/{name}"),
    }
}

pub fn creates(sync: SyncKind) -> String {
    of_sync(sync, "creates.json")
}

pub fn updates(sync: SyncKind) -> String {
    of_sync(sync, "updates.json")
}

pub fn not_in_sync(sync: SyncKind) -> String {
    of_sync(sync, "not_in_sync.json")
}

pub fn sync_result(sync: SyncKind) -> String {
    of_sync(sync, "sync_result.json")
}

/// The window a sync is working on and its accepted jobs (`global_sync_window.json`).
pub fn sync_window(sync: SyncKind) -> String {
    of_sync(sync, "sync_window.json")
}

/// The gathered artifacts a sync's plan rests on: its compare read them (the desired objects
/// derive from the Salesforce gather). The plan is as old as the oldest of them.
pub fn plan_sources(sync: SyncKind) -> Vec<String> {
    match sync {
        SyncKind::Global | SyncKind::Usgov => vec![
            SALESFORCE_ACCOUNTS.to_owned(),
            zendesk_orgs(sync.instance()),
        ],
        SyncKind::Partners => vec![PARTNER_ACCOUNTS.to_owned(), PARTNER_ORGS.to_owned()],
        SyncKind::Users => vec![USER_ORGS.to_owned(), USERS.to_owned(), CONTACTS.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §2's table, name for name.
    #[test]
    fn names_are_those_of_the_spec() {
        assert_eq!(creates(SyncKind::Global), "global_creates.json");
        assert_eq!(not_in_sync(SyncKind::Usgov), "usgov_not_in_sync.json");
        assert_eq!(sync_result(SyncKind::Usgov), "usgov_sync_result.json");
        assert_eq!(creates(SyncKind::Partners), "partner/creates.json");
        assert_eq!(updates(SyncKind::Partners), "partner/updates.json");
        assert_eq!(not_in_sync(SyncKind::Partners), "partner/not_in_sync.json");
        assert_eq!(sync_result(SyncKind::Partners), "partner/sync_result.json");
        assert_eq!(creates(SyncKind::Users), "users/creates.json");
        assert_eq!(sync_result(SyncKind::Users), "users/sync_result.json");
        assert_eq!(zendesk_records(SyncKind::Users), "users/zendesk_users.json");
        assert_eq!(
            zendesk_records(SyncKind::Partners),
            "partner/zendesk_orgs.json"
        );
        assert_eq!(zendesk_records(SyncKind::Global), "zendesk_global.json");
    }
}
