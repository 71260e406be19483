//! Recovery taken when it happens in the world: a redrive the next morning, a plan gone stale, a
//! redrive beside a running execution, a retried window, jobs slower than an invocation, a
//! crash after many accepted jobs, lost answers of create jobs, a sold-to email met again
//! windows later while search lags, and a finished sync invoked again (SPEC §8, §10).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use zdsync::model::{
    ChangeSet, DesiredOrg, Instance, OrgMark, RunSummary, SyncAction, SyncKind, SyncResult,
};
use zdsync::stages::{Stage, artifacts};
use zdsync_cli::asl::ExecutionStatus;
use zdsync_e2e::{AS_OF, Harness, as_of, succeeded};
use zdsync_sandbox::{Faults, Fixture, GeneratorOptions};

/// The demo world of 60 accounts whose Global guard trips: 3 marks over a limit of 2.
async fn tripping() -> Harness {
    let mut h = Harness::generated(60, 7).await;
    h.world.settings_mut().sync.deletion_guard_min = 2;
    h.world.settings_mut().sync.deletion_guard_ratio = 0.0;
    h
}

async fn result(h: &Harness, run: &str, sync: SyncKind) -> SyncResult {
    h.artifact(run, &artifacts::sync_result(sync)).await
}

async fn allow(h: &Harness, run: &str, sync: SyncKind, n: usize) {
    zdsync::stages::allow_deletions(h.data.store().as_ref(), run, &BTreeMap::from([(sync, n)]))
        .await
        .unwrap();
}

/// Zendesk writes to both instances so far.
fn writes(h: &Harness) -> u64 {
    h.zendesk_writes(Instance::Global) + h.zendesk_writes(Instance::Usgov)
}

/// Global orgs per Salesforce id (the generated world has one id on two orgs on purpose: a
/// conflict for a person to resolve).
fn global_orgs_per_id(h: &Harness) -> BTreeMap<String, usize> {
    let mut per_id = BTreeMap::new();
    for org in h.orgs(Instance::Global) {
        if let Some(id) = org["organization_fields"]["salesforce_id"].as_str() {
            *per_id.entry(id.to_owned()).or_default() += 1;
        }
    }
    per_id
}

/// No Salesforce id has more Global orgs than it had before (or than one, if it had none).
fn assert_no_duplicate_orgs(h: &Harness, before: &BTreeMap<String, usize>) {
    let doubled: Vec<(String, usize)> = global_orgs_per_id(h)
        .into_iter()
        .filter(|(id, n)| *n > before.get(id).copied().unwrap_or(0).max(1))
        .collect();
    assert!(doubled.is_empty(), "orgs created twice: {doubled:?}");
}

async fn assert_marked(h: &Harness, run: &str) {
    let marks: ChangeSet<OrgMark> = h
        .artifact(run, &artifacts::not_in_sync(SyncKind::Global))
        .await;
    assert_eq!(marks.items.len(), 3);
    for mark in &marks.items {
        let org = h
            .orgs(Instance::Global)
            .into_iter()
            .find(|o| o["id"] == json!(mark.id))
            .unwrap();
        assert_eq!(
            org["organization_fields"]["mark_for_deletion"],
            json!(true),
            "{org}"
        );
    }
}

/// SPEC §8: a redrive taken long after the execution's budget is spent gets a budget of its
/// own, from the redrive: the marks the guard held are applied, the creates and updates the
/// first attempt applied are not called "left", and the summary and report say which attempt
/// did what. The same sync invoked once more later still writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_after_the_execution_budget_applies_the_held_marks() {
    let mut h = tripping().await;
    let run = "e2e-late-redrive";
    let failed = h.run(run).await;
    assert_eq!(failed.record.error.as_deref(), Some("DeletionGuardTripped"));
    let first = result(&h, run, SyncKind::Global).await;
    let (created, updated) = (first.created.len(), first.updated.len());
    assert!(created > 0 && updated > 0 && first.marked.is_empty());

    // The alarm is seen the next morning: the execution's budget (2 s here for 45 minutes)
    // is long spent since the execution started.
    h.world.settings_mut().sync.execution_budget_secs = 2;
    tokio::time::sleep(Duration::from_secs(3)).await;
    allow(&h, run, SyncKind::Global, 3).await;
    let redriven = h.redrive(run).await;
    succeeded(&redriven);

    assert_marked(&h, run).await;
    let after = result(&h, run, SyncKind::Global).await;
    assert!(
        after.left_for_next_run.is_empty(),
        "{:?}",
        after.left_for_next_run
    );
    assert!(after.progress.is_none(), "finished");
    assert_eq!(
        (after.created.len(), after.updated.len()),
        (created, updated)
    );
    assert!(after.created.iter().all(|c| c.attempt == 0 && !c.already));
    assert!(after.updated.iter().all(|u| u.attempt == 0));
    assert!(
        after.marked.len() == 3 && after.marked.iter().all(|m| m.attempt == 1),
        "{:?}",
        after.marked
    );
    let summary: RunSummary = redriven.summary.clone().unwrap();
    // (The partner sync after it may well be past this short budget: that is its own.)
    assert!(
        summary
            .left_for_next_run
            .iter()
            .all(|l| !l.starts_with("global:")),
        "{:#?}",
        summary.left_for_next_run
    );
    let line = format!(
        "global: this redrive (attempt 2) marked 3; earlier attempts created {created}, updated {updated}"
    );
    assert!(summary.attempts.contains(&line), "{:#?}", summary.attempts);
    let report = zdsync_e2e::report_md(&h, run);
    assert!(
        report.contains("## Redrive") && report.contains(&line),
        "{report}"
    );
    zdsync_e2e::assert_report_counts_are_the_summarys(&report, &summary, false);

    // Later still, the sync of this run is invoked again (its answer lost, a third attempt):
    // it is finished, so it writes nothing and sends no second digest.
    let (before, digests) = (writes(&h), h.sandbox().slack_messages().len());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = h
        .stage(Stage::Sync, h.sync_input(run, SyncKind::Global, 2))
        .await
        .unwrap();
    assert_eq!(writes(&h), before, "a converged sync writes nothing");
    assert_eq!(h.sandbox().slack_messages().len(), digests);
    assert_eq!(again["counts"]["marked"], json!(3));
    assert_eq!(again["more"], json!(false));
}

/// SPEC §8: a plan older than `sync.plan_max_age_secs` is never applied — the redrive writes
/// nothing and fails `PlanStale`, saying to start a new execution with the allowance — and a
/// new execution with the allowance converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_plan_is_refused_and_a_new_execution_converges() {
    let mut h = tripping().await;
    let run = "e2e-stale-plan";
    let failed = h.run(run).await;
    assert_eq!(failed.record.error.as_deref(), Some("DeletionGuardTripped"));
    h.world.settings_mut().sync.plan_max_age_secs = 2;
    tokio::time::sleep(Duration::from_secs(3)).await;
    allow(&h, run, SyncKind::Global, 3).await;
    let before = writes(&h);
    let redriven = h.redrive(run).await;
    assert_eq!(redriven.record.status, ExecutionStatus::Failed);
    assert_eq!(redriven.record.error.as_deref(), Some("PlanStale"));
    assert_eq!(
        redriven.record.failed_states()[0],
        "Instances[0].SyncGlobal"
    );
    let cause = redriven.record.cause.clone().unwrap();
    assert!(
        cause.contains("Start a new execution")
            && cause.contains(r#"{"allow_deletions": {"global": 3}}"#),
        "{cause}"
    );
    assert_eq!(writes(&h), before, "a stale plan writes nothing");

    h.world.settings_mut().sync.plan_max_age_secs = 3600;
    let next = "e2e-stale-plan-next";
    succeeded(
        &h.run_with(next, false, BTreeMap::from([(SyncKind::Global, 3)]))
            .await,
    );
    assert_eq!(result(&h, next, SyncKind::Global).await.marked.len(), 3);
    let converged = writes(&h);
    succeeded(&h.run("e2e-stale-plan-after").await);
    assert_eq!(writes(&h), converged, "nothing left to write");
}

/// SPEC §8: a redrive does not pass the overlap guard again, so its sync checks itself: with
/// another execution running it writes nothing and fails naming that execution; once that one
/// ended, the same redrive goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_beside_a_running_execution_writes_nothing() {
    let h = tripping().await;
    let run = "e2e-redrive-beside";
    let failed = h.run(run).await;
    assert_eq!(failed.record.error.as_deref(), Some("DeletionGuardTripped"));
    // The hourly execution that started meanwhile, still running in a live process (this one).
    let hourly = zdsync_cli::asl::ExecutionRecord::new(
        &failed.record.state_machine_arn,
        "e2e-hourly",
        json!({}),
        chrono::Utc::now(),
    );
    let dir = h.data.run_dir("e2e-hourly");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("execution.json"),
        serde_json::to_vec(&hourly).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("RUNNING"), std::process::id().to_string()).unwrap();

    allow(&h, run, SyncKind::Global, 3).await;
    let before = writes(&h);
    let redriven = h.redrive(run).await;
    assert_eq!(
        redriven.record.error.as_deref(),
        Some("AnotherExecutionRunning")
    );
    let cause = redriven.record.cause.clone().unwrap();
    assert!(cause.contains(&hourly.execution_arn), "{cause}");
    assert_eq!(writes(&h), before);

    std::fs::remove_file(dir.join("RUNNING")).unwrap();
    succeeded(&h.redrive(run).await);
    assert_marked(&h, run).await;
}

/// SPEC §8: a record has one outcome in a result. The sold-to step fails `Retryable` after its
/// window's creates (some refused as records); the retry goes on from the saved place and
/// every record — created or refused — is in the result once, the counts equal to the records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_window_counts_each_record_once() {
    let h = Harness::generated(60, 7).await;
    let before = global_orgs_per_id(&h);
    let run = "e2e-retried-window";
    let dry = h.run_with(run, true, BTreeMap::new()).await;
    succeeded(&dry);
    // Five creates Zendesk refuses: a support level that is no option of the field.
    let key = zdsync::store::RunKeys::new(run)
        .unwrap()
        .key(&artifacts::creates(SyncKind::Global))
        .unwrap();
    let mut creates: Value = zdsync::store::read_json(h.data.store().as_ref(), &key)
        .await
        .unwrap();
    let items = creates["items"].as_array_mut().unwrap();
    let planned = items.len();
    let refused: BTreeSet<String> = items
        .iter_mut()
        .take(5)
        .map(|item| {
            item["organization_fields"]["support_level"] = json!("no-such-level");
            item["salesforce_id"].as_str().unwrap().to_owned()
        })
        .collect();
    zdsync::store::write_json(h.data.store().as_ref(), &key, &creates)
        .await
        .unwrap();

    // Every Create Many Users is throttled: the sold-to step gives up as retryable.
    h.sandbox()
        .set_faults(Faults {
            zendesk_429: 1.0,
            zendesk_only: Some("users/create_many".parse().unwrap()),
            ..Faults::none()
        })
        .unwrap();
    let input = h.sync_input(run, SyncKind::Global, 0);
    let failed = h.stage(Stage::Sync, input.clone()).await.unwrap_err();
    assert_eq!(failed.name(), "Retryable", "{failed}");
    h.sandbox().set_faults(Faults::none()).unwrap();
    let (output, _) = h.sync_to_the_end(run, SyncKind::Global, 0).await;
    let output = output.unwrap();

    let result = result(&h, run, SyncKind::Global).await;
    let errors: Vec<&str> = result
        .errors
        .iter()
        .filter(|e| e.action == SyncAction::Create)
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(
        errors.iter().copied().collect::<BTreeSet<_>>(),
        refused.iter().map(String::as_str).collect(),
        "{:#?}",
        result.errors
    );
    assert_eq!(errors.len(), refused.len(), "each refused create once");
    let created: BTreeSet<&str> = result.created.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(created.len(), result.created.len(), "each create once");
    assert_eq!(created.len(), planned - refused.len());
    assert_eq!(output["counts"]["created"], json!(created.len()));
    assert_eq!(output["counts"]["errors"], json!(result.error_records()));
    assert_no_duplicate_orgs(&h, &before);
}

/// SPEC §8: no invocation runs past its budget whatever the window: with jobs slower than the
/// invocation's budget, each invocation stops inside it, saves its place with the jobs still
/// running, and the next one follows them to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_slower_than_an_invocation_end_no_invocation_past_its_budget() {
    let fixture = Fixture::generate(&GeneratorOptions::new(60, 7, as_of()));
    let mut h = Harness::tuned(fixture, |c| c.job_delay = Duration::from_millis(2_600)).await;
    h.world.settings_mut().sync.invocation_budget_secs = 2;
    let before = global_orgs_per_id(&h);
    let run = "e2e-slow-jobs";
    succeeded(&h.run_with(run, true, BTreeMap::new()).await);
    let (output, took) = h.sync_to_the_end(run, SyncKind::Global, 0).await;
    output.unwrap();
    assert!(
        took.len() >= 4,
        "windows went on over invocations: {took:?}"
    );
    assert!(
        took.iter().all(|t| *t < Duration::from_secs(2)),
        "every invocation inside its budget: {took:?}"
    );
    let result = result(&h, run, SyncKind::Global).await;
    let creates: ChangeSet<DesiredOrg> =
        h.artifact(run, &artifacts::creates(SyncKind::Global)).await;
    assert_eq!(result.created.len(), creates.items.len());
    assert!(result.errors.is_empty(), "{:#?}", result.errors);
    assert_eq!(result.marked.len(), 3);
    assert_no_duplicate_orgs(&h, &before);
}

/// A first-run world with no sold-to contacts (so a sync's Zendesk calls are its orgs').
fn without_sold_tos(mut fixture: Fixture) -> Fixture {
    for account in fixture
        .salesforce
        .objects
        .get_mut("Account")
        .into_iter()
        .flatten()
    {
        account["Latest_Sold_To_Contact__r"] = Value::Null;
        if let Some(subscriptions) = account["Zuora__Subscriptions__r"].as_array_mut() {
            for subscription in subscriptions {
                subscription["Sold_To_Email__c"] = Value::Null;
            }
        }
    }
    fixture
}

/// SPEC §8: a crash after Zendesk accepted a whole window of create jobs (25 × 100) is redone
/// from the jobs' statuses: nothing is sent again, no org is searched for, and the redo costs
/// a handful of calls instead of 25 creates and 2 500 searches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_25_accepted_create_jobs_is_redone_from_their_statuses() {
    let options = GeneratorOptions::new(2_950, 3, as_of()).first_run();
    let fixture = without_sold_tos(Fixture::generate(&options));
    let h = Harness::tuned(fixture, |c| c.job_delay = Duration::from_millis(1_500)).await;
    let before = global_orgs_per_id(&h);
    let run = "e2e-crash-25-jobs";
    succeeded(&h.run_with(run, true, BTreeMap::new()).await);
    let creates: ChangeSet<DesiredOrg> =
        h.artifact(run, &artifacts::creates(SyncKind::Global)).await;
    assert!(creates.items.len() >= 2_500, "{}", creates.items.len());

    // The invocation dies (its Lambda stopped) once Zendesk accepted its 25 create jobs.
    let window = h
        .data_path()
        .join("runs")
        .join(run)
        .join(artifacts::sync_window(SyncKind::Global));
    let accepted = async {
        loop {
            let jobs = std::fs::read(&window)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .and_then(|w| w["jobs"].as_array().map(Vec::len))
                .unwrap_or(0);
            if jobs >= 25 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        output = h.stage(Stage::Sync, h.sync_input(run, SyncKind::Global, 0)) => {
            panic!("the sync ended before its jobs were accepted: {output:?}")
        }
        () = accepted => {}
    }
    let orgs_before_redo = global_orgs_per_id(&h).len();

    h.sandbox().reset_counters();
    let (output, _) = h.sync_to_the_end(run, SyncKind::Global, 1).await;
    output.unwrap();
    let counters = h.sandbox().counters();
    let calls = counters.total("global");
    let create_jobs = counters.get("global POST /api/v2/organizations/create_many");
    let searches = counters.get("global GET /api/v2/organizations/search");
    println!(
        "redo after a crash with 25 accepted create jobs: {calls} Zendesk calls ({create_jobs} create jobs for the creates past the first window, {searches} searches); {} orgs existed at the crash",
        orgs_before_redo
    );
    let past_first_window = (creates.items.len() - 2_500).div_ceil(100) as u64;
    assert_eq!(create_jobs, past_first_window, "no accepted job sent again");
    assert_eq!(searches, 0, "nothing looked up one by one");
    assert!(calls <= 60, "{calls} calls: {:#?}", counters.requests);
    let result = result(&h, run, SyncKind::Global).await;
    assert_eq!(result.created.len(), creates.items.len());
    assert!(result.errors.is_empty(), "{:#?}", result.errors);
    assert_no_duplicate_orgs(&h, &before);
}

/// SPEC §8: "lost" answers on 20 % of Create Many calls and 500s on 10 %: a lost answer's job
/// is found and followed, only a submission that never landed is sent again (with exactly its
/// own creates), and no org is created twice. The sync result counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_jobs_whose_answers_are_lost_are_followed_not_sent_again() {
    let options = GeneratorOptions::new(1_800, 5, as_of()).first_run();
    let h = Harness::tuned(Fixture::generate(&options), |c| c.seed = 21).await;
    let before = global_orgs_per_id(&h);
    let run = "e2e-lost-creates";
    succeeded(&h.run_with(run, true, BTreeMap::new()).await);
    h.sandbox()
        .set_faults(Faults {
            zendesk_lost: 0.2,
            zendesk_500: 0.1,
            zendesk_only: Some("organizations/create_many".parse().unwrap()),
            ..Faults::none()
        })
        .unwrap();
    let (output, _) = h.sync_to_the_end(run, SyncKind::Global, 0).await;
    h.sandbox().set_faults(Faults::none()).unwrap();
    let output = output.unwrap();
    let counters = h.sandbox().counters();
    let lost: u64 = counters.faulted.values().map(|t| t.lost).sum();
    let failed: u64 = counters.faulted.values().map(|t| t.total()).sum();
    assert!(lost >= 1, "{:#?}", counters.faulted);
    let result = result(&h, run, SyncKind::Global).await;
    let creates: ChangeSet<DesiredOrg> =
        h.artifact(run, &artifacts::creates(SyncKind::Global)).await;
    assert_eq!(result.lost_answers.submissions as u64, lost + failed);
    assert_eq!(
        result.lost_answers.found as u64, lost,
        "every landed job found"
    );
    assert_eq!(
        result.lost_answers.resubmitted_items as u64,
        failed * 100,
        "only what never landed was sent again"
    );
    assert_eq!(output["counts"]["lost_answers"], json!(lost + failed));
    assert_eq!(result.created.len(), creates.items.len());
    assert!(result.errors.is_empty(), "{:#?}", result.errors);
    assert!(result.created.iter().all(|c| !c.already));
    assert_no_duplicate_orgs(&h, &before);
}

/// SPEC §8: one sold-to email on new orgs of two windows, with search lagging ten minutes
/// behind writes: the user is created once, in the first org; for the second it is a user in
/// another org (the sync knows the users it put in a new org), with no error and no membership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sold_to_email_met_again_windows_later_is_a_user_in_another_org() {
    let options = GeneratorOptions::new(250, 9, as_of()).first_run();
    let mut fixture = Fixture::generate(&options);
    let new_customers: Vec<String> =
        fixture.generated.as_ref().unwrap().scenarios["global_new_customer"].clone();
    let first = new_customers.iter().min().unwrap().clone();
    let last = new_customers.iter().max().unwrap().clone();
    let shared = "pat.buyer@shared.example";
    for account in fixture.salesforce.objects.get_mut("Account").unwrap() {
        let id = account["Account_ID_18__c"].as_str().unwrap_or_default();
        if id == first || id == last {
            account["Latest_Sold_To_Contact__r"] = json!({"Name": "Pat Buyer", "Email": shared});
            for subscription in account["Zuora__Subscriptions__r"].as_array_mut().unwrap() {
                subscription["Sold_To_Email__c"] = json!(shared);
            }
        }
    }
    let mut h = Harness::tuned(fixture, |c| {
        c.search_index_delay = Duration::from_secs(600);
    })
    .await;
    h.world.settings_mut().sync.max_inflight_jobs = 1;
    let run = "e2e-shared-sold-to";
    succeeded(&h.run(run).await);

    let creates: ChangeSet<DesiredOrg> =
        h.artifact(run, &artifacts::creates(SyncKind::Global)).await;
    let window_of = |id: &str| {
        creates
            .items
            .iter()
            .position(|c| c.salesforce_id.as_str() == id)
            .unwrap()
            / 100
    };
    assert_ne!(window_of(&first), window_of(&last), "two windows");
    let org_of = |id: &str| h.orgs_of(Instance::Global, id)[0]["id"].clone();
    let global = h.sandbox().zendesk(zdsync_e2e::zendesk(Instance::Global));
    let users = h.users_with_email(Instance::Global, shared);
    assert_eq!(users.len(), 1, "{users:#?}");
    assert_eq!(users[0]["organization_id"], org_of(&first));
    let memberships: Vec<Value> = global
        .organization_memberships()
        .into_iter()
        .filter(|m| m["user_id"] == users[0]["id"])
        .collect();
    assert_eq!(
        memberships.len(),
        1,
        "no extra membership: {memberships:#?}"
    );
    let result = result(&h, run, SyncKind::Global).await;
    assert!(
        result.errors.iter().all(|e| e.key != last),
        "{:#?}",
        result.errors
    );
    assert!(
        result
            .without_contacts
            .iter()
            .any(|o| o.salesforce_id.as_str() == last),
        "the second org's one sold-to contact is in another org"
    );
    let _ = AS_OF;
}
