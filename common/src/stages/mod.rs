//! The stages of a run (SPEC §2): each reads artifacts, applies `rules`, calls the APIs it needs
//! and writes its artifacts. Lambda binaries, the local executor and tests all call [`run`]; only
//! the way the [`StageContext`] is built differs.
//!
//! Inputs and outputs are small JSON objects (ids, dates, keys and counts): Step Functions caps a
//! payload at 256 KB, and the data lives in the artifact store.

pub mod artifacts;
mod compare;
mod context;
mod gather_accounts;
mod gather_contacts;
mod gather_orgs;
mod gather_users;
mod guard;
pub(crate) mod process;
pub mod report;
pub mod summarize;
mod sync;

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use context::{Executions, HowItEnded, RunningExecution, StageContext};
pub use guard::{GuardInput, GuardOutput, RunOptions};
pub use summarize::latest_run;

use crate::config::SecretKind;
use crate::error::StageError;
use crate::model::{Instance, SyncKind};
use crate::store::{RunKeys, StoreError};

/// The Lambda functions of the state machine, one per stage. Stages that serve several syncs
/// (gather accounts and orgs, compare, sync) take the instance or the sync from their input
/// rather than having one function each: one mechanism, parameterised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Guard,
    GatherAccounts,
    GatherOrgs,
    Process,
    Compare,
    Sync,
    GatherUsers,
    GatherContacts,
    Summarize,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Guard,
        Stage::GatherAccounts,
        Stage::GatherOrgs,
        Stage::Process,
        Stage::Compare,
        Stage::Sync,
        Stage::GatherUsers,
        Stage::GatherContacts,
        Stage::Summarize,
    ];

    /// The function's short name: the `functions/<name>/` binary and the Lambda function name
    /// suffix (`zdsync-<name>`).
    pub fn function_name(self) -> &'static str {
        match self {
            Stage::Guard => "guard",
            Stage::GatherAccounts => "gather-accounts",
            Stage::GatherOrgs => "gather-orgs",
            Stage::Process => "process",
            Stage::Compare => "compare",
            Stage::Sync => "sync",
            Stage::GatherUsers => "gather-users",
            Stage::GatherContacts => "gather-contacts",
            Stage::Summarize => "summarize",
        }
    }

    /// The `${…}` definition substitution holding the function's ARN in the ASL.
    pub fn substitution(self) -> &'static str {
        match self {
            Stage::Guard => "GuardFunctionArn",
            Stage::GatherAccounts => "GatherAccountsFunctionArn",
            Stage::GatherOrgs => "GatherOrgsFunctionArn",
            Stage::Process => "ProcessFunctionArn",
            Stage::Compare => "CompareFunctionArn",
            Stage::Sync => "SyncFunctionArn",
            Stage::GatherUsers => "GatherUsersFunctionArn",
            Stage::GatherContacts => "GatherContactsFunctionArn",
            Stage::Summarize => "SummarizeFunctionArn",
        }
    }

    /// The stage of a function name or ARN (`zdsync-sync`, `arn:…:function:zdsync-sync`,
    /// `sync`; a deployment may prefix the name, e.g. `prod-zdsync-sync`).
    pub fn from_function(name_or_arn: &str) -> Option<Stage> {
        let name = name_or_arn
            .split(":function:")
            .nth(1)
            .unwrap_or(name_or_arn)
            .split(':') // a qualifier (version or alias)
            .next()
            .unwrap_or_default();
        Stage::ALL
            .into_iter()
            .filter(|stage| {
                name == stage.function_name()
                    || name.ends_with(&format!("zdsync-{}", stage.function_name()))
            })
            .max_by_key(|stage| stage.function_name().len())
    }

    /// What the stage needs from the outside world, checked when a function starts.
    pub fn needs(self) -> Needs {
        let none = Needs::default();
        match self {
            Stage::Guard => Needs {
                executions: true,
                ..none
            },
            Stage::GatherAccounts | Stage::GatherContacts => Needs {
                salesforce: true,
                ..none
            },
            Stage::GatherOrgs => Needs {
                zendesk: &Instance::ALL,
                ..none
            },
            // The user sync is US Gov's alone: its function never holds the Global token.
            Stage::GatherUsers => Needs {
                zendesk: &[Instance::Usgov],
                ..none
            },
            Stage::Process => Needs { http: true, ..none },
            Stage::Compare => none,
            // A failed run's summary names the failed state (from the execution's history)
            // and posts the alert.
            Stage::Summarize => Needs {
                slack: true,
                executions: true,
                ..none
            },
            // A redriven sync checks that no other execution is running before it writes.
            Stage::Sync => Needs {
                zendesk: &Instance::ALL,
                slack: true,
                executions: true,
                ..none
            },
        }
    }

    /// The secrets the stage's function reads at cold start (and so the only ones its role may
    /// read: `tests/infra.rs` checks the template against this).
    pub fn secrets(self) -> Vec<SecretKind> {
        let needs = self.needs();
        let mut kinds = Vec::new();
        if needs.salesforce {
            kinds.push(SecretKind::Salesforce);
        }
        kinds.extend(needs.zendesk.iter().copied().map(SecretKind::Zendesk));
        if needs.slack {
            kinds.push(SecretKind::Slack);
        }
        // The overrides file may come from a private project, which serves it with a token.
        if needs.http {
            kinds.push(SecretKind::Overrides);
        }
        kinds
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.function_name())
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::from_function(s).ok_or_else(|| {
            let names: Vec<&str> = Stage::ALL.iter().map(|s| s.function_name()).collect();
            format!("unknown stage {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// Ports a stage uses. Slack is optional even when wanted (SPEC §8: no webhook → warn only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub salesforce: bool,
    /// The Zendesk instances whose client (and token) the stage needs.
    pub zendesk: &'static [Instance],
    pub slack: bool,
    pub executions: bool,
    /// Plain HTTP(S) for fetching the overrides file from a URL.
    pub http: bool,
}

/// The input every stage after the guard receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    pub run_id: String,
    pub as_of: NaiveDate,
    /// The instance of a per-instance stage; alone, it names that instance's org sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
    /// The sync a gather, compare or sync stage works for (`partners`, `users`, or an org
    /// sync); its instance follows from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncKind>,
    /// Sync only: the operator's per-sync allowance for the deletion guard.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allow_deletions: BTreeMap<SyncKind, usize>,
    /// Sync only: the execution as Step Functions describes it (`$$.Execution`): when it
    /// started and whether and when it was redriven, which with `sync.execution_budget_secs`
    /// bounds the work this attempt may still start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionContext>,
    /// Sync only: the state machine (`$$.StateMachine.Id`), whose other running executions a
    /// redriven sync must not write beside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_arn: Option<String>,
    /// The part of the Zendesk instance's share this stage may use, when the state machine runs
    /// it beside another stage calling the same instance (read by `run_measured`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zendesk_share: Option<f64>,
}

/// The execution part of Step Functions' context object (`$$.Execution`); its other fields
/// (`Input`, `Name`, `RoleArn`) are not read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecutionContext {
    /// The execution's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When it started; a redrive keeps it (so `as_of` stays the original's).
    pub start_time: chrono::DateTime<chrono::Utc>,
    /// 0 for the first attempt; each redrive adds one.
    #[serde(default)]
    pub redrive_count: u32,
    /// When it was last redriven (only present on a redriven execution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl ExecutionContext {
    /// When this attempt began: a redriven execution gets a fresh budget, counted from the
    /// redrive (SPEC §8), not from the original start hours before.
    pub fn attempt_started(&self) -> chrono::DateTime<chrono::Utc> {
        self.redrive_time.unwrap_or(self.start_time)
    }

    pub fn is_redriven(&self) -> bool {
        self.redrive_count > 0
    }
}

impl RunInput {
    fn keys(&self) -> Result<RunKeys, StageError> {
        RunKeys::new(&self.run_id)
            .map_err(|e| StageError::InvalidConfig(format!("stage input: {e}")))
    }

    /// The sync this invocation works for: `sync`, or the org sync of `instance`. Both given
    /// must agree (`{"sync": "users", "instance": "global"}` is a mistake, not a choice).
    fn sync(&self, stage: Stage) -> Result<SyncKind, StageError> {
        match (self.sync, self.instance) {
            (Some(sync), None) => Ok(sync),
            (Some(sync), Some(instance)) if sync.instance() == instance => Ok(sync),
            (Some(sync), Some(instance)) => Err(StageError::InvalidConfig(format!(
                "stage input: the {sync} sync writes to {}, not {instance}",
                sync.instance()
            ))),
            (None, Some(instance)) => Ok(SyncKind::orgs(instance)),
            (None, None) => Err(StageError::InvalidConfig(format!(
                "stage input: the {stage} stage needs \"instance\" or \"sync\""
            ))),
        }
    }
}

/// What every stage returns: small, for the state machine and the progress display.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageOutput {
    pub stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
    pub counts: BTreeMap<String, u64>,
    /// Artifact keys written.
    pub artifacts: Vec<String>,
    /// Sync only: work is left for another invocation of this stage in this run (the state
    /// machine loops back); `false` when the sync is done for this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
}

impl StageOutput {
    fn new(stage: Stage, instance: Option<Instance>) -> StageOutput {
        StageOutput {
            stage: stage.function_name().to_owned(),
            instance,
            ..StageOutput::default()
        }
    }

    fn count(mut self, name: &str, value: usize) -> Self {
        self.counts.insert(name.to_owned(), value as u64);
        self
    }

    fn with_artifact(mut self, key: String) -> Self {
        self.artifacts.push(key);
        self
    }
}

/// Runs one stage with its JSON input and returns its JSON output. Every stage of a run but the
/// guard and the summary also leaves `stages/{stage}[-{sync}].json`: its counts, its API calls
/// (with retries) and its time, or its error — what the summary reports of it.
pub async fn run(stage: Stage, ctx: &StageContext, input: Value) -> Result<Value, StageError> {
    run_measured(stage, ctx, input).await.0
}

/// [`run`], also answering the stats it wrote (none for the guard and the summary) and the
/// sync they are of — what the Lambda handler turns into metrics.
pub async fn run_measured(
    stage: Stage,
    ctx: &StageContext,
    input: Value,
) -> (
    Result<Value, StageError>,
    Option<(Option<String>, StageStats)>,
) {
    let started = std::time::Instant::now();
    let stats_name = StageStats::artifact_name(stage, &input);
    let which = StageStats::sync_of(stage, &input);
    let label = crate::progress::stage_label(stage.function_name(), which.as_deref());
    // On the heap: the stages' futures are large, and each scope around them would otherwise
    // add another copy to the stack of whoever polls them.
    // A stage the state machine runs beside another calling the same Zendesk instance from
    // another process takes its part of the instance's share (`zendesk_share`).
    let share = match zendesk_share(stage, &input) {
        Ok(share) => share,
        Err(e) => return (Err(e), None),
    };
    let stage_run = Box::pin(crate::zendesk::with_share(
        share,
        dispatch(stage, ctx, input),
    ));
    let reporting = crate::progress::in_stage(ctx.progress.clone(), label, stage_run);
    let (result, io) = crate::calls::in_stage(reporting).await;
    let mut measured = None;
    if let Some((run_id, name)) = stats_name {
        let mut stats = StageStats {
            stage: stage.function_name().to_owned(),
            seconds: started.elapsed().as_secs_f64(),
            counts: result
                .as_ref()
                .ok()
                .and_then(|output| output.get("counts"))
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default(),
            calls: io.calls,
            artifacts: io.artifacts,
            error: result.as_ref().err().map(|e| e.name().to_owned()),
        };
        let written = match RunKeys::new(&run_id).and_then(|keys| keys.key(&name)) {
            Ok(key) => {
                // A sync continued over several invocations: its stats are their sum.
                if stats.counts.get("invocations").is_some_and(|&n| n > 1)
                    && let Ok(Some(earlier)) =
                        crate::store::read_json_opt::<StageStats>(ctx.store.as_ref(), &key).await
                {
                    stats.add_earlier(&earlier);
                }
                crate::store::write_json(ctx.store.as_ref(), &key, &stats)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, %stage, "the stage's stats could not be written");
        }
        measured = Some((which, stats));
    }
    (result, measured)
}

/// `stages/{name}.json`: what one stage did, for the run summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    pub stage: String,
    pub seconds: f64,
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    #[serde(default)]
    pub calls: crate::calls::CallStats,
    /// The artifacts it read and wrote, with their sizes.
    #[serde(default)]
    pub artifacts: crate::calls::ArtifactIo,
    /// The stage's error name, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StageStats {
    /// Folds in an earlier invocation's stats of the same stage and run.
    fn add_earlier(&mut self, earlier: &StageStats) {
        self.seconds += earlier.seconds;
        self.calls.add(&earlier.calls);
        for (key, bytes) in &earlier.artifacts.read {
            *self.artifacts.read.entry(key.clone()).or_default() += bytes;
        }
        for (key, bytes) in &earlier.artifacts.written {
            *self.artifacts.written.entry(key.clone()).or_default() += bytes;
        }
    }

    /// The sync (or instance) a stage that serves several works for in this invocation.
    fn sync_of(stage: Stage, input: &Value) -> Option<String> {
        let serves_several = matches!(
            stage,
            Stage::GatherAccounts | Stage::GatherOrgs | Stage::Compare | Stage::Sync
        );
        input
            .get("sync")
            .or_else(|| input.get("instance"))
            .and_then(Value::as_str)
            .filter(|w| serves_several && w.chars().all(|c| c.is_ascii_lowercase()))
            .map(str::to_owned)
    }

    /// What one invocation's stats are named by: `sync-partners`, `gather-orgs-global`,
    /// `process` (the stages that serve several syncs carry theirs).
    pub fn label(stage: Stage, input: &Value) -> String {
        match Self::sync_of(stage, input) {
            Some(which) => format!("{}-{which}", stage.function_name()),
            None => stage.function_name().to_owned(),
        }
    }

    /// The run and the artifact a stage's stats go to: `stages/sync-partners.json`,
    /// `stages/gather-orgs-global.json`, `stages/process.json`. None for the guard (it has no
    /// run yet) and the summary (which reads them).
    fn artifact_name(stage: Stage, input: &Value) -> Option<(String, String)> {
        if matches!(stage, Stage::Guard | Stage::Summarize) {
            return None;
        }
        let run_id = input.get("run_id")?.as_str()?.to_owned();
        let name = format!(
            "{}{}.json",
            artifacts::STAGE_STATS,
            Self::label(stage, input)
        );
        Some((run_id, name))
    }
}

/// The part of each Zendesk client's share a stage may use: its input's `zendesk_share`
/// (0 < share ≤ 1), else all of it.
fn zendesk_share(stage: Stage, input: &Value) -> Result<f64, StageError> {
    match input.get("zendesk_share") {
        None | Some(Value::Null) => Ok(1.0),
        Some(value) => value
            .as_f64()
            .filter(|share| *share > 0.0 && *share <= 1.0)
            .ok_or_else(|| {
                StageError::InvalidConfig(format!(
                    "the {stage} stage's input is invalid at zendesk_share: {value} is not a fraction above 0 and at most 1"
                ))
            }),
    }
}

async fn dispatch(stage: Stage, ctx: &StageContext, input: Value) -> Result<Value, StageError> {
    let output = match stage {
        Stage::Guard => {
            return guard::run(ctx, parse_input(stage, input)?)
                .await
                .map(to_value);
        }
        Stage::GatherAccounts => gather_accounts::run(ctx, parse_input(stage, input)?).await?,
        Stage::GatherOrgs => gather_orgs::run(ctx, parse_input(stage, input)?).await?,
        Stage::Process => process::run(ctx, parse_input(stage, input)?).await?,
        Stage::Compare => compare::run(ctx, parse_input(stage, input)?).await?,
        Stage::Sync => sync::run(ctx, parse_input(stage, input)?).await?,
        Stage::GatherUsers => gather_users::run(ctx, parse_input(stage, input)?).await?,
        Stage::GatherContacts => gather_contacts::run(ctx, parse_input(stage, input)?).await?,
        Stage::Summarize => summarize::run(ctx, summarize::input(ctx, input).await?).await?,
    };
    Ok(to_value(output))
}

fn to_value<T: Serialize>(value: T) -> Value {
    serde_json::to_value(value).expect("stage outputs are plain data")
}

fn parse_input<T: DeserializeOwned>(stage: Stage, input: Value) -> Result<T, StageError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        StageError::InvalidConfig(format!(
            "the {stage} stage's input is invalid at {}: {}",
            e.path(),
            e.inner()
        ))
    })
}

/// Store failures as the state machine sees them: a missing or corrupt artifact is
/// `InvalidArtifact` (a redrive of the same stage cannot fix it), an outage is `Retryable`.
impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidArtifact { key, path, message } => {
                StageError::InvalidArtifact { key, path, message }
            }
            StoreError::Missing { key } => StageError::InvalidArtifact {
                key,
                path: ".".into(),
                message: "the artifact does not exist; did an earlier stage of this run fail?"
                    .into(),
            },
            e if e.is_retryable() => StageError::Retryable(e.to_string()),
            e => StageError::InvalidConfig(e.to_string()),
        }
    }
}

impl From<crate::salesforce::SalesforceError> for StageError {
    fn from(e: crate::salesforce::SalesforceError) -> Self {
        use crate::salesforce::SalesforceError as E;
        match e {
            E::AuthFailed { .. } => StageError::AuthFailed(e.to_string()),
            e if e.is_retryable() => StageError::Retryable(e.to_string()),
            // Expired cursors: a fresh query in a retried stage starts over.
            E::InvalidQueryLocator { .. } => StageError::Retryable(e.to_string()),
            // The query or the org's schema does not match the configuration (API version,
            // fields): nothing a retry changes.
            e => StageError::InvalidConfig(e.to_string()),
        }
    }
}

impl From<crate::zendesk::ZendeskError> for StageError {
    fn from(e: crate::zendesk::ZendeskError) -> Self {
        use crate::zendesk::ZendeskError as E;
        match e {
            // 401, or 403 on an endpoint the sync must use: the credentials or their role.
            E::AuthFailed { .. } | E::Forbidden { .. } => StageError::AuthFailed(e.to_string()),
            e if e.is_retryable() => StageError::Retryable(e.to_string()),
            // A wrong base URL, or Zendesk refusing what the sync sends: nothing a retry fixes.
            e => StageError::InvalidConfig(e.to_string()),
        }
    }
}

/// Reads an artifact of this run.
async fn read<T: DeserializeOwned>(
    ctx: &StageContext,
    keys: &RunKeys,
    name: &str,
) -> Result<T, StageError> {
    let key = keys.key(name)?;
    Ok(crate::store::read_json(ctx.store.as_ref(), &key).await?)
}

/// Reads an artifact of this run that may not exist.
async fn read_opt<T: DeserializeOwned>(
    ctx: &StageContext,
    keys: &RunKeys,
    name: &str,
) -> Result<Option<T>, StageError> {
    let key = keys.key(name)?;
    Ok(crate::store::read_json_opt(ctx.store.as_ref(), &key).await?)
}

/// Writes an artifact of this run and returns its key.
async fn write<T: Serialize>(
    ctx: &StageContext,
    keys: &RunKeys,
    name: &str,
    value: &T,
) -> Result<String, StageError> {
    let key = keys.key(name)?;
    crate::store::write_json(ctx.store.as_ref(), &key, value).await?;
    Ok(key)
}

/// Records an operator's deletion allowance for a redrive of `run_id` (merged into any earlier
/// one: the larger allowance of a sync wins). The redriven sync reads it beside its input's.
pub async fn allow_deletions(
    store: &dyn crate::store::ArtifactStore,
    run_id: &str,
    allowances: &BTreeMap<SyncKind, usize>,
) -> Result<String, StageError> {
    let key = RunKeys::new(run_id)
        .and_then(|keys| keys.key(artifacts::ALLOW_DELETIONS))
        .map_err(|e| StageError::InvalidConfig(e.to_string()))?;
    let mut merged: BTreeMap<SyncKind, usize> = crate::store::read_json_opt(store, &key)
        .await?
        .unwrap_or_default();
    for (sync, n) in allowances {
        let entry = merged.entry(*sync).or_default();
        *entry = (*entry).max(*n);
    }
    crate::store::write_json(store, &key, &merged).await?;
    Ok(key)
}

/// Maps every record a Zendesk list returned. One the sync cannot read fails the stage, and not
/// as `Retryable`: the same page comes back the same way.
fn zendesk_records<T>(
    instance: Instance,
    what: &str,
    raw: Vec<serde_json::Map<String, Value>>,
    from_api: impl Fn(serde_json::Map<String, Value>) -> Result<T, String>,
) -> Result<Vec<T>, StageError> {
    raw.into_iter()
        .map(from_api)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            StageError::InvalidConfig(format!(
                "Zendesk {instance} returned {what} the sync cannot read: {e}"
            ))
        })
}

/// An artifact whose `path` (its instance or sync) is not the one this stage works for: as bad
/// as a corrupt file.
fn expect_same<T: PartialEq + fmt::Display>(
    keys: &RunKeys,
    name: &str,
    path: &str,
    expected: T,
    found: T,
) -> Result<(), StageError> {
    if expected == found {
        return Ok(());
    }
    Err(mismatch(
        &keys.key(name)?,
        path,
        format!("expected {expected}, found {found}"),
    ))
}

/// An artifact field that does not belong to this run or instance: as bad as a corrupt file.
fn mismatch(key: &str, path: &str, message: String) -> StageError {
    StageError::InvalidArtifact {
        key: key.to_owned(),
        path: path.to_owned(),
        message,
    }
}
