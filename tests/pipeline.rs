//! The org sync end to end: the real state machine, every stage in-process, real HTTP against
//! the sandbox. Each test checks Zendesk's end state against SPEC, not against the code's own
//! intermediate artifacts alone.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use zdsync::model::{
    ChangeSet, DesiredOrg, HoldReason, Instance, OrgMark, OrgUpdate, RawDesiredOrgs, RawZendeskOrg,
    SyncKind, SyncResult, ZendeskOrg,
};
use zdsync::rules::{CompareRules, RunDates};
use zdsync::stages::artifacts;
use zdsync::syncs::compare_orgs;
use zdsync_cli::asl::ExecutionStatus;
use zdsync_e2e::{Harness, as_of, succeeded, zendesk};

/// The instance's orgs now, as compare reads them from a gather's artifact.
fn zendesk_orgs(h: &Harness, instance: Instance) -> Vec<RawZendeskOrg> {
    h.orgs(instance)
        .into_iter()
        .map(|o| {
            let org = ZendeskOrg::from_api(o.as_object().unwrap().clone()).unwrap();
            serde_json::from_str(&serde_json::to_string(&org).unwrap()).unwrap()
        })
        .collect()
}

fn field<'a>(org: &'a Value, key: &str) -> &'a Value {
    &org["organization_fields"][key]
}

fn marked(org: &Value) -> bool {
    field(org, "mark_for_deletion") == &json!(true)
}

fn one_org(h: &Harness, instance: Instance, id: &str) -> Value {
    let orgs = h.orgs_of(instance, id);
    assert_eq!(orgs.len(), 1, "{instance} orgs of {id}: {orgs:#?}");
    orgs[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_brings_both_instances_to_what_salesforce_says() {
    let h = Harness::generated(60, 7).await;
    let before: BTreeMap<u64, Value> = h
        .orgs(Instance::Global)
        .into_iter()
        .map(|o| (o["id"].as_u64().unwrap(), o))
        .collect();
    let outcome = h.run("e2e-first").await;
    succeeded(&outcome);

    // Converged: comparing the desired objects with Zendesk now finds nothing left to do.
    for instance in Instance::ALL {
        let desired: RawDesiredOrgs = h
            .artifact("e2e-first", &artifacts::desired_orgs(instance))
            .await;
        let diff = compare_orgs(
            SyncKind::orgs(instance),
            &desired.orgs,
            &zendesk_orgs(&h, instance),
            &[],
            &CompareRules::default(),
        );
        assert!(
            diff.creates.is_empty(),
            "{instance} creates left: {:#?}",
            diff.creates
        );
        assert!(
            diff.updates.is_empty(),
            "{instance} updates left: {:#?}",
            diff.updates
        );
        assert!(
            diff.not_in_sync.is_empty(),
            "{instance} marks left: {:#?}",
            diff.not_in_sync
        );
        // Only the second of two accounts sharing a name is left: reported, never sent.
        let shared = h.scenario("shared_name");
        for held in &diff.held_back {
            assert!(shared.contains(&held.key), "{held:?}");
        }
        // The sync never sent a field Zendesk does not have.
        assert!(
            h.sandbox()
                .zendesk(zendesk(instance))
                .ignored_fields()
                .is_empty()
        );
    }

    // Orgs whose account is gone are marked; already-marked ones were not written again.
    for id in h.scenario("global_account_gone") {
        assert!(marked(&one_org(&h, Instance::Global, &id)), "{id}");
    }
    for id in h.scenario("usgov_account_gone") {
        assert!(marked(&one_org(&h, Instance::Usgov, &id)), "{id}");
    }
    for id in h.scenario("global_account_gone_already_marked") {
        let org = one_org(&h, Instance::Global, &id);
        assert_eq!(
            org,
            before[&org["id"].as_u64().unwrap()],
            "an already-marked org is left alone"
        );
    }
    // Expired more than three years: not gathered any more, so its org is marked.
    for id in h.scenario("expired_over_3_years") {
        for org in h.orgs_of(Instance::Global, &id) {
            assert!(marked(&org), "{id}");
        }
    }

    // Partner orgs belong to the partner sync: the Global org sync never writes them (the
    // partner sync's own end state is checked in `the_partner_sync_…`).
    let global_result: SyncResult = h
        .artifact("e2e-first", &artifacts::sync_result(SyncKind::Global))
        .await;
    for scenario in [
        "partner_open",
        "partner_select",
        "partner_alliance",
        "partner_lapsed",
    ] {
        for id in h.scenario(scenario) {
            let touched = global_result
                .updated
                .iter()
                .chain(&global_result.marked)
                .chain(&global_result.created)
                .any(|o| o.key == id);
            assert!(!touched, "{scenario} {id} written by the org sync");
        }
    }

    // Several orgs with one Salesforce id: none is written, and the conflict is reported.
    let updates: ChangeSet<OrgUpdate> = h
        .artifact("e2e-first", &artifacts::updates(SyncKind::Global))
        .await;
    for id in h.scenario("salesforce_id_on_two_orgs") {
        let orgs = h.orgs_of(Instance::Global, &id);
        assert!(orgs.len() >= 2);
        for org in &orgs {
            assert_eq!(
                org,
                &before[&org["id"].as_u64().unwrap()],
                "conflicting org untouched"
            );
        }
        assert!(
            updates.conflicts.iter().any(|c| c.key == id),
            "conflict {id} reported"
        );
    }

    // Two accounts with one name: one org, and the other held back and reported (not an error).
    let result: SyncResult = h
        .artifact("e2e-first", &artifacts::sync_result(SyncKind::Global))
        .await;
    let shared = h.scenario("shared_name");
    let with_org: Vec<&String> = shared
        .iter()
        .filter(|id| !h.orgs_of(Instance::Global, id).is_empty())
        .collect();
    assert_eq!(with_org.len(), 1, "{shared:?}");
    assert!(
        result
            .held_back
            .iter()
            .any(|h| shared.contains(&h.key) && h.reason == HoldReason::NameTaken),
        "{:#?}",
        result.held_back
    );
    assert!(
        !result.errors.iter().any(|e| shared.contains(&e.key)),
        "held back is not a record error: {:#?}",
        result.errors
    );

    // Unmanaged orgs (no or an invalid Salesforce id) are never touched, on either instance.
    let before_usgov: Vec<Value> = h.fixture.zendesk.usgov.organizations.clone();
    for name in h.scenario("unmanaged_orgs") {
        let now = Instance::ALL
            .iter()
            .flat_map(|i| h.orgs(*i))
            .find(|o| o["name"] == json!(name))
            .unwrap_or_else(|| panic!("{name} is gone"));
        match before.get(&now["id"].as_u64().unwrap()) {
            Some(org) => assert_eq!(&now, org, "{name}"),
            None => {
                let seeded = before_usgov
                    .iter()
                    .find(|o| o["name"] == json!(name))
                    .unwrap();
                assert_eq!(
                    now["organization_fields"]["salesforce_id"],
                    seeded["organization_fields"]["salesforce_id"]
                );
                assert_eq!(now["updated_at"], now["created_at"], "{name} never updated");
            }
        }
    }

    // Entitlements (SPEC §5.3): grace period, expiry, FedRAMP, the federal exception.
    for id in h.scenario("expired_within_15_days") {
        let org = one_org(&h, Instance::Global, &id);
        assert_ne!(
            field(&org, "support_level"),
            &json!("expired"),
            "15 days of grace"
        );
        assert_eq!(field(&org, "account_type"), &json!("customer"));
    }
    for id in h.scenario("expired_over_15_days") {
        let org = one_org(&h, Instance::Global, &id);
        assert_eq!(field(&org, "support_level"), &json!("expired"));
        assert_eq!(field(&org, "account_type"), &json!("former_customer"));
        assert_eq!(field(&org, "aar").as_f64(), Some(0.0));
    }
    for id in h.scenario("usgov_fedramp") {
        let org = one_org(&h, Instance::Usgov, &id);
        for flag in [
            "sub_gitlab_dedicated",
            "sub_usgov_24x7",
            "emergency_support_24x7",
        ] {
            assert_eq!(field(&org, flag), &json!(true), "{flag}");
        }
        assert!(org["organization_fields"].get("usgov_fedramp").is_none());
    }
    for id in h.scenario("federal_exception") {
        assert_eq!(
            h.orgs_of(Instance::Usgov, &id).len(),
            1,
            "exception tiers reach US Gov"
        );
    }

    // New Global orgs get their sold-to contacts (SPEC §8).
    let zendesk_global = h.sandbox().zendesk(zendesk(Instance::Global));
    for id in h.scenario("sold_to_user_without_org") {
        let org = one_org(&h, Instance::Global, &id);
        let org_id = org["id"].as_u64().unwrap();
        let members = zendesk_global
            .organization_memberships()
            .into_iter()
            .filter(|m| m["organization_id"] == json!(org_id))
            .count();
        assert!(members >= 1, "the sold-to user was added to {id}");
    }
    for id in h.scenario("global_new_customer") {
        assert_eq!(h.orgs_of(Instance::Global, &id).len(), 1, "{id} created");
    }

    // Agent-owned fields survive updates.
    for (id, org) in &before {
        if let Some(project) = org["organization_fields"]
            .get("am_project_id")
            .filter(|v| !v.is_null())
        {
            let now = zendesk_global.organization(*id).unwrap();
            assert_eq!(field(&now, "am_project_id"), project);
        }
    }

    let summary = outcome.summary.expect("summary.json");
    assert!(summary.stages["sync_global"].counts["created"] > 0);
    assert!(summary.stages["sync_global"].counts["marked"] > 0);

    // report.md beside it: the summary's numbers, every sync, and the latest-run pointer.
    let report = zdsync_e2e::report_md(&h, "e2e-first");
    zdsync_e2e::assert_report_counts_are_the_summarys(&report, &summary, false);
    for sync in SyncKind::ALL {
        assert!(
            report.contains(&format!("| {} | ", sync.label())),
            "{sync}:\n{report}"
        );
    }
    assert!(report.contains("- status: **SUCCEEDED**"), "{report}");
    assert!(report.contains("## Most-changed fields"), "{report}");
    assert!(report.contains("global: deletion guard passed"), "{report}");
    assert_eq!(
        zdsync::stages::latest_run(h.data.store().as_ref())
            .await
            .unwrap()
            .as_deref(),
        Some("e2e-first")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_with_unchanged_data_writes_nothing() {
    let h = Harness::generated(60, 7).await;
    succeeded(&h.run("e2e-once").await);
    h.sandbox().reset_counters();
    let again = h.run("e2e-twice").await;
    succeeded(&again);
    for instance in Instance::ALL {
        assert_eq!(
            h.zendesk_writes(instance),
            0,
            "{instance}: {:#?}",
            h.sandbox().counters().requests
        );
        let creates: ChangeSet<DesiredOrg> = h
            .artifact("e2e-twice", &artifacts::creates(SyncKind::orgs(instance)))
            .await;
        let updates: ChangeSet<OrgUpdate> = h
            .artifact("e2e-twice", &artifacts::updates(SyncKind::orgs(instance)))
            .await;
        let marks: ChangeSet<OrgMark> = h
            .artifact(
                "e2e-twice",
                &artifacts::not_in_sync(SyncKind::orgs(instance)),
            )
            .await;
        assert!(creates.items.is_empty() && updates.items.is_empty() && marks.items.is_empty());
    }
}

fn set_charges(account: &mut Value, name: Option<&str>, end: chrono::NaiveDate) {
    for charge in account["Zuora__R00N40000001lGjTEAU__r"]
        .as_array_mut()
        .unwrap()
    {
        if let Some(name) = name {
            charge["Zuora__SubscriptionRatePlanChargeName__c"] = json!(name);
        }
        charge["Zuora__EffectiveEndDate__c"] = json!(end.to_string());
    }
    for sub in account["Zuora__Subscriptions__r"].as_array_mut().unwrap() {
        sub["Zuora__SubscriptionEndDate__c"] = json!(end.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_account_produces_exactly_that_update() {
    let h = Harness::generated(60, 7).await;
    succeeded(&h.run("e2e-base").await);
    let id = h.scenario("global_in_sync")[0].clone();
    let before = one_org(&h, Instance::Global, &id);
    h.edit_account(&id, |account| {
        account["Name"] = json!("Renamed Holdings Inc");
        account["CARR_This_Account__c"] = json!(424242.0);
        set_charges(
            account,
            Some("Self-Managed - Ultimate - 1 Year"),
            as_of() + chrono::Days::new(200),
        );
    });
    h.sandbox().reset_counters();
    succeeded(&h.run("e2e-changed").await);

    let updates: ChangeSet<OrgUpdate> = h
        .artifact("e2e-changed", &artifacts::updates(SyncKind::Global))
        .await;
    assert_eq!(updates.items.len(), 1, "{:#?}", updates.items);
    let update = &updates.items[0];
    assert_eq!(update.id, before["id"].as_u64().unwrap());
    assert_eq!(update.name.as_deref(), Some("Renamed Holdings Inc"));
    assert_eq!(update.organization_fields["aar"].as_f64(), Some(424242.0));
    assert_eq!(
        update.organization_fields["support_level"],
        json!("ultimate")
    );
    assert_eq!(update.organization_fields["sub_sm_ultimate"], json!(true));
    // Nothing but what changed: every key in the update differs from what Zendesk had.
    for (key, value) in &update.organization_fields {
        assert_ne!(
            field(&before, key),
            value,
            "{key} did not change but was sent"
        );
    }
    let after = one_org(&h, Instance::Global, &id);
    assert_eq!(after["name"], json!("Renamed Holdings Inc"));
    assert_eq!(field(&after, "support_level"), &json!("ultimate"));
    for instance in Instance::ALL {
        let creates: ChangeSet<DesiredOrg> = h
            .artifact("e2e-changed", &artifacts::creates(SyncKind::orgs(instance)))
            .await;
        let marks: ChangeSet<OrgMark> = h
            .artifact(
                "e2e-changed",
                &artifacts::not_in_sync(SyncKind::orgs(instance)),
            )
            .await;
        assert!(creates.items.is_empty() && marks.items.is_empty());
    }
    assert_eq!(h.zendesk_writes(Instance::Usgov), 0);
    assert_eq!(h.zendesk_writes(Instance::Global), 1, "one update_many job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_expired_over_three_years_is_marked_and_unmarked_when_it_returns() {
    let h = Harness::generated(60, 7).await;
    succeeded(&h.run("e2e-live").await);
    let id = h.scenario("global_in_sync")[1].clone();
    let original = h.sandbox().salesforce().with_objects_mut(|o| {
        o["Account"]
            .iter()
            .find(|a| a["Account_ID_18__c"] == json!(id))
            .cloned()
            .unwrap()
    });

    let long_ago = RunDates::new(as_of()).three_years_out - chrono::Days::new(30);
    h.edit_account(&id, |account| set_charges(account, None, long_ago));
    succeeded(&h.run("e2e-gone").await);
    let marks: ChangeSet<OrgMark> = h
        .artifact("e2e-gone", &artifacts::not_in_sync(SyncKind::Global))
        .await;
    assert_eq!(
        marks
            .items
            .iter()
            .map(|m| m.salesforce_id.as_str())
            .collect::<Vec<_>>(),
        vec![id.as_str()]
    );
    assert!(marked(&one_org(&h, Instance::Global, &id)));

    h.edit_account(&id, |account| *account = original.clone());
    succeeded(&h.run("e2e-back").await);
    let org = one_org(&h, Instance::Global, &id);
    assert_eq!(field(&org, "mark_for_deletion"), &json!(false), "un-marked");
    let updates: ChangeSet<OrgUpdate> = h
        .artifact("e2e-back", &artifacts::updates(SyncKind::Global))
        .await;
    assert_eq!(updates.items.len(), 1);
    assert_eq!(
        updates.items[0].organization_fields["mark_for_deletion"],
        json!(false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing_to_zendesk() {
    let h = Harness::generated(60, 7).await;
    let before = h.sandbox().dump_state()["zendesk"].clone();
    let outcome = h.run_with("e2e-dry", true, BTreeMap::new()).await;
    succeeded(&outcome);
    for instance in Instance::ALL {
        assert_eq!(h.zendesk_writes(instance), 0);
        let creates: ChangeSet<DesiredOrg> = h
            .artifact("e2e-dry", &artifacts::creates(SyncKind::orgs(instance)))
            .await;
        assert!(
            !creates.items.is_empty() || instance == Instance::Usgov,
            "the dry run still says what it would do"
        );
        assert!(!h.artifact_exists("e2e-dry", &artifacts::sync_result(SyncKind::orgs(instance))));
    }
    let after = h.sandbox().dump_state()["zendesk"].clone();
    let strip = |mut v: Value| {
        for i in ["global", "usgov"] {
            v[i].as_object_mut().unwrap().remove("jobs");
        }
        v
    };
    assert_eq!(strip(before), strip(after));
    let summary = outcome.summary.unwrap();
    assert!(
        summary
            .guard_decisions
            .iter()
            .any(|d| d.starts_with("dry run"))
    );
    // The report of a dry run: what each sync would do, compare's numbers.
    let report = zdsync_e2e::report_md(&h, "e2e-dry");
    zdsync_e2e::assert_report_counts_are_the_summarys(&report, &summary, true);
    assert!(report.contains("| sync | would create |"), "{report}");
    assert!(report.contains("Zendesk was not written"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deletion_guard_holds_marks_until_an_operator_allows_them() {
    let mut h = Harness::generated(60, 7).await;
    {
        let settings = h.world.settings_mut();
        settings.sync.deletion_guard_min = 1;
        settings.sync.deletion_guard_ratio = 0.0;
    }
    let outcome = h.run("e2e-guard").await;
    assert_eq!(outcome.record.status, ExecutionStatus::Failed);
    assert_eq!(
        outcome.record.error.as_deref(),
        Some("DeletionGuardTripped")
    );
    let result: SyncResult = h
        .artifact("e2e-guard", &artifacts::sync_result(SyncKind::Global))
        .await;
    assert!(result.marked.is_empty(), "nothing marked");
    assert!(
        !result.created.is_empty(),
        "creates and updates were still applied"
    );
    assert!(result.deletion_guard.as_ref().unwrap().is_tripped());
    for id in h.scenario("global_account_gone") {
        assert!(!marked(&one_org(&h, Instance::Global, &id)));
    }

    let marks: ChangeSet<OrgMark> = h
        .artifact("e2e-guard", &artifacts::not_in_sync(SyncKind::Global))
        .await;
    let usgov_marks: ChangeSet<OrgMark> = h
        .artifact("e2e-guard", &artifacts::not_in_sync(SyncKind::Usgov))
        .await;
    let allow = BTreeMap::from([
        (SyncKind::Global, marks.items.len()),
        (SyncKind::Usgov, usgov_marks.items.len()),
    ]);
    succeeded(&h.run_with("e2e-guard-allowed", false, allow).await);
    for id in h.scenario("global_account_gone") {
        assert!(marked(&one_org(&h, Instance::Global, &id)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_redriven_from_its_failed_state() {
    let mut h = Harness::generated(40, 11).await;
    // A wrong US Gov token: the US Gov gather fails with AuthFailed (not retried) and the run
    // fails there, after the Global branch of the same Parallel was cancelled or finished.
    let good = h.world.settings().zendesk.usgov.token.clone();
    h.world.settings_mut().zendesk.usgov.token = Some(zdsync::config::Secret::new("wrong-token"));
    let failed = h.run("e2e-redrive").await;
    assert_eq!(failed.record.status, ExecutionStatus::Failed);
    assert_eq!(failed.record.error.as_deref(), Some("AuthFailed"));
    assert!(
        failed
            .record
            .failed_states()
            .contains(&"GatherOrgs[1].GatherOrgsUsgov")
    );

    h.world.settings_mut().zendesk.usgov.token = good;
    h.sandbox().reset_counters();
    let progress = zdsync_cli::local::Progress::new(true);
    let redriven = zdsync_cli::local::redrive(&h.data, &h.world, "e2e-redrive", 0.01, &progress)
        .await
        .unwrap();
    succeeded(&redriven);
    assert_eq!(redriven.record.redrive_count, 1);
    // The guard and the account gather succeeded before: replayed, not run again.
    for state in ["Guard", "GatherAccounts"] {
        assert_eq!(
            redriven.record.states[state], failed.record.states[state],
            "{state} replayed"
        );
    }
    assert!(redriven.summary.is_some());
}

/// Orgs per Salesforce id on `instance`.
fn orgs_per_id(h: &Harness, instance: Instance) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for org in zendesk_orgs(h, instance) {
        if let Some(id) = org.managed_id() {
            *count.entry(id.to_string()).or_default() += 1;
        }
    }
    count
}

/// No sync created a second org for an account: an id has one org, or as many as it had
/// before (the world's conflicts stay as they were).
fn assert_no_duplicates(h: &Harness, instance: Instance, before: &BTreeMap<String, usize>) {
    for (id, n) in orgs_per_id(h, instance) {
        let had = before.get(&id).copied().unwrap_or(0);
        assert!(n <= had.max(1), "{instance}: {id} has {n} orgs, had {had}");
    }
}

/// A first run's world (no ordinary account has its org yet) and its orgs per id.
async fn first_run_world(accounts: usize, seed: u64) -> (Harness, BTreeMap<String, usize>) {
    let options = zdsync_sandbox::GeneratorOptions::new(accounts, seed, as_of()).first_run();
    let h = Harness::from_fixture(zdsync_sandbox::Fixture::generate(&options)).await;
    let before = orgs_per_id(&h, Instance::Global);
    (h, before)
}

/// A first run of 320 accounts whose syncs do one slice of 100 items per invocation.
async fn first_run_in_slices() -> (Harness, BTreeMap<String, usize>) {
    let (mut h, before) = first_run_world(320, 5).await;
    h.world.settings_mut().sync.max_inflight_jobs = 1;
    h.world.settings_mut().sync.invocation_budget_secs = 0;
    (h, before)
}

/// SPEC §8 bounded work: with a budget of at most one window (100 items here) per invocation, a first
/// run's Global sync goes on over several invocations of the same state — each continuing
/// where the last stopped — to the end a sync in one go reaches; one Slack digest in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_over_its_invocation_budget_is_continued_to_the_end() {
    let (h, before) = first_run_in_slices().await;
    let run = "e2e-sliced";
    let outcome = h.run(run).await;
    succeeded(&outcome);

    let creates: ChangeSet<DesiredOrg> =
        h.artifact(run, &artifacts::creates(SyncKind::Global)).await;
    let updates: ChangeSet<OrgUpdate> =
        h.artifact(run, &artifacts::updates(SyncKind::Global)).await;
    let marks: ChangeSet<OrgMark> = h
        .artifact(run, &artifacts::not_in_sync(SyncKind::Global))
        .await;
    assert!(creates.items.len() > 200, "{}", creates.items.len());
    let result: SyncResult = h
        .artifact(run, &artifacts::sync_result(SyncKind::Global))
        .await;
    assert_eq!(result.created.len(), creates.items.len());
    assert_eq!(result.updated.len(), updates.items.len());
    assert_eq!(result.marked.len(), marks.items.len());
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert!(result.progress.is_none() && result.left_for_next_run.is_empty());
    let slices = |n: usize| n.div_ceil(100);
    let expected =
        slices(creates.items.len()) + slices(updates.items.len()) + slices(marks.items.len());
    let summary = outcome.summary.unwrap();
    // A zero budget starts one window per invocation and waits for its jobs about a second
    // (no invocation runs past its budget, whatever the window): a window's jobs may finish
    // in the next invocation, never two windows in one.
    assert!(
        summary.stages["sync_global"].counts["invocations"] >= expected as u64,
        "at most one window per invocation: {} invocations for {expected} windows",
        summary.stages["sync_global"].counts["invocations"]
    );
    let looped = &outcome.record.states["Instances[0].SyncGlobalMore"];
    assert_eq!(
        looped.next.as_deref(),
        Some("GatherPartners"),
        "the loop ended"
    );
    assert_no_duplicates(&h, Instance::Global, &before);
    let digests = h
        .sandbox()
        .slack_messages()
        .iter()
        .filter(|m| {
            m.text
                .as_deref()
                .unwrap_or_default()
                .contains("without support contacts")
        })
        .count();
    assert_eq!(digests, usize::from(!result.without_contacts.is_empty()));

    let writes = h.zendesk_writes(Instance::Global);
    succeeded(&h.run("e2e-sliced-again").await);
    assert_eq!(
        h.zendesk_writes(Instance::Global),
        writes,
        "nothing left to write"
    );
}

/// SPEC §8 bounded work: what does not fit the execution's budget is left for the next run —
/// the run still succeeds and its summary says what is left — and the next run does it, with
/// no duplicates; after it nothing is left to write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_that_does_not_fit_the_execution_is_left_for_the_next_run() {
    let (mut h, before) = first_run_world(120, 9).await;
    h.world.settings_mut().sync.execution_budget_secs = 0;
    let run = "e2e-out-of-time";
    let outcome = h.run(run).await;
    succeeded(&outcome);
    let creates: ChangeSet<DesiredOrg> =
        h.artifact(run, &artifacts::creates(SyncKind::Global)).await;
    let summary = outcome.summary.unwrap();
    let line = format!("global: {} creates", creates.items.len());
    assert!(
        summary
            .left_for_next_run
            .iter()
            .any(|l| l.starts_with(&line) && l.ends_with("left for the next run")),
        "{:?}",
        summary.left_for_next_run
    );
    assert_eq!(h.zendesk_writes(Instance::Global), 0);
    assert_eq!(
        summary.stages["sync_global"].counts["creates_left"],
        creates.items.len() as u64
    );

    h.world.settings_mut().sync.execution_budget_secs = 45 * 60;
    let next = h.run("e2e-next-hour").await;
    succeeded(&next);
    assert!(next.summary.unwrap().left_for_next_run.is_empty());
    let result: SyncResult = h
        .artifact("e2e-next-hour", &artifacts::sync_result(SyncKind::Global))
        .await;
    assert_eq!(result.created.len(), creates.items.len());
    assert_no_duplicates(&h, Instance::Global, &before);
    let writes = h.zendesk_writes(Instance::Global);
    succeeded(&h.run("e2e-hour-after").await);
    assert_eq!(h.zendesk_writes(Instance::Global), writes);
}

/// A sync continued over several invocations that crashes in one of them is redriven from the
/// place the earlier invocations saved: nothing is duplicated, the slice cut short is redone
/// (its creates that landed count as done), and the run ends with nothing left to write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_sync_crashed_in_a_later_invocation_is_redriven_from_its_place() {
    let (mut h, before) = first_run_in_slices().await;
    // Room for a window's create job and its sold-to job in one invocation (its second write
    // is the crash), and not for the whole sync: it goes on over invocations.
    h.world.settings_mut().sync.invocation_budget_secs = 4;
    let run = "e2e-sliced-crash";
    let plan = zdsync_cli::local::CrashPlan {
        stage: zdsync::stages::Stage::Sync,
        sync: SyncKind::Global,
        after_writes: 1,
    };
    let crashed = h.run_crashing(run, plan).await;
    assert_eq!(crashed.record.status, ExecutionStatus::Failed);
    assert_eq!(crashed.record.failed_states()[0], "Instances[0].SyncGlobal");
    let creates: ChangeSet<DesiredOrg> =
        h.artifact(run, &artifacts::creates(SyncKind::Global)).await;

    let redriven = h.redrive(run).await;
    succeeded(&redriven);
    let result: SyncResult = h
        .artifact(run, &artifacts::sync_result(SyncKind::Global))
        .await;
    assert!(result.progress.is_none(), "finished");
    assert_eq!(result.created.len(), creates.items.len());
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_no_duplicates(&h, Instance::Global, &before);
    let writes = h.zendesk_writes(Instance::Global);
    succeeded(&h.run("e2e-sliced-crash-again").await);
    assert_eq!(
        h.zendesk_writes(Instance::Global),
        writes,
        "nothing left to write"
    );
}

/// What the stages of a run reported, in order, and which stages said they ended.
#[derive(Default)]
struct RecordedProgress {
    updates: std::sync::Mutex<Vec<zdsync::progress::ProgressUpdate>>,
    ended: std::sync::Mutex<Vec<String>>,
}

impl zdsync::progress::ProgressSink for RecordedProgress {
    fn report(&self, update: &zdsync::progress::ProgressUpdate) {
        self.updates.lock().unwrap().push(update.clone());
    }

    fn ended(&self, label: &str) {
        self.ended.lock().unwrap().push(label.to_owned());
    }
}

impl RecordedProgress {
    /// `(done, total)` of each report of `label` counting `what`, after checking that the count
    /// only rises and never passes its total.
    fn counts(&self, label: &str, what: zdsync::progress::Counted) -> Vec<(u64, Option<u64>)> {
        let seen: Vec<(u64, Option<u64>)> = self
            .updates
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.label == label && u.what == what)
            .map(|u| (u.done, u.total))
            .collect();
        assert!(!seen.is_empty(), "{label} reported no {what}");
        for pair in seen.windows(2) {
            assert!(
                pair[0].0 <= pair[1].0,
                "{label}: {what} went back: {seen:?}"
            );
        }
        for (done, total) in &seen {
            assert!(total.is_none_or(|t| *done <= t), "{label}: {seen:?}");
        }
        seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stages_report_their_progress_while_they_page_and_write() {
    let (mut h, _) = first_run_world(150, 5).await;
    // Slices of one job of 100: the Global sync's creates take several jobs and two slices.
    h.world.settings_mut().sync.max_inflight_jobs = 1;
    let recorded = std::sync::Arc::new(RecordedProgress::default());
    let request = zdsync_cli::local::RunRequest {
        run_id: "e2e-progress".into(),
        as_of: as_of(),
        dry_run: false,
        full: false,
        allow_deletions: Default::default(),
        retry_time_scale: 0.01,
        crash: None,
    };
    let progress = zdsync_cli::local::Progress::new(true).reporting_to(recorded.clone());
    let outcome = zdsync_cli::local::run(&h.data, &h.world, &request, &progress)
        .await
        .unwrap();
    succeeded(&outcome);
    let counts = |stage: &str| -> BTreeMap<String, u64> {
        let path = h
            .dir
            .path()
            .join(format!("runs/e2e-progress/stages/{stage}.json"));
        let stats: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        serde_json::from_value(stats["counts"].clone()).unwrap()
    };
    use zdsync::progress::Counted::{RecordsPaged, RecordsWritten};

    // Salesforce pages: records so far of its totalSize, ending at every record gathered.
    let accounts = recorded.counts("gather-accounts", RecordsPaged);
    let records = counts("gather-accounts")["records"];
    assert_eq!(
        accounts.last(),
        Some(&(records, Some(records))),
        "{accounts:?}"
    );

    // Zendesk cursor pages give no count: records so far, ending at every org gathered.
    let orgs = recorded.counts("gather-orgs global", RecordsPaged);
    assert_eq!(
        orgs.last(),
        Some(&(counts("gather-orgs-global")["orgs"], None))
    );

    // The user side: every US Gov user listed, every contact of the chunked contact queries.
    let users = recorded.counts("gather-users", RecordsPaged);
    assert_eq!(
        users.last().map(|u| u.0),
        Some(counts("gather-users")["users"])
    );
    let contacts = recorded.counts("gather-contacts", RecordsPaged);
    let records = counts("gather-contacts")["records"];
    assert_eq!(
        contacts.last(),
        Some(&(records, Some(records))),
        "{contacts:?}"
    );

    // The sync: records written of the plan (creates + updates + marks), job by job.
    let written = recorded.counts("sync global", RecordsWritten);
    let plan = counts("compare-global");
    let planned = plan["creates"] + plan["updates"] + plan["marks"];
    assert!(planned > 100, "more than one slice: {plan:?}");
    assert_eq!(
        written.last(),
        Some(&(planned, Some(planned))),
        "{written:?}"
    );
    assert!(
        written.iter().all(|(_, total)| *total == Some(planned)),
        "{written:?}"
    );
    let steps: std::collections::BTreeSet<u64> = written.iter().map(|(done, _)| *done).collect();
    assert!(
        steps.len() > 2,
        "reported job by job, not once: {written:?}"
    );

    // Every stage that reported was told it ended (so its bar is cleared).
    let ended = recorded.ended.lock().unwrap().clone();
    for update in recorded.updates.lock().unwrap().iter() {
        assert!(
            ended.contains(&update.label),
            "{} never ended",
            update.label
        );
    }
}
