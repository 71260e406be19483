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

/// The gathered artifacts of a run that come from snapshots, as (gather stage, sync, name).
fn gathered_artifacts() -> [(Stage, SyncKind, String); 5] {
    [
        (
            Stage::GatherOrgs,
            SyncKind::Global,
            artifacts::zendesk_orgs(Instance::Global),
        ),
        (
            Stage::GatherOrgs,
            SyncKind::Usgov,
            artifacts::zendesk_orgs(Instance::Usgov),
        ),
        (
            Stage::GatherOrgs,
            SyncKind::Partners,
            artifacts::PARTNER_ORGS.to_owned(),
        ),
        (
            Stage::GatherOrgs,
            SyncKind::Users,
            artifacts::USER_ORGS.to_owned(),
        ),
        (
            Stage::GatherUsers,
            SyncKind::Users,
            artifacts::USERS.to_owned(),
        ),
    ]
}

/// What a full gather returns now, without touching the snapshot (a dry run of the gather stage
/// alone, under a run id of its own).
async fn full_gather(h: &Harness, stage: Stage, sync: SyncKind, name: &str, check: &str) -> Value {
    h.stage(
        stage,
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
    assert_eq!(note(&first, "gather_users").mode, GatherKind::Full);
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
    let users = note(&second, "gather_users");
    assert_eq!(users.mode, GatherKind::Delta, "{users}");
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
    for (stage, sync, name) in gathered_artifacts().into_iter().skip(2) {
        let delta: Value = h.artifact("second", &name).await;
        let full = full_gather(&h, stage, sync, &name, &format!("check-{stage}-{sync}")).await;
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
        "gather-users",
        "sync-global",
        "sync-usgov",
        "sync-users",
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
    for (stage, sync, name) in gathered_artifacts() {
        let delta: Value = h.artifact("third", &name).await;
        let full = full_gather(&h, stage, sync, &name, &format!("check3-{stage}-{sync}")).await;
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

// ----- equivalence, as a property ------------------------------------------------------------

/// A change between runs, made the same way in two worlds.
#[derive(Debug, Clone)]
enum Change {
    /// A person sets a managed field of an org (picked among the world's first orgs).
    PersonEditsField { org: usize, aar: u32 },
    /// A person renames an org.
    PersonRenames { org: usize, suffix: u8 },
    /// A person creates an org the sync does not manage.
    PersonCreates { n: u16 },
    /// A person renames a US Gov user (picked among the first users); the user sync renames
    /// them back when their contact is in Salesforce.
    PersonRenamesUser { user: usize, suffix: u8 },
    /// Salesforce renames an account: the sync renames its org (the sync's own write).
    AccountRenamed { account: usize, suffix: u8 },
    /// Salesforce turns an account into a prospect: the sync marks its org.
    AccountGone { account: usize },
}

/// One round: the changes, then a run — a minute after them, or at once (no changes by
/// others then: what a person changed in the last minute is, by design, for the next run).
#[derive(Debug, Clone)]
struct Round {
    changes: Vec<Change>,
    a_minute_later: bool,
}

fn change() -> impl proptest::strategy::Strategy<Value = Change> {
    use proptest::prelude::*;
    prop_oneof![
        (0..12usize, 1..1_000_000u32).prop_map(|(org, aar)| Change::PersonEditsField { org, aar }),
        (0..12usize, any::<u8>()).prop_map(|(org, suffix)| Change::PersonRenames { org, suffix }),
        any::<u16>().prop_map(|n| Change::PersonCreates { n }),
        (0..15usize, any::<u8>())
            .prop_map(|(account, suffix)| Change::AccountRenamed { account, suffix }),
        (0..10usize, any::<u8>())
            .prop_map(|(user, suffix)| Change::PersonRenamesUser { user, suffix }),
        (0..15usize).prop_map(|account| Change::AccountGone { account }),
    ]
}

fn rounds() -> impl proptest::strategy::Strategy<Value = Vec<Round>> {
    use proptest::prelude::*;
    prop::collection::vec(
        (prop::collection::vec(change(), 0..4), any::<bool>()).prop_map(|(changes, later)| Round {
            a_minute_later: later || !changes.is_empty(),
            changes,
        }),
        1..4,
    )
}

fn apply(h: &Harness, change: &Change) {
    let global = h.sandbox().zendesk(ZendeskInstance::Global);
    let mut orgs = h.orgs(Instance::Global);
    orgs.sort_by_key(|o| o["id"].as_u64());
    let accounts: Vec<String> = h.fixture.salesforce.objects["Account"]
        .iter()
        .filter_map(|a| a["Account_ID_18__c"].as_str().map(str::to_owned))
        .collect();
    match *change {
        Change::PersonEditsField { org, aar } => {
            let id = orgs[org % orgs.len()]["id"].as_u64().unwrap();
            global
                .update_organization(id, json!({"organization_fields": {"aar": aar}}))
                .unwrap();
        }
        Change::PersonRenames { org, suffix } => {
            let picked = &orgs[org % orgs.len()];
            let name = format!("{} (edited {suffix})", picked["name"].as_str().unwrap());
            // A name another org has is refused, as in Zendesk; then nothing changed.
            let _ =
                global.update_organization(picked["id"].as_u64().unwrap(), json!({"name": name}));
        }
        Change::PersonCreates { n } => {
            let _ = global.insert_organization(json!({"name": format!("Made by a person {n}")}));
        }
        Change::PersonRenamesUser { user, suffix } => {
            let usgov = h.sandbox().zendesk(ZendeskInstance::Usgov);
            let mut users = usgov.users();
            users.sort_by_key(|u| u["id"].as_u64());
            if let Some(picked) = users.get(user % users.len().max(1)) {
                let name = format!(
                    "{} (edited {suffix})",
                    picked["name"].as_str().unwrap_or("User")
                );
                usgov
                    .update_user(picked["id"].as_u64().unwrap(), json!({"name": name}))
                    .unwrap();
            }
        }
        Change::AccountRenamed { account, suffix } => {
            let id = &accounts[account % accounts.len()];
            h.edit_account(id, |a| {
                let name = format!("{} {suffix}", a["Name"].as_str().unwrap_or("Account"));
                a["Name"] = json!(name);
            });
        }
        Change::AccountGone { account } => {
            let id = &accounts[account % accounts.len()];
            h.edit_account(id, |a| a["Type"] = json!("Prospect"));
        }
    }
}

/// An org artifact without what two worlds cannot share: when things happened, and where
/// (each sandbox has its own port).
fn timeless(mut artifact: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(object) => {
                object.remove("created_at");
                object.remove("updated_at");
                object.remove("url");
                object.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut artifact);
    artifact
}

/// Two worlds from one fixture take the same changes; one runs as scheduled (deltas), the other
/// always reads in full. After every run the org artifacts and Zendesk agree.
async fn delta_runs_equal_full_runs(rounds: Vec<Round>) {
    let fixture = zdsync_sandbox::Fixture::generate(&zdsync_sandbox::GeneratorOptions::new(
        15,
        3,
        zdsync_e2e::as_of(),
    ));
    let delta = Harness::from_fixture(fixture.clone()).await;
    let full = Harness::from_fixture(fixture).await;
    succeeded(&delta.run("r0").await);
    succeeded(&full.run_full("r0").await);
    for (i, round) in rounds.iter().enumerate() {
        for change in &round.changes {
            apply(&delta, change);
            apply(&full, change);
        }
        if round.a_minute_later {
            delta.sandbox().advance_clock(Duration::from_secs(61));
            full.sandbox().advance_clock(Duration::from_secs(61));
        }
        let run = format!("r{}", i + 1);
        let d = delta.run(&run).await;
        let f = full.run_full(&run).await;
        assert_eq!(
            d.summary.as_ref().map(|s| s.status),
            f.summary.as_ref().map(|s| s.status),
            "round {i}: {round:?}"
        );
        for (_, _, name) in gathered_artifacts() {
            let (a, b): (Value, Value) = (
                timeless(delta.artifact(&run, &name).await),
                timeless(full.artifact(&run, &name).await),
            );
            if let Some(diff) = zdsync_e2e::first_difference(&a, &b, &name) {
                panic!("round {i} ({round:?}): {diff}");
            }
        }
        let (a, b) = (
            zdsync_e2e::zendesk_end_state(delta.sandbox()),
            zdsync_e2e::zendesk_end_state(full.sandbox()),
        );
        if let Some(diff) = zdsync_e2e::first_difference(&a, &b, "zendesk") {
            panic!("round {i} ({round:?}): {diff}");
        }
    }
}

proptest::proptest! {
    // Two cases in CI (each runs two worlds through up to four runs); `scripts/bench.sh` runs
    // the long version (PROPTEST_CASES=64).
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2),
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]
    #[test]
    fn delta_gathers_and_full_gathers_give_the_same_artifacts_and_zendesk(rounds in rounds()) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(delta_runs_equal_full_runs(rounds));
    }
}
