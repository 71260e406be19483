//! Shared helpers for the end-to-end tests: a sandbox world in a temporary data directory, and
//! ways to run the real state machine against it and read what it left.

use std::path::Path;

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

use serde_json::{Value, json};
use zdsync::model::{Instance, SalesforceId, SyncKind};
use zdsync::store::{RunKeys, read_json};
use zdsync_cli::local::{self, DataDir, Outcome, Progress, RunRequest, World, WorldSpec};
use zdsync_sandbox::{Fixture, GeneratorOptions, Sandbox, SandboxConfig, ZendeskInstance};

pub const AS_OF: &str = "2026-11-23";

pub fn as_of() -> NaiveDate {
    AS_OF.parse().unwrap()
}

/// A world generated from `accounts` and `seed`, with fast jobs, in its own data directory.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub data: DataDir,
    pub world: World,
    pub fixture: Fixture,
}

impl Harness {
    pub async fn generated(accounts: usize, seed: u64) -> Harness {
        let fixture = Fixture::generate(&GeneratorOptions::new(accounts, seed, as_of()));
        Harness::from_fixture(fixture).await
    }

    pub async fn from_fixture(fixture: Fixture) -> Harness {
        Harness::tuned(fixture, |_| {}).await
    }

    /// A world of `fixture` whose sandbox `tune` adjusts (jobs take 20 ms unless it says
    /// otherwise).
    pub async fn tuned(mut fixture: Fixture, tune: impl FnOnce(&mut SandboxConfig)) -> Harness {
        let alliance = alliance_partner(&mut fixture);
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let mut config = SandboxConfig::new(fixture.clone());
        config.job_delay = std::time::Duration::from_millis(20);
        // Many runs a minute: the change feed's own limit (10 a minute) would make the tests
        // wait, not test anything (the sandbox's tests cover its 429s).
        config.incremental_rate_limit_per_minute = 0;
        // The org's records are older than the first run, as in a real org (records changed
        // by a test are stamped when it changes them).
        config.salesforce.initial_modstamp = Some(chrono::Utc::now() - chrono::Duration::days(1));
        tune(&mut config);
        let spec = WorldSpec::Sandbox {
            accounts: 0,
            seed: 0,
            existing_orgs: 0.0,
        };
        let mut world = World::with_sandbox(spec, config, &data).await.unwrap();
        world.settings_mut().sync.alliance_partner_id = Some(alliance);
        // The sandbox's Zendesk is the tests' alone: no share of its limit to leave to others
        // (tests of the share set their own).
        for instance in Instance::ALL {
            let zendesk = &mut world.settings_mut().zendesk;
            let settings = match instance {
                Instance::Global => &mut zendesk.global,
                Instance::Usgov => &mut zendesk.usgov,
            };
            settings.max_requests_per_minute = Some(600_000);
        }
        Harness {
            dir,
            data,
            world,
            fixture,
        }
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.world.sandbox().expect("a sandbox world")
    }

    pub async fn run(&self, run_id: &str) -> Outcome {
        self.run_with(run_id, false, Default::default()).await
    }

    pub async fn run_with(
        &self,
        run_id: &str,
        dry_run: bool,
        allow_deletions: std::collections::BTreeMap<SyncKind, usize>,
    ) -> Outcome {
        let request = RunRequest {
            run_id: run_id.into(),
            as_of: as_of(),
            dry_run,
            full: false,
            allow_deletions,
            retry_time_scale: 0.01,
            crash: None,
        };
        local::run(&self.data, &self.world, &request, &Progress::new(true))
            .await
            .unwrap()
    }

    /// A run whose gathers read every source in full (`zdsync run --full`).
    pub async fn run_full(&self, run_id: &str) -> Outcome {
        let request = RunRequest {
            run_id: run_id.into(),
            as_of: as_of(),
            dry_run: false,
            full: true,
            allow_deletions: Default::default(),
            retry_time_scale: 0.01,
            crash: None,
        };
        local::run(&self.data, &self.world, &request, &Progress::new(true))
            .await
            .unwrap()
    }

    /// A run in which one stage crashes after some of its Zendesk writes.
    pub async fn run_crashing(&self, run_id: &str, crash: local::CrashPlan) -> Outcome {
        let request = RunRequest {
            run_id: run_id.into(),
            as_of: as_of(),
            dry_run: false,
            full: false,
            allow_deletions: Default::default(),
            retry_time_scale: 0.01,
            crash: Some(crash),
        };
        local::run(&self.data, &self.world, &request, &Progress::new(true))
            .await
            .unwrap()
    }

    /// `zdsync redrive` of a run of this harness.
    pub async fn redrive(&self, run_id: &str) -> Outcome {
        local::redrive(&self.data, &self.world, run_id, 0.01, &Progress::new(true))
            .await
            .unwrap()
    }

    /// One stage of a run invoked in-process with `input`, as Lambda invokes it for a state.
    pub async fn stage(
        &self,
        stage: zdsync::stages::Stage,
        input: Value,
    ) -> Result<Value, zdsync::error::StageError> {
        let ctx = self.world.context(&self.data).unwrap();
        zdsync::stages::run(stage, &ctx, input).await
    }

    /// What the state machine gives the sync state of `sync` in attempt `redrive_count` of
    /// `run_id` (0: the first; a redrive is counted from now, as Step Functions does).
    pub fn sync_input(&self, run_id: &str, sync: SyncKind, redrive_count: u32) -> Value {
        let record = self.data.load_execution(run_id).unwrap();
        let mut execution = json!({
            "Id": record.execution_arn,
            "Name": record.name,
            "StartTime": record.start_time,
            "Input": record.input,
            "RedriveCount": redrive_count,
        });
        if redrive_count > 0 {
            execution["RedriveTime"] = json!(chrono::Utc::now().to_rfc3339());
        }
        json!({
            "run_id": run_id,
            "as_of": AS_OF,
            "sync": sync,
            "execution": execution,
            "state_machine_arn": record.state_machine_arn,
        })
    }

    /// Invokes the sync of `sync` until it says it is done for the run, as the state machine's
    /// loop does; answers its last output and how long each invocation took.
    pub async fn sync_to_the_end(
        &self,
        run_id: &str,
        sync: SyncKind,
        redrive_count: u32,
    ) -> (
        Result<Value, zdsync::error::StageError>,
        Vec<std::time::Duration>,
    ) {
        let mut took = Vec::new();
        loop {
            let started = std::time::Instant::now();
            let output = self
                .stage(
                    zdsync::stages::Stage::Sync,
                    self.sync_input(run_id, sync, redrive_count),
                )
                .await;
            took.push(started.elapsed());
            match &output {
                Ok(out) if out["more"] == json!(true) => {
                    assert!(took.len() < 100, "a sync that never ends");
                }
                _ => return (output, took),
            }
        }
    }

    pub async fn artifact<T: DeserializeOwned>(&self, run_id: &str, name: &str) -> T {
        let key = RunKeys::new(run_id).unwrap().key(name).unwrap();
        read_json(self.data.store().as_ref(), &key).await.unwrap()
    }

    pub fn artifact_exists(&self, run_id: &str, name: &str) -> bool {
        self.dir
            .path()
            .join("runs")
            .join(run_id)
            .join(name)
            .exists()
    }

    /// Scenario name → Salesforce ids the generator noted.
    pub fn scenario(&self, name: &str) -> Vec<String> {
        self.fixture
            .generated
            .as_ref()
            .and_then(|g| g.scenarios.get(name))
            .cloned()
            .unwrap_or_default()
    }

    pub fn orgs(&self, instance: Instance) -> Vec<Value> {
        self.sandbox().zendesk(zendesk(instance)).organizations()
    }

    /// The orgs whose `salesforce_id` field is `id`.
    pub fn orgs_of(&self, instance: Instance, id: &str) -> Vec<Value> {
        self.orgs(instance)
            .into_iter()
            .filter(|o| o["organization_fields"]["salesforce_id"].as_str() == Some(id))
            .collect()
    }

    /// The users of `instance` whose email is `email` (as stored).
    pub fn users_with_email(&self, instance: Instance, email: &str) -> Vec<Value> {
        self.sandbox()
            .zendesk(zendesk(instance))
            .users()
            .into_iter()
            .filter(|u| u["email"] == json!(email))
            .collect()
    }

    pub fn zendesk_writes(&self, instance: Instance) -> u64 {
        self.sandbox()
            .counters()
            .zendesk_write_calls(zendesk(instance))
    }

    /// Edits one Salesforce account record in place (the next run reads the change).
    pub fn edit_account(&self, id: &str, edit: impl FnOnce(&mut Value)) {
        self.sandbox().salesforce().with_objects_mut(|objects| {
            let account = objects
                .get_mut("Account")
                .unwrap()
                .iter_mut()
                .find(|a| a["Account_ID_18__c"] == serde_json::json!(id))
                .unwrap_or_else(|| panic!("no account {id}"));
            edit(account);
        });
    }

    pub fn data_path(&self) -> &Path {
        self.dir.path()
    }
}

/// Fails the test, naming the error, unless the run succeeded.
pub fn succeeded(outcome: &Outcome) {
    assert_eq!(
        outcome.record.status,
        zdsync_cli::asl::ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        outcome.record.error,
        outcome.record.cause
    );
}

/// The alliance partner of `fixture` (GitLab's Salesforce always has one, and the partner sync
/// needs its id): the generated one, or one added to a hand-made fixture.
pub fn alliance_partner(fixture: &mut Fixture) -> String {
    if let Some(id) = fixture
        .generated
        .as_ref()
        .map(|g| g.alliance_account_id.clone())
        .filter(|id| !id.is_empty())
    {
        return id;
    }
    let id = SalesforceId::parse("0014M00001sDiGE").unwrap().to_string();
    fixture
        .salesforce
        .objects
        .entry("Account".into())
        .or_default()
        .push(serde_json::json!({
            "Id": id, "Account_ID_18__c": id, "Name": "Alliance Partner Inc", "Type": "Partner",
            "Partners_Partner_Status__c": "Authorized", "Partner_Track__c": null,
            "Account_Owner_Calc__c": "Alliance Owner", "Support_Hold__c": false
        }));
    id
}

pub fn zendesk(instance: Instance) -> ZendeskInstance {
    match instance {
        Instance::Global => ZendeskInstance::Global,
        Instance::Usgov => ZendeskInstance::Usgov,
    }
}

/// Zendesk's state with everything a run cannot reproduce exactly left out: orgs keyed by
/// `salesforce_id` (by name when they have none), users by email, memberships as
/// (email, org key); record ids and timestamps dropped.
pub fn zendesk_end_state(sandbox: &Sandbox) -> Value {
    let mut state = serde_json::Map::new();
    for instance in Instance::ALL {
        let handle = sandbox.zendesk(zendesk(instance));
        let mut org_keys = BTreeMap::new();
        let mut orgs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for mut org in handle.organizations() {
            let key = match org["organization_fields"]["salesforce_id"].as_str() {
                Some(id) if !id.is_empty() => format!("salesforce_id {id}"),
                _ => format!("name {}", org["name"].as_str().unwrap_or_default()),
            };
            org_keys.insert(org["id"].clone().to_string(), key.clone());
            strip(&mut org);
            orgs.entry(key).or_default().push(org);
        }
        for same_key in orgs.values_mut() {
            same_key.sort_by_key(|org| org.to_string());
        }
        let org_key = |id: &Value| {
            org_keys
                .get(&id.to_string())
                .cloned()
                .map(Value::String)
                .unwrap_or(Value::Null)
        };
        let mut emails = BTreeMap::new();
        let mut users = BTreeMap::new();
        for mut user in handle.users() {
            let email = user["email"].as_str().unwrap_or_default().to_lowercase();
            emails.insert(user["id"].to_string(), email.clone());
            if let Some(org) = user.get("organization_id").cloned() {
                user["organization_id"] = org_key(&org);
            }
            strip(&mut user);
            users.insert(email, user);
        }
        let mut memberships: Vec<Value> = handle
            .organization_memberships()
            .into_iter()
            .map(|m| {
                json!({
                    "user": emails.get(&m["user_id"].to_string()),
                    "organization": org_key(&m["organization_id"]),
                    "default": m["default"],
                })
            })
            .collect();
        memberships.sort_by_key(|m| m.to_string());
        state.insert(
            instance.as_str().to_owned(),
            json!({"organizations": orgs, "users": users, "memberships": memberships}),
        );
    }
    Value::Object(state)
}

fn strip(record: &mut Value) {
    if let Some(object) = record.as_object_mut() {
        for key in ["id", "url", "created_at", "updated_at", "last_login_at"] {
            object.remove(key);
        }
    }
}

/// Where two JSON values first differ, as a path and both sides.
/// The first place where two JSON values differ (`left` is `a`, `right` is `b`).
pub fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|key| {
                let (left, right) = (x.get(key), y.get(key));
                match (left, right) {
                    (Some(l), Some(r)) => first_difference(l, r, &format!("{path}/{key}")),
                    _ => Some(format!("{path}/{key}: left {left:?}, right {right:?}")),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: left {a}, right {b}")),
    }
}

/// The run's `report.md`.
pub fn report_md(h: &Harness, run_id: &str) -> String {
    let path = h.data_path().join("runs").join(run_id).join("report.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks that every row of report.md's sync table holds the counts of `summary.json`, and
/// that there is a row exactly for each sync with a compare or sync stage in the summary. A
/// real run counts what each sync did (and compare's conflicts); a dry run what compare
/// would have it do. `–` is a stage that did not run.
pub fn assert_report_counts_are_the_summarys(
    report: &str,
    summary: &zdsync::model::RunSummary,
    dry_run: bool,
) {
    let rows: BTreeMap<&str, Vec<&str>> = report
        .lines()
        .skip_while(|l| !l.starts_with("| sync |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0], cells[1..].to_vec())
        })
        .collect();
    let mut expected_rows = 0;
    for sync in SyncKind::ALL {
        let compare = summary.stages.get(&format!("compare_{sync}"));
        let synced = summary.stages.get(&format!("sync_{sync}"));
        if compare.is_none() && synced.is_none() {
            assert!(
                !rows.contains_key(sync.label()),
                "{sync}: no stage ran, yet a row:\n{report}"
            );
            continue;
        }
        expected_rows += 1;
        let of = |stage: Option<&zdsync::model::StageSummary>, key: &str| {
            stage.map_or("–".to_owned(), |s| {
                s.counts.get(key).copied().unwrap_or(0).to_string()
            })
        };
        let mut expected = if dry_run {
            vec![
                of(compare, "creates"),
                of(compare, "updates"),
                of(compare, "marks"),
                of(synced, "errors"),
                of(compare, "held_back"),
            ]
        } else {
            vec![
                of(synced, "created"),
                of(synced, "updated"),
                of(synced, "marked"),
                of(synced, "errors"),
                of(synced, "held_back"),
            ]
        };
        expected.push(of(compare, "conflicts"));
        expected.push(if sync == SyncKind::Users {
            of(compare, "ambiguous_emails")
        } else {
            String::new()
        });
        let row = rows
            .get(sync.label())
            .unwrap_or_else(|| panic!("no row for {sync} in\n{report}"));
        assert_eq!(&row[..7], expected.as_slice(), "{sync}'s row in\n{report}");
    }
    assert_eq!(rows.len(), expected_rows, "{report}");
}
