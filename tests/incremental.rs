//! Incremental gathers of Zendesk organizations (SPEC §12): a run after the first reads only
//! what changed since the snapshot, its artifacts equal what a full gather returns at that
//! moment, the sync's own writes are in the snapshot the next run starts from (the change feed
//! shows them only a minute later), a dry run never advances a snapshot, and a full read can be
//! asked for.

use std::time::Duration;

use serde_json::{Value, json};
use zdsync::model::{GatherKind, GatherNote, Instance, RunSummary, SyncKind};
use zdsync::snapshot::Source;
use zdsync::stages::{Stage, StageStats, artifacts};
use zdsync_e2e::{AS_OF, Harness, succeeded};
use zdsync_sandbox::ZendeskInstance;

/// The organization artifacts of a run, as (sync, artifact name).
fn org_artifacts() -> [(SyncKind, String); 4] {
    [
        (SyncKind::Global, artifacts::zendesk_orgs(Instance::Global)),
        (SyncKind::Usgov, artifacts::zendesk_orgs(Instance::Usgov)),
        (SyncKind::Partners, artifacts::PARTNER_ORGS.to_owned()),
        (SyncKind::Users, artifacts::USER_ORGS.to_owned()),
    ]
}

/// What a full gather for `sync` returns now, without touching the snapshot (a dry run of the
/// gather stage alone, under a run id of its own).
async fn full_gather(h: &Harness, sync: SyncKind, name: &str, check: &str) -> Value {
    h.stage(
        Stage::GatherOrgs,
        json!({"run_id": check, "as_of": AS_OF, "sync": sync, "full": true, "dry_run": true}),
    )
    .await
    .unwrap();
    h.artifact(check, name).await
}

async fn summary(h: &Harness, run: &str) -> RunSummary {
    h.artifact(run, artifacts::SUMMARY).await
}

/// How the gather of `stage` (`gather_orgs_global`, `gather_orgs_partners`, …) read its source.
fn note<'a>(summary: &'a RunSummary, stage: &str) -> &'a GatherNote {
    summary
        .stages
        .get(stage)
        .and_then(|s| s.gathers.first())
        .unwrap_or_else(|| panic!("no gather note of {stage}: {:#?}", summary.stages))
}

/// Organization listings (not the change feed, not targeted reads) the sandbox answered.
fn org_listings(h: &Harness) -> u64 {
    let counters = h.sandbox().counters();
    ["global", "usgov"]
        .iter()
        .map(|i| counters.get(&format!("{i} GET /api/v2/organizations")))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_runs_read_only_the_changes_and_gather_what_a_full_read_would() {
    let h = Harness::generated(40, 11).await;
    succeeded(&h.run("first").await);
    let first = summary(&h, "first").await;
    // Nothing to start from: the first gather of each instance lists every org; the gathers
    // after a sync start from the snapshot the sync folded its writes into.
    let global = note(&first, "gather_orgs_global");
    assert_eq!(global.mode, GatherKind::Full, "{global}");
    assert_eq!(global.reason.as_deref(), Some("no snapshot yet"));
    assert_eq!(note(&first, "gather_orgs_partners").mode, GatherKind::Delta);
    assert_eq!(note(&first, "gather_orgs_users").mode, GatherKind::Delta);
    let report = zdsync_e2e::report_md(&h, "first");
    assert!(report.contains("## Gathers"), "{report}");
    assert!(
        report.contains("gather_orgs_global: zendesk_global_orgs: full (no snapshot yet)"),
        "{report}"
    );

    // A person edits a managed org in Zendesk; a minute later the next run starts.
    let edited = h
        .orgs(Instance::Global)
        .into_iter()
        .find(|o| {
            let fields = &o["organization_fields"];
            fields["salesforce_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
                && fields["support_level"].is_string()
                && fields["support_level"] != "expired"
        })
        .unwrap();
    let id = edited["id"].as_u64().unwrap();
    let fields = edited["organization_fields"].clone();
    h.sandbox()
        .zendesk(ZendeskInstance::Global)
        .update_organization(
            id,
            json!({"organization_fields": {"support_level": "expired", "aar": 123456}}),
        )
        .unwrap();
    h.sandbox().advance_clock(Duration::from_secs(61));
    h.sandbox().reset_counters();
    succeeded(&h.run("second").await);
    assert_eq!(
        org_listings(&h),
        0,
        "{:#?}",
        h.sandbox().counters().requests
    );
    let second = summary(&h, "second").await;
    let global = note(&second, "gather_orgs_global");
    assert_eq!(global.mode, GatherKind::Delta, "{global}");
    assert!(global.read >= 1, "{global}");
    // The edit was seen, and undone as a full run would.
    assert_eq!(
        h.sandbox()
            .zendesk(ZendeskInstance::Global)
            .organization(id)
            .unwrap()["organization_fields"],
        fields
    );
    // Every org artifact of the run equals what a full gather returned at its moment: now,
    // for the gathers after the last write of each branch (partners, users) — and for the
    // first gathers, now less what the run's syncs wrote.
    for (sync, name) in org_artifacts().into_iter().skip(2) {
        let delta: Value = h.artifact("second", &name).await;
        let full = full_gather(&h, sync, &name, &format!("check-{sync}")).await;
        assert_eq!(delta, full, "{name}");
    }

    // A run at once after (the feed does not show the last minute yet) neither redoes nor
    // misses anything: the second run's writes are in the snapshot.
    let writes = h.zendesk_writes(Instance::Global) + h.zendesk_writes(Instance::Usgov);
    succeeded(&h.run("third").await);
    assert_eq!(
        h.zendesk_writes(Instance::Global) + h.zendesk_writes(Instance::Usgov),
        writes,
        "{:#?}",
        h.sandbox().counters().requests
    );
    // Nothing changed for the third run: no snapshot was written again.
    for stage in [
        "gather-orgs-global",
        "gather-orgs-usgov",
        "sync-global",
        "sync-usgov",
    ] {
        let stats: StageStats = h.artifact("third", &format!("stages/{stage}.json")).await;
        assert!(
            stats
                .artifacts
                .written
                .keys()
                .all(|k| !k.starts_with("state/")),
            "{stage}: {:?}",
            stats.artifacts.written
        );
    }
    for (sync, name) in org_artifacts() {
        let delta: Value = h.artifact("third", &name).await;
        let full = full_gather(&h, sync, &name, &format!("check3-{sync}")).await;
        assert_eq!(delta, full, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reads_snapshots_and_never_advances_them_and_full_can_be_asked_for() {
    let h = Harness::generated(20, 5).await;
    succeeded(&h.run("first").await);
    let key = Source::ZendeskOrgs(Instance::Global).key();
    let snapshot = std::fs::read(h.data_path().join(&key)).unwrap();

    h.sandbox()
        .zendesk(ZendeskInstance::Global)
        .insert_organization(json!({"name": "Made by a person"}))
        .unwrap();
    h.sandbox().advance_clock(Duration::from_secs(61));
    succeeded(&h.run_with("dry", true, Default::default()).await);
    let dry = summary(&h, "dry").await;
    let global = note(&dry, "gather_orgs_global");
    assert_eq!(global.mode, GatherKind::Delta, "{global}");
    assert!(global.dry_run);
    assert_eq!(std::fs::read(h.data_path().join(&key)).unwrap(), snapshot);
    let gathered: Value = h
        .artifact("dry", &artifacts::zendesk_orgs(Instance::Global))
        .await;
    assert!(
        gathered["orgs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "Made by a person"),
        "the dry run's delta saw the new org"
    );

    let outcome = h.run_full("full").await;
    succeeded(&outcome);
    let full = summary(&h, "full").await;
    for stage in ["gather_orgs_global", "gather_orgs_usgov"] {
        let first = note(&full, stage);
        assert_eq!(first.mode, GatherKind::Full, "{first}");
        assert_eq!(first.reason.as_deref(), Some("asked for"));
    }
    assert_ne!(std::fs::read(h.data_path().join(&key)).unwrap(), snapshot);
}
