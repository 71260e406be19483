//! The bad-input corpus (`tests/bad-input/`, one folder per case: `case.toml` and its input
//! file): each case gets its named error or its per-record rejection, an invalid artifact
//! causes no Zendesk write, and nothing half-written is left in the store. The folder's
//! README says how to add a case.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use zdsync::error::StageError;
use zdsync::model::{ProcessReport, SalesforceAccounts, SyncKind};
use zdsync::stages::{Stage, artifacts};
use zdsync::store::{ArtifactStore, RunKeys};
use zdsync_cli::asl::ExecutionStatus;
use zdsync_e2e::{AS_OF, Harness};
use zdsync_sandbox::{Fixture, GeneratorOptions};

const RUN: &str = "bad-input";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    kind: Kind,
    stage: Option<Stage>,
    sync: Option<SyncKind>,
    artifact: Option<String>,
    input: Option<String>,
    #[serde(default)]
    patch: Vec<Patch>,
    generate: Option<String>,
    expect: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    /// An artifact of a run replaced, or patched, before the stage that reads it.
    Artifact,
    /// Salesforce account records added to the world, read by gather-accounts.
    Records,
    /// US Gov organizations added to the world, before a whole run.
    ZendeskOrgs,
    /// A plans.yaml, read by process.
    Plans,
    /// An overrides file, read by process.
    Overrides,
    /// A settings file.
    Config,
    /// The execution input, read by the guard.
    ExecutionInput,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    pointer: String,
    value: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Expect {
    error: Option<String>,
    path: Option<String>,
    path_starts_with: Option<String>,
    key_ends_with: Option<String>,
    message_contains: Vec<String>,
    rejected: Vec<Rejected>,
    never_in_soql: Vec<String>,
    report_expired: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rejected {
    salesforce_id: String,
    reason_contains: String,
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bad-input")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_of_the_bad_input_corpus_fails_as_it_says_and_loses_nothing() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.toml").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "the corpus has its cases: {dirs:?}");
    let mut kinds = std::collections::BTreeSet::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let case: Case = toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).unwrap())
            .unwrap_or_else(|e| panic!("{name}/case.toml: {e}"));
        assert!(
            !case.description.is_empty(),
            "{name}: a case says what it is"
        );
        kinds.insert(format!("{:?}", case.kind));
        eprintln!("bad input: {name} — {}", case.description);
        run_case(&name, dir, &case).await;
    }
    assert_eq!(kinds.len(), 7, "every kind of input is covered: {kinds:?}");
}

async fn run_case(name: &str, dir: &Path, case: &Case) {
    match case.kind {
        Kind::Artifact => artifact_case(name, dir, case).await,
        Kind::Records => records_case(name, dir, case).await,
        Kind::ZendeskOrgs => zendesk_orgs_case(name, dir, case).await,
        Kind::Plans | Kind::Overrides => process_input_case(name, dir, case).await,
        Kind::Config => config_case(name, dir, case).await,
        Kind::ExecutionInput => execution_input_case(name, dir, case).await,
    }
}

fn read_input(dir: &Path, case: &Case) -> Vec<u8> {
    std::fs::read(
        dir.join(
            case.input
                .as_deref()
                .expect("the case names its input file"),
        ),
    )
    .unwrap()
}

/// A stage's input for this case: the run, and the sync the stage works for.
fn stage_input(case: &Case) -> Value {
    let mut input = json!({"run_id": RUN, "as_of": AS_OF});
    if let Some(sync) = case.sync {
        input["sync"] = json!(sync);
    }
    input
}

async fn artifact_case(name: &str, dir: &Path, case: &Case) {
    let h = Harness::generated(40, 3).await;
    // The real artifacts of a run, then the case's bad one in place of one of them.
    let dry = h.run_with(RUN, true, Default::default()).await;
    assert_eq!(dry.record.status, ExecutionStatus::Succeeded, "{name}");
    let artifact = case
        .artifact
        .as_deref()
        .expect("the case names its artifact");
    let key = RunKeys::new(RUN).unwrap().key(artifact).unwrap();
    let store = h.data.store();
    let body: Vec<u8> = if case.input.is_some() {
        read_input(dir, case)
    } else {
        let mut real: Value =
            serde_json::from_slice(&store.get(&key).await.unwrap().expect("the artifact exists"))
                .unwrap();
        match case.generate.as_deref() {
            Some("ten_megabyte_name") => {
                real["items"][0]["name"] = json!("x".repeat(10 * 1024 * 1024));
            }
            Some(other) => panic!("{name}: unknown generator {other}"),
            None => {}
        }
        for patch in &case.patch {
            let value = scenario_value(&h, &patch.value);
            let (at, field) = patch.pointer.rsplit_once('/').unwrap();
            let parent = real
                .pointer_mut(at)
                .unwrap_or_else(|| panic!("{name}: no {at} in {artifact}"));
            match parent {
                Value::Array(items) => items[field.parse::<usize>().unwrap()] = value,
                Value::Object(fields) => {
                    fields.insert(field.to_owned(), value);
                }
                other => panic!("{name}: {at} is {other}"),
            }
        }
        serde_json::to_vec(&real).unwrap()
    };
    store.put(&key, body.into()).await.unwrap();
    h.sandbox().reset_counters();
    let stage = case.stage.expect("the case names the stage");
    let result = run_stage(&h, stage, stage_input(case)).await;
    check_error(name, &result, &case.expect);
    assert_eq!(
        h.zendesk_writes(zdsync::model::Instance::Global)
            + h.zendesk_writes(zdsync::model::Instance::Usgov),
        0,
        "{name}: not a single Zendesk write from an invalid artifact"
    );
    assert_store_intact(name, h.data_path(), &key);
}

/// `"{scenario:NAME}"` → the first Salesforce id the generator noted for NAME.
fn scenario_value(h: &Harness, value: &Value) -> Value {
    match value.as_str().and_then(|s| s.strip_prefix("{scenario:")) {
        Some(rest) => json!(h.scenario(rest.trim_end_matches('}'))[0]),
        None => value.clone(),
    }
}

async fn records_case(name: &str, dir: &Path, case: &Case) {
    let mut fixture = Fixture::generate(&GeneratorOptions::new(40, 3, zdsync_e2e::as_of()));
    let records: Vec<Value> = match case.generate.as_deref() {
        Some("ten_megabyte_account_name") => {
            let mut record: Value = serde_json::from_slice(
                &std::fs::read(corpus().join("unparseable-dates/accounts.json")).unwrap(),
            )
            .map(|records: Vec<Value>| records[0].clone())
            .unwrap();
            record["Zuora__R00N40000001lGjTEAU__r"][0]["Zuora__EffectiveEndDate__c"] =
                json!("2027-06-01");
            record["Name"] = json!("y".repeat(10 * 1024 * 1024));
            vec![record]
        }
        Some(other) => panic!("{name}: unknown generator {other}"),
        None => serde_json::from_slice(&read_input(dir, case)).unwrap(),
    };
    fixture
        .salesforce
        .objects
        .get_mut("Account")
        .unwrap()
        .extend(records);
    let h = Harness::from_fixture(fixture).await;
    let result = run_stage(&h, Stage::GatherAccounts, stage_input(case)).await;
    check_error(name, &result, &case.expect);
    let gathered: SalesforceAccounts = h.artifact(RUN, artifacts::SALESFORCE_ACCOUNTS).await;
    let mut rejected = gathered.rejected.clone();
    for expected in &case.expect.rejected {
        let at = rejected
            .iter()
            .position(|r| {
                r.salesforce_id.as_deref() == Some(expected.salesforce_id.as_str())
                    && r.reason.contains(&expected.reason_contains)
            })
            .unwrap_or_else(|| {
                panic!(
                    "{name}: no rejection of {:?} for {:?} in {:#?}",
                    expected.salesforce_id, expected.reason_contains, gathered.rejected
                )
            });
        let r = rejected.remove(at);
        assert!(
            r.name.as_deref().unwrap_or_default().len() < 1024,
            "{name}: the reason stays small"
        );
    }
    assert_store_intact(name, h.data_path(), "");
}

async fn zendesk_orgs_case(name: &str, dir: &Path, case: &Case) {
    let mut fixture = Fixture::generate(&GeneratorOptions::new(40, 3, zdsync_e2e::as_of()));
    let orgs: Vec<Value> = serde_json::from_slice(&read_input(dir, case)).unwrap();
    let names: Vec<Value> = orgs.iter().map(|o| o["name"].clone()).collect();
    fixture.zendesk.usgov.organizations.extend(orgs);
    let h = Harness::from_fixture(fixture).await;
    let before: Vec<Value> = h
        .orgs(zdsync::model::Instance::Usgov)
        .into_iter()
        .filter(|o| names.contains(&o["name"]))
        .collect();
    let outcome = h.run(RUN).await;
    assert_eq!(outcome.record.status, ExecutionStatus::Succeeded, "{name}");
    let queries = h.sandbox().salesforce().queries();
    assert!(
        queries.iter().any(|q| q.contains("FROM Contact")),
        "{name}: contacts were asked for"
    );
    for text in &case.expect.never_in_soql {
        assert!(
            queries.iter().all(|q| !q.contains(text.as_str())),
            "{name}: {text:?} reached a query"
        );
    }
    let after: Vec<Value> = h
        .orgs(zdsync::model::Instance::Usgov)
        .into_iter()
        .filter(|o| names.contains(&o["name"]))
        .collect();
    assert_eq!(before, after, "{name}: unmanaged orgs are left alone");
}

async fn process_input_case(name: &str, dir: &Path, case: &Case) {
    let mut h = Harness::generated(40, 3).await;
    let path = dir
        .join(case.input.as_deref().unwrap())
        .display()
        .to_string();
    match case.kind {
        Kind::Plans => h.world.settings_mut().sync.plans_file = Some(path),
        _ => h.world.settings_mut().sync.overrides = Some(path),
    }
    let outcome = h.run_with(RUN, true, Default::default()).await;
    match &case.expect.error {
        Some(error) => {
            assert_eq!(
                outcome.record.error.as_deref(),
                Some(error.as_str()),
                "{name}"
            );
            assert_eq!(outcome.record.failed_states()[0], "Process", "{name}");
            let cause = outcome.record.cause.clone().unwrap_or_default();
            for part in &case.expect.message_contains {
                assert!(cause.contains(part.as_str()), "{name}: {part:?} in {cause}");
            }
        }
        None => {
            assert_eq!(outcome.record.status, ExecutionStatus::Succeeded, "{name}");
            let report: ProcessReport = h.artifact(RUN, artifacts::PROCESS_REPORT).await;
            let expired: Vec<String> = report
                .overrides
                .expired
                .iter()
                .map(|e| e.salesforce_id.to_string())
                .collect();
            assert_eq!(expired, case.expect.report_expired, "{name}");
        }
    }
    assert_store_intact(name, h.data_path(), "");
}

async fn config_case(name: &str, dir: &Path, case: &Case) {
    let path = dir.join(case.input.as_deref().unwrap());
    let loaded = zdsync::config::Settings::load(Some(&path), &Default::default());
    let error = match (case.stage, loaded) {
        (None, Ok(_)) => panic!("{name}: the settings loaded"),
        (None, Err(e)) => StageError::from(e),
        (Some(_), Err(e)) => panic!("{name}: the settings should load, then fail the stage: {e}"),
        (Some(stage), Ok(settings)) => {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn ArtifactStore> = Arc::new(zdsync::store::DirStore::new(dir.path()));
            match zdsync::stages::StageContext::build(
                Arc::new(settings),
                store,
                stage.needs(),
                None,
            ) {
                Ok(_) => panic!("{name}: the {stage} stage's context was built"),
                Err(e) => e,
            }
        }
    };
    check_error(name, &Err(error), &case.expect);
}

async fn execution_input_case(name: &str, dir: &Path, case: &Case) {
    let h = Harness::generated(20, 3).await;
    let execution_input: Value = serde_json::from_slice(&read_input(dir, case)).unwrap();
    let input = json!({
        "run_id": RUN,
        "execution_arn": format!("{}:{RUN}", zdsync_cli::local::LOCAL_STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:")),
        "state_machine_arn": zdsync_cli::local::LOCAL_STATE_MACHINE_ARN,
        "started_at": format!("{AS_OF}T10:00:00Z"),
        "execution_input": execution_input,
    });
    let result = run_stage(&h, Stage::Guard, input).await;
    check_error(name, &result, &case.expect);
}

async fn run_stage(h: &Harness, stage: Stage, input: Value) -> Result<Value, StageError> {
    let ctx = h.world.context(&h.data).unwrap();
    zdsync::stages::run(stage, &ctx, input).await
}

fn check_error(name: &str, result: &Result<Value, StageError>, expect: &Expect) {
    let Some(wanted) = &expect.error else {
        assert!(result.is_ok(), "{name}: {result:?}");
        return;
    };
    let error = match result {
        Err(e) => e,
        Ok(output) => panic!("{name}: expected {wanted}, the stage answered {output}"),
    };
    assert_eq!(error.name(), wanted, "{name}: {error}");
    let text = error.to_string();
    for part in &expect.message_contains {
        assert!(text.contains(part.as_str()), "{name}: {part:?} in {text}");
    }
    if let StageError::InvalidArtifact { key, path, .. } = error {
        if let Some(want) = &expect.path {
            assert_eq!(path, want, "{name}: {text}");
        }
        if let Some(prefix) = &expect.path_starts_with {
            assert!(path.starts_with(prefix.as_str()), "{name}: {text}");
        }
        if let Some(suffix) = &expect.key_ends_with {
            assert!(key.ends_with(suffix.as_str()), "{name}: {text}");
        }
    } else {
        assert!(
            expect.path.is_none() && expect.key_ends_with.is_none(),
            "{name}: a path only comes with InvalidArtifact: {text}"
        );
    }
}

/// Nothing half-written: no temporary file is left, and every artifact but the planted one is
/// whole JSON.
fn assert_store_intact(name: &str, root: &Path, planted_key: &str) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = path.display().to_string();
            assert!(
                !text.ends_with(".tmp"),
                "{name}: a temporary file was left: {text}"
            );
            let is_planted = !planted_key.is_empty() && text.ends_with(planted_key);
            if text.ends_with(".json") && !is_planted {
                let body = std::fs::read(&path).unwrap();
                assert!(
                    serde_json::from_slice::<Value>(&body).is_ok(),
                    "{name}: {text} is not whole JSON"
                );
            }
        }
    }
}
