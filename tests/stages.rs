//! Stages on their bad paths (SPEC §10) and the sync's API efficiency (SPEC §8), over real
//! HTTP against the sandbox.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Days, Utc};
use serde_json::{Value, json};
use zdsync::error::StageError;
use zdsync::model::{Instance, SalesforceId, SyncKind, SyncResult};
use zdsync::stages::{Executions, HowItEnded, RunningExecution, Stage, StageContext, artifacts};
use zdsync::store::{ArtifactStore, RunKeys};
use zdsync_cli::asl::ExecutionStatus;
use zdsync_e2e::{Harness, as_of, zendesk};
use zdsync_sandbox::{Fixture, SlackFailure};

/// A valid account id for `n` (Salesforce's checksum rule), e.g. `001000000000042…`.
fn account_id(n: u64) -> String {
    SalesforceId::parse(&format!("001{n:012}"))
        .unwrap()
        .to_string()
}

/// A Salesforce account record with one subscription and one charge of `charge`.
fn account(n: u64, charge: &str) -> Value {
    let id = account_id(n);
    let end = (as_of() + Days::new(180)).to_string();
    json!({
        "Id": id, "Account_ID_18__c": id, "Name": format!("Efficiency Customer {n}"),
        "CARR_This_Account__c": 1000.0 + n as f64, "Type": "Customer",
        "Ultimate_Parent_Sales_Segment_Employees__c": "PubSec", "Account_Owner_Calc__c": "Owner",
        "Support_Instance__c": null, "Support_Hold__c": false,
        "Zuora__Subscriptions__r": [{"Id": format!("a1x{n:015}"), "Name": format!("A-S{n}"), "Zuora__Status__c": "Active",
            "Zuora__SubscriptionStartDate__c": "2026-01-01", "Zuora__SubscriptionEndDate__c": end}],
        "Zuora__R00N40000001lGjTEAU__r": [{"Id": format!("a1y{n:015}"), "Name": format!("C-{n}"),
            "Zuora__SubscriptionRatePlanChargeName__c": charge, "Zuora__Subscription__c": format!("a1x{n:015}"),
            "Zuora__EffectiveStartDate__c": "2026-01-01", "Zuora__EffectiveEndDate__c": end,
            "Zuora__Quantity__c": 10.0, "Subscription_Status__c": "Active"}]
    })
}

fn usgov_org(n: u64, name: &str) -> Value {
    let id = account_id(n);
    json!({"name": name, "organization_fields": {"salesforce_id": id, "account_type": "customer", "support_level": "custom"}})
}

/// C accounts without an org, U with a stale org, D orgs without an account — all US Gov (no
/// sold-to association), so every Zendesk write is an org job.
fn usgov_world(creates: u64, updates: u64, marks: u64) -> Fixture {
    let mut fixture = Fixture::default();
    let charge = "24x7 US Citizen Support - 1 Year";
    let accounts = (0..creates + updates).map(|n| account(n, charge)).collect();
    fixture
        .salesforce
        .objects
        .insert("Account".into(), accounts);
    let stale =
        (creates..creates + updates).map(|n| usgov_org(n, &format!("Efficiency Customer {n}")));
    let gone = (0..marks).map(|n| usgov_org(100_000 + n, &format!("Departed Customer {n}")));
    fixture.zendesk.usgov.organizations = stale.chain(gone).collect();
    fixture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_writes_take_one_call_per_hundred_records_and_polls_are_batched() {
    let (c, u, d) = (250u64, 150u64, 120u64);
    let h = Harness::from_fixture(usgov_world(c, u, d)).await;
    let outcome = h
        .run_with(
            "e2e-efficiency",
            false,
            BTreeMap::from([(SyncKind::Usgov, d as usize)]),
        )
        .await;
    assert_eq!(
        outcome.record.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        outcome.record.cause
    );
    let result: SyncResult = h
        .artifact("e2e-efficiency", &artifacts::sync_result(SyncKind::Usgov))
        .await;
    assert_eq!(
        (
            result.created.len(),
            result.updated.len(),
            result.marked.len()
        ),
        (c as usize, u as usize, d as usize)
    );
    assert!(result.errors.is_empty(), "{:#?}", result.errors);

    let counters = h.sandbox().counters();
    let calls = |key: &str| counters.get(&format!("usgov {key}"));
    let expected = c.div_ceil(100) + u.div_ceil(100) + d.div_ceil(100);
    assert_eq!(
        h.zendesk_writes(Instance::Usgov),
        expected,
        "{:#?}",
        counters.requests
    );
    assert_eq!(
        calls("POST /api/v2/organizations/create_many"),
        c.div_ceil(100)
    );
    assert_eq!(
        calls("PUT /api/v2/organizations/update_many"),
        u.div_ceil(100) + d.div_ceil(100)
    );
    assert_eq!(
        calls("GET /api/v2/job_statuses/{id}"),
        0,
        "job polls go through show_many"
    );
    let polls = calls("GET /api/v2/job_statuses/show_many");
    assert!(
        polls > 0 && polls <= 3 * expected,
        "{polls} show_many polls for {expected} jobs"
    );
    // Global's only write: the partner sync creating the alliance partner's org.
    assert_eq!(h.zendesk_writes(Instance::Global), 1);
    println!(
        "org writes: {expected} calls for {c} creates, {u} updates, {d} marks; {polls} show_many polls"
    );
}

/// Runs one stage directly, as `zdsync stage` or a Lambda invocation would.
async fn stage(h: &Harness, stage: Stage, input: Value) -> Result<Value, StageError> {
    let ctx = h.world.context(&h.data).unwrap();
    zdsync::stages::run(stage, &ctx, input).await
}

fn input(run_id: &str, instance: Option<Instance>) -> Value {
    let mut input = json!({"run_id": run_id, "as_of": zdsync_e2e::AS_OF});
    if let Some(instance) = instance {
        input["instance"] = json!(instance);
    }
    input
}

async fn put(h: &Harness, run_id: &str, name: &str, body: &str) {
    let key = RunKeys::new(run_id).unwrap().key(name).unwrap();
    h.data
        .store()
        .put(&key, body.as_bytes().to_vec().into())
        .await
        .unwrap();
}

async fn get(h: &Harness, run_id: &str, name: &str) -> Value {
    let key = RunKeys::new(run_id).unwrap().key(name).unwrap();
    serde_json::from_slice(&h.data.store().get(&key).await.unwrap().unwrap()).unwrap()
}

fn invalid_artifact(result: Result<Value, StageError>) -> (String, String, String) {
    match result {
        Err(StageError::InvalidArtifact { key, path, message }) => (key, path, message),
        other => panic!("expected InvalidArtifact, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_tampered_compare_artifact_fails_the_sync_before_any_write() {
    let h = Harness::generated(40, 3).await;
    let run = "e2e-tamper";
    // Produce real compare artifacts without syncing.
    let dry = h.run_with(run, true, BTreeMap::new()).await;
    assert_eq!(dry.record.status, ExecutionStatus::Succeeded);
    h.sandbox().reset_counters();
    let name = artifacts::updates(SyncKind::Global);
    let good = get(&h, run, &name).await;
    assert!(
        !good["items"].as_array().unwrap().is_empty(),
        "the fixture has updates"
    );

    // Not JSON.
    put(&h, run, &name, "{\"instance\": \"global\", \"items\": [").await;
    let (key, _, _) =
        invalid_artifact(stage(&h, Stage::Sync, input(run, Some(Instance::Global))).await);
    assert_eq!(key, format!("runs/{run}/{name}"));

    // The wrong type deep inside.
    let mut bad = good.clone();
    bad["items"][0]["id"] = json!("seven");
    put(&h, run, &name, &bad.to_string()).await;
    let (_, path, _) =
        invalid_artifact(stage(&h, Stage::Sync, input(run, Some(Instance::Global))).await);
    assert_eq!(path, "items[0].id");

    // An org that is not in the gathered artifact.
    let mut bad = good.clone();
    bad["items"][0]["id"] = json!(999_999_999u64);
    put(&h, run, &name, &bad.to_string()).await;
    let (_, path, message) =
        invalid_artifact(stage(&h, Stage::Sync, input(run, Some(Instance::Global))).await);
    assert_eq!(path, "items[0].id");
    assert!(message.contains("not a record this sync owns"), "{message}");

    // A field the sync never writes (an agent's).
    let mut bad = good.clone();
    bad["items"][0]["organization_fields"]["ignore_deletion"] = json!(true);
    put(&h, run, &name, &bad.to_string()).await;
    let (_, path, _) =
        invalid_artifact(stage(&h, Stage::Sync, input(run, Some(Instance::Global))).await);
    assert_eq!(path, "items[0].organization_fields.ignore_deletion");

    // A mark turned into an unmark.
    put(&h, run, &name, &good.to_string()).await;
    let marks_name = artifacts::not_in_sync(SyncKind::Global);
    let mut marks = get(&h, run, &marks_name).await;
    marks["items"][0]["organization_fields"]["mark_for_deletion"] = json!(false);
    put(&h, run, &marks_name, &marks.to_string()).await;
    let (_, path, _) =
        invalid_artifact(stage(&h, Stage::Sync, input(run, Some(Instance::Global))).await);
    assert!(path.starts_with("items[0].organization_fields"), "{path}");

    // Another sync's artifact.
    let wrong = get(&h, run, &artifacts::creates(SyncKind::Usgov)).await;
    assert_eq!(wrong["sync"], json!("usgov"));
    put(
        &h,
        run,
        &artifacts::creates(SyncKind::Global),
        &wrong.to_string(),
    )
    .await;
    let (_, path, _) =
        invalid_artifact(stage(&h, Stage::Sync, input(run, Some(Instance::Global))).await);
    assert_eq!(path, "sync");

    // A missing artifact.
    let (key, _, message) = invalid_artifact(
        stage(
            &h,
            Stage::Compare,
            input("e2e-nothing-here", Some(Instance::Usgov)),
        )
        .await,
    );
    assert!(
        key.ends_with("usgov_accounts.json") && message.contains("does not exist"),
        "{key} {message}"
    );

    assert_eq!(
        h.zendesk_writes(Instance::Global) + h.zendesk_writes(Instance::Usgov),
        0,
        "not a single Zendesk write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_salesforce_fails_the_gather_and_writes_nothing() {
    let mut fixture = Fixture::default();
    fixture
        .salesforce
        .objects
        .insert("Account".into(), Vec::new());
    let h = Harness::from_fixture(fixture).await;
    let outcome = h.run("e2e-empty").await;
    assert_eq!(outcome.record.error.as_deref(), Some("EmptySource"));
    assert!(!h.artifact_exists("e2e-empty", artifacts::SALESFORCE_ACCOUNTS));
    assert!(outcome.record.failed_states().contains(&"GatherAccounts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_rejected_records_fail_the_gather_after_reporting_them() {
    let mut fixture = Fixture::default();
    let mut accounts: Vec<Value> = (0..20)
        .map(|n| account(n, "Self-Managed - Premium - 1 Year"))
        .collect();
    // Not a field the query filters on, so the record reaches the mapper.
    accounts[3]["Zuora__R00N40000001lGjTEAU__r"][0]["Zuora__EffectiveStartDate__c"] =
        json!("2026-02-30");
    fixture
        .salesforce
        .objects
        .insert("Account".into(), accounts);
    let h = Harness::from_fixture(fixture).await;
    let result = stage(&h, Stage::GatherAccounts, input("e2e-rejected", None)).await;
    match result {
        Err(StageError::TooManyRecordErrors {
            count: 1,
            result_key,
            ..
        }) => {
            assert!(result_key.ends_with("salesforce_accounts.json"))
        }
        other => panic!("{other:?}"),
    }
    let gathered = get(&h, "e2e-rejected", artifacts::SALESFORCE_ACCOUNTS).await;
    assert_eq!(
        gathered["rejected"][0]["salesforce_id"],
        json!(account_id(3))
    );
    assert!(
        gathered["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Zuora__EffectiveStartDate__c")
    );
    assert_eq!(gathered["accounts"].as_array().unwrap().len(), 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_account_keeps_its_org_untouched() {
    // 1 rejected record in 200 stays under the 1 % limit; its org is neither updated nor marked.
    let mut fixture = usgov_world(0, 200, 0);
    let accounts = fixture.salesforce.objects.get_mut("Account").unwrap();
    accounts[0]["Zuora__R00N40000001lGjTEAU__r"][0]["Zuora__EffectiveStartDate__c"] =
        json!("not a date");
    let h = Harness::from_fixture(fixture).await;
    let outcome = h.run("e2e-held").await;
    assert_eq!(
        outcome.record.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        outcome.record.cause
    );
    let org = &h.orgs_of(Instance::Usgov, &account_id(0))[0];
    assert_eq!(
        org["organization_fields"]["mark_for_deletion"],
        Value::Null,
        "not marked"
    );
    assert_eq!(org["updated_at"], org["created_at"], "not updated");
    let result: SyncResult = h
        .artifact("e2e-held", &artifacts::sync_result(SyncKind::Usgov))
        .await;
    assert_eq!(result.updated.len(), 199);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_overrides_file_fails_process_naming_the_line() {
    let mut h = Harness::generated(20, 5).await;
    let path = h.data_path().join("overrides.yaml");
    std::fs::write(
        &path,
        "- salesforce_id: 0011U00000V0tkD\n  reason: pilot\n  fields: { sub_platinum: true }\n",
    )
    .unwrap();
    h.world.settings_mut().sync.overrides = Some(path.display().to_string());
    let outcome = h.run("e2e-overrides").await;
    assert_eq!(outcome.record.error.as_deref(), Some("InvalidConfig"));
    let cause = outcome.record.cause.unwrap();
    assert!(
        cause.contains("line 3") && cause.contains("sub_platinum"),
        "{cause}"
    );
    assert_eq!(
        h.zendesk_writes(Instance::Global) + h.zendesk_writes(Instance::Usgov),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_finding_an_older_one_running_stops_without_writing() {
    struct OlderRun;
    #[async_trait]
    impl Executions for OlderRun {
        async fn running(&self, _: &str) -> Result<Vec<RunningExecution>, StageError> {
            Ok(vec![RunningExecution {
                execution_arn: "arn:aws:states:local:000000000000:execution:zdsync-sync:older"
                    .into(),
                start: DateTime::<Utc>::UNIX_EPOCH,
            }])
        }
        async fn how_it_ended(&self, _: &str) -> Result<HowItEnded, StageError> {
            Ok(HowItEnded::default())
        }
    }
    let h = Harness::generated(20, 5).await;
    let ctx = StageContext::build_all(
        Arc::new(h.world.settings().clone()),
        h.data.store(),
        Arc::new(OlderRun),
    )
    .unwrap();
    let output = zdsync::stages::run(
        Stage::Guard,
        &ctx,
        json!({"run_id": "e2e-overlap", "execution_arn": "arn:…:execution:zdsync-sync:e2e-overlap",
               "state_machine_arn": "arn:…:stateMachine:zdsync-sync", "started_at": "2026-11-23T10:00:00Z",
               "execution_input": {}}),
    )
    .await
    .unwrap();
    assert_eq!(output["skip"], json!(true));
    assert_eq!(
        output["older_execution"],
        json!("arn:aws:states:local:000000000000:execution:zdsync-sync:older")
    );
    assert!(
        h.data
            .store()
            .list("runs/e2e-overlap")
            .await
            .unwrap()
            .is_empty(),
        "the guard writes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_slack_webhook_is_a_warning_and_the_run_succeeds() {
    let h = Harness::generated(60, 7).await;
    h.sandbox().set_slack_failure(Some(SlackFailure {
        status: 404,
        body: "no_service".into(),
    }));
    // A new Global customer whose sold-to contact is taken by another org: nobody can be added.
    let id = h.scenario("sold_to_user_in_other_org")[0].clone();
    let outcome = h.run("e2e-slack").await;
    assert_eq!(outcome.record.status, ExecutionStatus::Succeeded);
    let result: SyncResult = h
        .artifact("e2e-slack", &artifacts::sync_result(SyncKind::Global))
        .await;
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.contains("Slack notification failed") && w.contains(&id)),
        "{:#?}",
        result.warnings
    );
    assert!(
        !result.warnings.iter().any(|w| w.contains("/services/")),
        "the webhook URL is a secret"
    );
    assert_eq!(
        h.sandbox()
            .zendesk(zendesk(Instance::Global))
            .ignored_fields()
            .len(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_setting_is_named_when_the_context_is_built() {
    let mut h = Harness::generated(10, 1).await;
    h.world.settings_mut().zendesk.usgov.url = None;
    let err = h.world.context(&h.data).err().unwrap().to_string();
    assert!(
        err.contains("zendesk.usgov.url") && err.contains("ZDSYNC_ZENDESK_USGOV_URL"),
        "{err}"
    );
}

fn sync_input(run_id: &str, sync: SyncKind) -> Value {
    json!({"run_id": run_id, "as_of": zdsync_e2e::AS_OF, "sync": sync})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_partner_and_user_artifacts_fail_their_sync_before_any_write() {
    let h = Harness::generated(40, 3).await;
    let run = "e2e-tamper-people";
    assert_eq!(
        h.run_with(run, true, BTreeMap::new()).await.record.status,
        ExecutionStatus::Succeeded
    );
    h.sandbox().reset_counters();

    // A user mark turned into an unmark, or smuggling another field.
    let name = artifacts::not_in_sync(SyncKind::Users);
    let good = get(&h, run, &name).await;
    assert!(
        !good["items"].as_array().unwrap().is_empty(),
        "the fixture marks a user"
    );
    let mut bad = good.clone();
    bad["items"][0]["user_fields"]["not_in_sfdc"] = json!(false);
    put(&h, run, &name, &bad.to_string()).await;
    let (key, path, _) =
        invalid_artifact(stage(&h, Stage::Sync, sync_input(run, SyncKind::Users)).await);
    assert_eq!(key, format!("runs/{run}/users/not_in_sync.json"));
    assert!(path.starts_with("items[0].user_fields"), "{path}");
    put(&h, run, &name, &good.to_string()).await;

    // An update aimed at a user the sync does not own (an agent), or at a field it never writes.
    let users = get(&h, run, artifacts::USERS).await;
    let agent = users["others"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == json!("support.agent@gitlab.com"))
        .unwrap()["id"]
        .clone();
    let name = artifacts::updates(SyncKind::Users);
    let good = get(&h, run, &name).await;
    let mut bad = good.clone();
    bad["items"][0]["id"] = agent;
    put(&h, run, &name, &bad.to_string()).await;
    let (_, path, message) =
        invalid_artifact(stage(&h, Stage::Sync, sync_input(run, SyncKind::Users)).await);
    assert_eq!(path, "items[0].id");
    assert!(message.contains("not a record this sync owns"), "{message}");
    let mut bad = good.clone();
    bad["items"][0]["user_fields"]["vip"] = json!(true);
    put(&h, run, &name, &bad.to_string()).await;
    let (_, path, _) =
        invalid_artifact(stage(&h, Stage::Sync, sync_input(run, SyncKind::Users)).await);
    assert_eq!(path, "items[0].user_fields.vip");
    put(&h, run, &name, &good.to_string()).await;

    // A partner create of an account that has a Global org already would duplicate it.
    let name = artifacts::creates(SyncKind::Partners);
    let mut creates = get(&h, run, &name).await;
    let customer = h.scenario("global_in_sync")[0].clone();
    creates["items"][0]["salesforce_id"] = json!(customer);
    put(&h, run, &name, &creates.to_string()).await;
    let (_, path, message) =
        invalid_artifact(stage(&h, Stage::Sync, sync_input(run, SyncKind::Partners)).await);
    assert_eq!(path, "items[0]");
    assert!(message.contains("would duplicate it"), "{message}");
    // … and a set of another sync (the user creates relabelled as the partners') is refused.
    let name = artifacts::creates(SyncKind::Users);
    let mut users_creates = get(&h, run, &name).await;
    users_creates["sync"] = json!("partners");
    put(&h, run, &name, &users_creates.to_string()).await;
    let (_, path, message) =
        invalid_artifact(stage(&h, Stage::Sync, sync_input(run, SyncKind::Users)).await);
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("sync", "expected users, found partners")
    );

    assert_eq!(
        h.zendesk_writes(Instance::Global) + h.zendesk_writes(Instance::Usgov),
        0,
        "not a single Zendesk write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_sync_without_its_alliance_id_fails_naming_the_setting() {
    let mut h = Harness::generated(40, 3).await;
    h.world.settings_mut().sync.alliance_partner_id = None;
    let outcome = h.run("e2e-no-alliance").await;
    assert_eq!(outcome.record.status, ExecutionStatus::Failed);
    assert_eq!(outcome.record.error.as_deref(), Some("InvalidConfig"));
    let cause = outcome.record.cause.clone().unwrap();
    assert!(
        cause.contains("sync.alliance_partner_id")
            && cause.contains("ZDSYNC_SYNC_ALLIANCE_PARTNER_ID"),
        "{cause}"
    );
    assert!(
        outcome
            .record
            .failed_states()
            .contains(&"Instances[0].GatherPartners[0].GatherPartnerAccounts")
    );
    // The stage that needs it fails, and only that: the Global org sync before it ran.
    assert!(h.artifact_exists("e2e-no-alliance", &artifacts::sync_result(SyncKind::Global)));
    // A stage input naming a sync of the other instance is refused.
    let wrong = stage(
        &h,
        Stage::Compare,
        json!({"run_id": "e2e-no-alliance", "as_of": zdsync_e2e::AS_OF, "sync": "users", "instance": "global"}),
    )
    .await;
    assert!(
        matches!(&wrong, Err(StageError::InvalidConfig(m)) if m.contains("users sync writes to usgov")),
        "{wrong:?}"
    );
}

/// The summarize stage with corrupt artifacts: a succeeded run's summary is written and the
/// report fails naming the artifact; a failed run's summary and report are written with what
/// could be read, and say what could not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_artifact_fails_the_report_of_a_good_run_and_is_noted_in_a_failed_ones() {
    let h = Harness::from_fixture(Fixture::default()).await;
    let run = "e2e-corrupt-report";
    put(
        &h,
        run,
        &artifacts::updates(SyncKind::Partners),
        "{\"sync\": \"partners\", \"items\": 7}",
    )
    .await;
    let err = stage(&h, Stage::Summarize, input(run, None))
        .await
        .unwrap_err();
    match &err {
        StageError::InvalidArtifact { key, .. } => {
            assert_eq!(key, &format!("runs/{run}/partner/updates.json"))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        h.artifact_exists(run, artifacts::SUMMARY),
        "the summary comes first"
    );
    assert!(!h.artifact_exists(run, artifacts::REPORT));

    // The same run failed (a corrupt sync result too): everything is still written.
    put(
        &h,
        run,
        &artifacts::sync_result(SyncKind::Users),
        "{\"created\": [",
    )
    .await;
    let mut failed = input(run, None);
    failed["failure"] = json!({"status": "failed", "state": "Instances[1].SyncUsers", "error": "InvalidArtifact", "cause": "bad"});
    stage(&h, Stage::Summarize, failed).await.unwrap();
    let summary: zdsync::model::RunSummary = h.artifact(run, artifacts::SUMMARY).await;
    assert!(
        summary
            .errors
            .iter()
            .any(|e| e.contains(&format!("runs/{run}/users/sync_result.json"))),
        "{:?}",
        summary.errors
    );
    let report = zdsync_e2e::report_md(&h, run);
    for part in [
        "- failed state: Instances[1].SyncUsers",
        &format!("could not be read: artifact runs/{run}/partner/updates.json is invalid"),
    ] {
        assert!(report.contains(part), "{part:?} in\n{report}");
    }
}
