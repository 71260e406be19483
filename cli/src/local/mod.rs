//! `zdsync run` / `redrive` / `stage`: the real state machine executed in-process, each Task
//! resolved to its stage, against either the in-process sandbox (the default) or the endpoints of
//! a configuration file.
//!
//! A run directory holds everything about one execution: the stage artifacts (the store's
//! `runs/{run_id}/…`), `execution.json` (the local execution history, which `redrive` resumes
//! from) and `local.json` (how the run was configured, so a redrive uses the same world).

mod invoker;
mod progress;
pub mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zdsync::error::StageError;
use zdsync::model::{RunFailure, RunStatus, RunSummary};
use zdsync::stages::{Executions, HowItEnded, RunningExecution, Stage, StageContext, artifacts};
use zdsync::store::{DirStore, RunKeys, read_json_opt};

use crate::asl::{
    self, ExecutionOptions, ExecutionRecord, ExecutionStatus, StateMachine, TaskInvoker,
};
pub use invoker::{CRASH_ERROR, CrashPlan, InProcessStages, deployed_stage};
pub use progress::{LogWriter, Progress};
pub use world::{World, WorldSpec};

/// The state machine definition every local run executes.
pub const SYNC_ASL: &str = include_str!("../../../statemachine/sync.asl.json");
/// The local stand-in for the deployed state machine's ARN.
pub const LOCAL_STATE_MACHINE_ARN: &str =
    "arn:aws:states:local:000000000000:stateMachine:zdsync-sync";

/// The `${…}` substitutions that point every Task at a local function ARN.
pub fn local_substitutions() -> BTreeMap<String, String> {
    Stage::ALL
        .iter()
        .map(|stage| {
            (
                stage.substitution().to_owned(),
                format!(
                    "arn:aws:lambda:local:000000000000:function:zdsync-{}",
                    stage.function_name()
                ),
            )
        })
        .collect()
}

pub fn sync_machine() -> anyhow::Result<StateMachine> {
    asl::load(SYNC_ASL, &local_substitutions())
        .map_err(|e| anyhow::anyhow!("statemachine/sync.asl.json: {e}"))
}

/// How a local run was configured; saved as `local.json` beside `execution.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalRunInfo {
    pub world: WorldSpec,
    pub started_at: DateTime<Utc>,
}

/// Where runs live: `<data_dir>/runs/<run_id>/`.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_id)
    }

    pub fn store(&self) -> Arc<DirStore> {
        Arc::new(DirStore::new(self.root.clone()))
    }

    fn file(&self, run_id: &str, name: &str) -> PathBuf {
        self.run_dir(run_id).join(name)
    }

    pub fn load_execution(&self, run_id: &str) -> anyhow::Result<ExecutionRecord> {
        read_file(&self.file(run_id, "execution.json"))
    }

    pub fn load_info(&self, run_id: &str) -> anyhow::Result<LocalRunInfo> {
        read_file(&self.file(run_id, "local.json"))
    }

    fn save<T: Serialize>(&self, run_id: &str, name: &str, value: &T) -> anyhow::Result<()> {
        let path = self.file(run_id, name);
        std::fs::create_dir_all(path.parent().expect("a run file has a directory"))?;
        let text = serde_json::to_string_pretty(value)?;
        let temp = path.with_extension("json.tmp");
        std::fs::write(&temp, text).with_context(|| format!("writing {}", temp.display()))?;
        std::fs::rename(&temp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// An exclusive lock on starting runs in this data directory (held while one run starts).
    fn starting_lock(&self) -> anyhow::Result<std::fs::File> {
        let runs = self.root.join("runs");
        std::fs::create_dir_all(&runs)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(runs.join(".starting.lock"))?;
        file.lock()
            .with_context(|| format!("locking {}", runs.display()))?;
        Ok(file)
    }

    /// Marks the run as executing in this process (read by the overlap guard of other runs).
    fn claim(&self, run_id: &str) -> anyhow::Result<RunningMarker> {
        let path = self.file(run_id, "RUNNING");
        std::fs::create_dir_all(path.parent().expect("run dir"))?;
        std::fs::write(&path, std::process::id().to_string())?;
        Ok(RunningMarker { path })
    }
}

fn read_file<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid record", path.display()))
}

/// Removes the RUNNING marker when the execution ends, however it ends.
struct RunningMarker {
    path: PathBuf,
}

impl Drop for RunningMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The overlap guard's view of local runs: run directories with a RUNNING marker whose process
/// is alive (a marker left by a killed process does not block later runs).
pub struct LocalExecutions {
    data: DataDir,
}

impl LocalExecutions {
    pub fn new(data: DataDir) -> LocalExecutions {
        LocalExecutions { data }
    }
}

#[async_trait]
impl Executions for LocalExecutions {
    /// The local executor waits for running Tasks before it fails an execution, so nothing is
    /// still running; the failed state is in the run's `execution.json`.
    async fn how_it_ended(&self, execution_arn: &str) -> Result<HowItEnded, StageError> {
        let run_id = execution_arn.rsplit(':').next().unwrap_or_default();
        let failed_state = self
            .data
            .load_execution(run_id)
            .ok()
            .and_then(|record| record.failed_states().first().map(|s| s.to_string()));
        Ok(HowItEnded {
            failed_state,
            running: Vec::new(),
        })
    }

    async fn running(&self, _state_machine_arn: &str) -> Result<Vec<RunningExecution>, StageError> {
        let runs = self.data.root.join("runs");
        let Ok(entries) = std::fs::read_dir(&runs) else {
            return Ok(Vec::new());
        };
        let mut running = Vec::new();
        for entry in entries.flatten() {
            let Ok(pid) = std::fs::read_to_string(entry.path().join("RUNNING")) else {
                continue;
            };
            if !process_alive(pid.trim()) {
                continue;
            }
            let run_id = entry.file_name().to_string_lossy().into_owned();
            if let Ok(record) = self.data.load_execution(&run_id)
                && let Ok(start) = record.start_time.parse::<DateTime<Utc>>()
            {
                running.push(RunningExecution {
                    execution_arn: record.execution_arn,
                    start,
                });
            }
        }
        Ok(running)
    }
}

fn process_alive(pid: &str) -> bool {
    match pid.parse::<u32>() {
        Ok(pid) if pid == std::process::id() => true,
        // Linux: a live process has /proc/<pid>. Elsewhere assume alive (safe side: skip).
        Ok(pid) if Path::new("/proc").exists() => Path::new(&format!("/proc/{pid}")).exists(),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// A finished local execution and where to read more.
pub struct Outcome {
    pub record: ExecutionRecord,
    pub summary: Option<RunSummary>,
    pub run_dir: PathBuf,
}

/// Options of `zdsync run`.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub run_id: String,
    pub as_of: NaiveDate,
    pub dry_run: bool,
    /// Gathers read every source in full, whatever their snapshots.
    pub full: bool,
    pub allow_deletions: BTreeMap<zdsync::model::SyncKind, usize>,
    pub retry_time_scale: f64,
    /// Tests: crash one stage after some of its writes (see [`CrashPlan`]).
    pub crash: Option<CrashPlan>,
}

/// Starts a new local execution of the state machine in `world`, each stage in-process.
pub async fn run(
    data: &DataDir,
    world: &World,
    request: &RunRequest,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let ctx = world.context(data)?.with_progress(progress.stage_sink());
    let mut invoker = InProcessStages::new(ctx);
    if let Some(plan) = request.crash {
        let sandbox = world
            .sandbox()
            .context("a crash plan needs the sandbox, which counts the writes")?;
        invoker = invoker.crashing(plan, sandbox.crash_switch());
    }
    run_with_invoker(data, world, request, &invoker, progress).await
}

/// Starts a new local execution whose Tasks `invoker` runs (the benchmark's: each stage a
/// Lambda function process).
pub async fn run_with_invoker(
    data: &DataDir,
    world: &World,
    request: &RunRequest,
    invoker: &dyn TaskInvoker,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    RunKeys::new(&request.run_id).map_err(|e| anyhow::anyhow!("--run-id: {e}"))?;
    if data
        .run_dir(&request.run_id)
        .join("execution.json")
        .exists()
    {
        bail!(
            "run {} already exists in {}; redrive it with `zdsync redrive {}` or pick another --run-id",
            request.run_id,
            data.root.display(),
            request.run_id
        );
    }
    let machine = sync_machine()?;
    let mut input = serde_json::Map::new();
    if request.dry_run {
        input.insert("dry_run".into(), Value::Bool(true));
    }
    if request.full {
        input.insert("full".into(), Value::Bool(true));
    }
    if !request.allow_deletions.is_empty() {
        input.insert(
            "allow_deletions".into(),
            serde_json::to_value(&request.allow_deletions)?,
        );
    }
    // The run date, as an execution option (the guard's default is the start date).
    input.insert("as_of".into(), Value::String(request.as_of.to_string()));
    // Starting is one step for all local runs of this data directory, as Step Functions
    // registers an execution before its first state: the start time is taken, the record and
    // the RUNNING marker written, under one lock. So the overlap guard of any later run sees
    // every older one, and of two runs started together exactly one goes on.
    let (record, _marker) = {
        let _starting = data.starting_lock()?;
        // The real start time: the syncs measure the execution's time budget from it.
        let start = Utc::now();
        let record = ExecutionRecord::new(
            LOCAL_STATE_MACHINE_ARN,
            &request.run_id,
            Value::Object(input),
            start,
        );
        data.save(
            &request.run_id,
            "local.json",
            &LocalRunInfo {
                world: world.spec().clone(),
                started_at: Utc::now(),
            },
        )?;
        data.save(&request.run_id, "execution.json", &record)?;
        (record, data.claim(&request.run_id)?)
    };

    let options = ExecutionOptions {
        retry_time_scale: request.retry_time_scale,
        checkpoint: Some(checkpoint(data)),
    };
    let record = asl::start(&machine, record, invoker, progress, options).await;
    finish(data, world, record).await
}

/// Saves `execution.json` as each state ends, so a run whose process is killed can be redriven
/// from the states that finished.
fn checkpoint(data: &DataDir) -> asl::Checkpoint {
    let data = data.clone();
    Arc::new(move |record: &ExecutionRecord| {
        if let Err(e) = data.save(&record.name, "execution.json", record) {
            tracing::warn!(error = %e, "could not save the execution history");
        }
    })
}

/// Redrives a failed local execution from its failed states, in the world it ran in.
pub async fn redrive(
    data: &DataDir,
    world: &World,
    run_id: &str,
    retry_time_scale: f64,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let mut record = data.load_execution(run_id)?;
    if record.status == ExecutionStatus::Running {
        // Still RUNNING on record: either its process is at work, or it was killed.
        let marker = data.file(run_id, "RUNNING");
        if let Ok(pid) = std::fs::read_to_string(&marker)
            && process_alive(pid.trim())
        {
            bail!(
                "run {run_id} is still running (process {}); it cannot be redriven",
                pid.trim()
            );
        }
        record.status = ExecutionStatus::Aborted;
        record.error = Some("ExecutionAborted".into());
        record.cause =
            Some("the zdsync process running it ended before the execution did (killed?)".into());
    }
    let machine = sync_machine()?;
    let _marker = data.claim(run_id)?;
    let ctx = world.context(data)?.with_progress(progress.stage_sink());
    let invoker = InProcessStages::new(ctx);
    let options = ExecutionOptions {
        retry_time_scale,
        checkpoint: Some(checkpoint(data)),
    };
    let record = asl::redrive(&machine, record, &invoker, progress, options)
        .await
        .map_err(anyhow::Error::msg)?;
    finish(data, world, record).await
}

async fn finish(data: &DataDir, world: &World, record: ExecutionRecord) -> anyhow::Result<Outcome> {
    data.save(&record.name, "execution.json", &record)?;
    if record.status != ExecutionStatus::Succeeded {
        // What the EventBridge rule does in AWS: the summary and the alert of a stopped run.
        summarize_failure(data, world, &record).await;
    }
    world.save().await?;
    let store = data.store();
    let summary_key = RunKeys::new(&record.name)?.key(artifacts::SUMMARY)?;
    let summary = read_json_opt(store.as_ref(), &summary_key).await?;
    Ok(Outcome {
        run_dir: data.run_dir(&record.name),
        record,
        summary,
    })
}

/// Runs the summarize stage for an execution that did not succeed. Its own failure (a broken
/// store, say) is reported, and does not hide the execution's.
async fn summarize_failure(data: &DataDir, world: &World, record: &ExecutionRecord) {
    let status = match record.status {
        ExecutionStatus::TimedOut => RunStatus::TimedOut,
        ExecutionStatus::Aborted => RunStatus::Aborted,
        _ => RunStatus::Failed,
    };
    let failure = RunFailure {
        status,
        state: record.failed_states().first().map(|s| s.to_string()),
        error: record.error.clone().unwrap_or_else(|| "Failed".into()),
        cause: record.cause.clone().unwrap_or_default(),
        running: Vec::new(),
    };
    let as_of = record
        .input
        .get("as_of")
        .and_then(Value::as_str)
        .and_then(|d| d.parse::<NaiveDate>().ok())
        .or_else(|| {
            record
                .start_time
                .parse::<DateTime<Utc>>()
                .ok()
                .map(|t| t.date_naive())
        })
        .unwrap_or_else(|| Utc::now().date_naive());
    // A stopped dry run's report still says what the syncs would have done.
    let dry_run = record.input.get("dry_run").and_then(Value::as_bool) == Some(true);
    let input = serde_json::json!({"run_id": record.name, "as_of": as_of, "dry_run": dry_run, "failure": failure});
    let summarized = match world.context(data) {
        Ok(ctx) => zdsync::stages::run(Stage::Summarize, &ctx, input)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", e.name())),
        Err(e) => Err(e),
    };
    if let Err(e) = summarized {
        tracing::error!(error = %e, run = %record.name, "the failed run's summary could not be written");
    }
}

/// `zdsync stage`: one stage, outside the state machine, with an explicit input.
pub async fn run_stage(
    data: &DataDir,
    world: &World,
    stage: Stage,
    input: Value,
) -> Result<Value, StageError> {
    let ctx: StageContext = world
        .context(data)
        .map_err(|e| StageError::InvalidConfig(format!("{e:#}")))?;
    let result = zdsync::stages::run(stage, &ctx, input).await;
    if let Err(e) = world.save().await {
        tracing::warn!(error = %e, "could not save the sandbox state");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local executor and the ASL agree: every Task resolves to a stage, every stage is
    /// used, every substitution is provided, and every state is reachable.
    #[test]
    fn every_task_of_the_definition_resolves_to_a_stage() {
        let machine = sync_machine().unwrap();
        let resolved: Vec<Stage> = machine
            .task_resources()
            .iter()
            .map(|resource| {
                Stage::from_function(resource)
                    .unwrap_or_else(|| panic!("{resource} resolves to no stage"))
            })
            .collect();
        for stage in Stage::ALL {
            assert!(
                resolved.contains(&stage),
                "the state machine never runs {stage}"
            );
        }
        assert_eq!(machine.unreachable_states(), Vec::<String>::new());
        let needed = asl::placeholders(SYNC_ASL);
        let provided: std::collections::BTreeSet<String> =
            local_substitutions().into_keys().collect();
        assert_eq!(needed, provided);
    }

    #[test]
    fn function_names_and_arns_resolve_to_their_stage() {
        for stage in Stage::ALL {
            let name = format!("zdsync-{}", stage.function_name());
            assert_eq!(Stage::from_function(&name), Some(stage));
            assert_eq!(Stage::from_function(stage.function_name()), Some(stage));
            let arn = format!("arn:aws:lambda:eu-west-1:123456789012:function:prod-{name}:live");
            assert_eq!(Stage::from_function(&arn), Some(stage), "{arn}");
        }
        assert_eq!(Stage::from_function("zdsync-nothing"), None);
    }
}
