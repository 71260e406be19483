//! Artifact names of a run (SPEC §2), relative to `runs/{run_id}/`: the run's own
//! (`crate::artifacts`) and each sync's, which its spec names (`crate::syncs`). One place to
//! look them up, so stages, the summary and the docs cannot drift apart.

pub use crate::artifacts::*;
use crate::model::SyncKind;
use crate::syncs::{SyncSpec, for_sync};

/// The Zendesk records a sync compares against and writes to.
pub fn zendesk_records(sync: SyncKind) -> String {
    for_sync!(sync, spec => spec.records_artifact())
}

/// One of the sync's own artifacts: `{instance}_{name}` for the org syncs, `partner/{name}`
/// and `users/{name}` for the others.
fn of_sync(sync: SyncKind, name: &str) -> String {
    for_sync!(sync, spec => format!("{}{name}", spec.outputs()))
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
    for_sync!(sync, spec => spec.plan_sources())
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
