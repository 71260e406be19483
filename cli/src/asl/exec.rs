//! Runs a [`StateMachine`] the way Step Functions does: input/output processing per state,
//! Retry with backoff, Parallel branches run concurrently, a machine-level timeout, and an
//! execution record that a redrive resumes from.
//!
//! The machine's `TimeoutSeconds` stops the execution as Step Functions stops it: no state
//! starts after it, a Task already running runs to its end (a Lambda invocation goes on after
//! its execution timed out, and writes its artifacts) and is recorded `Aborted`, and then the
//! execution is `TIMED_OUT`. A redrive runs the aborted Tasks again.
//!
//! When a branch fails, its siblings stop as Step Functions stops them: a Task already running
//! runs to completion (a Lambda invocation is not interrupted, and its artifacts are written),
//! but it is recorded `Aborted`, its result discarded, as Step Functions records a state of a
//! stopped branch; no further state of the sibling starts and no retry of it is attempted. The
//! Parallel then fails with the failed branch's error.
//!
//! Redrive mirrors Step Functions': the execution keeps its name, input and start time; states
//! that succeeded are not run again (their recorded output is replayed), and the failed and
//! aborted states — inside a Parallel, only in the branches that did not succeed — run again,
//! with the states after them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::{BoxFuture, FutureExt, join_all};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::definition::{CompareOp, Condition, Retrier, State, StateKind, StateMachine};
use super::{ExecError, path};

/// Runs the Lambda a Task names (`Resource`) with its input.
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, ExecError>;
}

/// Progress events, for the CLI's per-state display.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Entered {
        path: String,
    },
    Succeeded {
        path: String,
        replayed: bool,
        elapsed: Duration,
        /// A Task's own result (before ResultSelector/ResultPath), else the state's output: for
        /// the progress line.
        result: Value,
    },
    Failed {
        path: String,
        error: String,
        cause: String,
    },
    /// Stopped from outside while it ran (a sibling branch failed, the execution timed out): a
    /// Task ran to its end, its result is discarded and a redrive runs it again.
    Aborted {
        path: String,
        error: String,
        cause: String,
    },
    Retrying {
        path: String,
        error: String,
        attempt: u32,
        delay: Duration,
    },
}

pub trait Observer: Send + Sync {
    fn on_event(&self, event: &Event);
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {
    fn on_event(&self, _: &Event) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    /// Stopped from outside: locally, the process running it ended without finishing.
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateStatus {
    Succeeded,
    Failed,
    /// Stopped from outside while it ran: a sibling branch failed or the execution timed out.
    /// A Task ran to its end (a Lambda invocation is not interrupted), but its result was
    /// discarded, as Step Functions discards it: a redrive runs the state again.
    Aborted,
}

/// The history of one state (by its path: `Instances[1].SyncUsgov`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    pub status: StateStatus,
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The transition taken (for a replayed Choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub attempts: u32,
    pub entered_at: String,
    pub exited_at: String,
}

/// What `execution.json` holds: enough to show, audit and redrive an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub name: String,
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub input: Value,
    pub start_time: String,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub redrive_count: u32,
    /// When it was last redriven (Step Functions' `RedriveTime`); none before a redrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_time: Option<String>,
    pub states: BTreeMap<String, StateRecord>,
}

impl ExecutionRecord {
    pub fn new(
        state_machine_arn: &str,
        name: &str,
        input: Value,
        start_time: DateTime<Utc>,
    ) -> ExecutionRecord {
        let prefix = state_machine_arn.replacen(":stateMachine:", ":execution:", 1);
        let execution_arn = if prefix == state_machine_arn {
            format!("{state_machine_arn}:{name}")
        } else {
            format!("{prefix}:{name}")
        };
        ExecutionRecord {
            name: name.to_owned(),
            execution_arn,
            state_machine_arn: state_machine_arn.to_owned(),
            input,
            start_time: start_time.to_rfc3339_opts(SecondsFormat::Millis, true),
            status: ExecutionStatus::Running,
            output: None,
            error: None,
            cause: None,
            redrive_count: 0,
            redrive_time: None,
            states: BTreeMap::new(),
        }
    }

    /// The states that failed, innermost first as Step Functions lists them.
    pub fn failed_states(&self) -> Vec<&str> {
        let mut failed: Vec<&str> = self
            .states
            .iter()
            .filter(|(_, r)| r.status == StateStatus::Failed)
            .map(|(path, _)| path.as_str())
            .collect();
        failed.sort_by_key(|p| std::cmp::Reverse(p.len()));
        failed
    }

    /// The states stopped while they ran (their Tasks finished, their results discarded),
    /// innermost first: a redrive runs them again.
    pub fn aborted_states(&self) -> Vec<&str> {
        let mut aborted: Vec<&str> = self
            .states
            .iter()
            .filter(|(_, r)| r.status == StateStatus::Aborted)
            .map(|(path, _)| path.as_str())
            .collect();
        aborted.sort_by_key(|p| std::cmp::Reverse(p.len()));
        aborted
    }
}

/// Called with the execution record each time a state ends, so the history survives the
/// process running it (a local run that is killed can be redriven from where it was).
pub type Checkpoint = Arc<dyn Fn(&ExecutionRecord) + Send + Sync>;

#[derive(Clone)]
pub struct ExecutionOptions {
    /// Multiplies Retry delays; 1.0 is real time (tests use a small factor).
    pub retry_time_scale: f64,
    pub checkpoint: Option<Checkpoint>,
}

impl Default for ExecutionOptions {
    fn default() -> Self {
        ExecutionOptions {
            retry_time_scale: 1.0,
            checkpoint: None,
        }
    }
}

/// The error of a branch stopped because a sibling failed: never the Parallel's own error.
const BRANCH_ABORTED: &str = "States.BranchAborted";

/// The error of an execution that ran past the machine's `TimeoutSeconds`, and of the states
/// it stopped.
const TIMED_OUT: &str = "States.Timeout";

/// Starts a new execution and runs it to the end.
pub async fn start(
    machine: &StateMachine,
    record: ExecutionRecord,
    invoker: &dyn TaskInvoker,
    observer: &dyn Observer,
    options: ExecutionOptions,
) -> ExecutionRecord {
    run(machine, record, BTreeMap::new(), invoker, observer, options).await
}

/// Redrives a failed or timed-out execution: succeeded states are replayed, the rest re-run.
pub async fn redrive(
    machine: &StateMachine,
    mut record: ExecutionRecord,
    invoker: &dyn TaskInvoker,
    observer: &dyn Observer,
    options: ExecutionOptions,
) -> Result<ExecutionRecord, String> {
    match record.status {
        ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted => {}
        status => {
            return Err(format!(
                "execution {} is {status:?}; only FAILED, TIMED_OUT or ABORTED executions can be redriven",
                record.name
            ));
        }
    }
    let replay: BTreeMap<String, StateRecord> = record
        .states
        .iter()
        .filter(|(_, r)| r.status == StateStatus::Succeeded)
        .map(|(p, r)| (p.clone(), r.clone()))
        .collect();
    record.redrive_count += 1;
    record.redrive_time = Some(now_string());
    record.status = ExecutionStatus::Running;
    record.error = None;
    record.cause = None;
    record.output = None;
    record
        .states
        .retain(|_, r| r.status == StateStatus::Succeeded);
    Ok(run(machine, record, replay, invoker, observer, options).await)
}

async fn run(
    machine: &StateMachine,
    record: ExecutionRecord,
    replay: BTreeMap<String, StateRecord>,
    invoker: &dyn TaskInvoker,
    observer: &dyn Observer,
    options: ExecutionOptions,
) -> ExecutionRecord {
    let input = record.input.clone();
    let mut execution = json!({
        "Id": record.execution_arn,
        "Name": record.name,
        "StartTime": record.start_time,
        "Input": record.input,
        "RedriveCount": record.redrive_count,
    });
    // As in Step Functions, RedriveTime is there only once the execution was redriven.
    if let Some(redriven) = &record.redrive_time {
        execution["RedriveTime"] = json!(redriven);
    }
    let context = json!({
        "Execution": execution,
        "StateMachine": {
            "Id": record.state_machine_arn,
            "Name": record.state_machine_arn.rsplit(':').next().unwrap_or_default(),
        },
    });
    let runner = Runner {
        invoker,
        observer,
        options,
        context,
        replay,
        record: Arc::new(Mutex::new(record)),
        timed_out: AtomicBool::new(false),
    };
    // The whole execution's stop signal: the timeout sets it, and then every branch stops as
    // it stops for a failed sibling (running Tasks finish, nothing new starts).
    let execution = CancellationToken::new();
    let run = runner.run_machine(machine, String::new(), input, execution.clone());
    let outcome = match machine.timeout_seconds {
        Some(seconds) => {
            let deadline = async {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                runner.timed_out.store(true, Ordering::SeqCst);
                execution.cancel();
                // The run ends once its running Tasks have.
                std::future::pending::<()>().await
            };
            tokio::select! {
                outcome = run => outcome.map_err(|err| {
                    if runner.is_stop(&err) {
                        ExecError::new(
                            TIMED_OUT,
                            format!(
                                "the execution ran longer than {seconds} s; the states running \
                                 then ran to their end and are recorded aborted"
                            ),
                        )
                    } else {
                        err
                    }
                }),
                () = deadline => unreachable!("the deadline never ends"),
            }
        }
        None => run.await,
    };
    let mut record = runner.record.lock().expect("record lock").clone();
    match outcome {
        Ok(output) => {
            record.status = ExecutionStatus::Succeeded;
            record.output = Some(output);
        }
        Err(err) => {
            // Only the deadline stops the execution from outside; a failure before it, even
            // one whose Parallel waited past it for a sibling's Task, is the execution's.
            record.status = if runner.timed_out.load(Ordering::SeqCst) && err.error == TIMED_OUT {
                ExecutionStatus::TimedOut
            } else {
                ExecutionStatus::Failed
            };
            record.error = Some(err.error);
            record.cause = Some(err.cause);
        }
    }
    record
}

/// One state being run: where, since when, under which stop signal, and what it did so far.
struct StateRun<'a> {
    path: &'a str,
    entered_at: DateTime<Utc>,
    stop: &'a CancellationToken,
    attempts: u32,
    /// A Task's own result, for the progress line.
    task_result: Option<Value>,
}

/// Where a branch is in replaying a redriven execution's record.
#[derive(Default)]
struct Replaying {
    /// A state of the branch ran again: the rest of it runs too.
    over: bool,
    replayed: std::collections::HashSet<String>,
}

impl Replaying {
    /// Whether the state at `path` may be replayed now (and it is, once).
    fn take(&mut self, path: &str) -> bool {
        !self.over && self.replayed.insert(path.to_owned())
    }
}

struct Runner<'a> {
    invoker: &'a dyn TaskInvoker,
    observer: &'a dyn Observer,
    options: ExecutionOptions,
    context: Value,
    replay: BTreeMap<String, StateRecord>,
    record: Arc<Mutex<ExecutionRecord>>,
    /// The machine's `TimeoutSeconds` passed: what stops now is stopped by it.
    timed_out: AtomicBool,
}

impl<'a> Runner<'a> {
    /// Whether `err` says a state or branch was stopped from outside (a sibling branch failed,
    /// the execution timed out) rather than failed by itself.
    fn is_stop(&self, err: &ExecError) -> bool {
        err.error == BRANCH_ABORTED
            || (err.error == TIMED_OUT && self.timed_out.load(Ordering::SeqCst))
    }

    /// The error of the state at `path`, stopped from outside: `happened` says what it did.
    fn stopped(&self, path: &str, happened: &str) -> ExecError {
        if self.timed_out.load(Ordering::SeqCst) {
            ExecError::new(
                TIMED_OUT,
                format!("{path} {happened} after the execution timed out"),
            )
        } else {
            ExecError::new(
                BRANCH_ABORTED,
                format!("{path} {happened} after a parallel branch failed"),
            )
        }
    }

    /// Runs `machine` (the execution, or one branch of a Parallel) until it ends, or until
    /// `stop` says a sibling failed: then the state that is running finishes and no further
    /// state starts.
    fn run_machine<'s>(
        &'s self,
        machine: &'s StateMachine,
        scope: String,
        input: Value,
        stop: CancellationToken,
    ) -> BoxFuture<'s, Result<Value, ExecError>> {
        async move {
            let mut current = machine.start_at.as_str();
            let mut data = input;
            // A redrive replays a branch's recorded states only until the first one that runs
            // again, and each only once: from there on every state runs. A loop (a sync
            // continued in another invocation) enters a state more than once, and its record is
            // of the last entry; entered again, it runs.
            let mut replaying = Replaying::default();
            loop {
                let state = &machine.states[current];
                let path = format!("{scope}{current}");
                if stop.is_cancelled() {
                    return Err(self.stopped(&path, "was not started"));
                }
                let (output, next) = self
                    .run_state(state, &path, data, &stop, &mut replaying)
                    .await?;
                match next {
                    Some(next) => {
                        current = machine
                            .states
                            .get_key_value(&next)
                            .map(|(k, _)| k.as_str())
                            .expect("transitions were checked at parse time");
                        data = output;
                    }
                    None => return Ok(output),
                }
            }
        }
        .boxed()
    }

    async fn run_state(
        &self,
        state: &State,
        path: &str,
        input: Value,
        stop: &CancellationToken,
        replaying: &mut Replaying,
    ) -> Result<(Value, Option<String>), ExecError> {
        if let Some(done) = self.replay.get(path).filter(|_| replaying.take(path)) {
            let output = done.output.clone().unwrap_or(Value::Null);
            self.observer.on_event(&Event::Succeeded {
                path: path.to_owned(),
                replayed: true,
                elapsed: Duration::ZERO,
                result: output.clone(),
            });
            return Ok((output, done.next.clone()));
        }
        replaying.over = true;
        self.observer.on_event(&Event::Entered {
            path: path.to_owned(),
        });
        let entered_at = Utc::now();
        let started = std::time::Instant::now();
        let mut run = StateRun {
            path,
            entered_at,
            stop,
            attempts: 0,
            task_result: None,
        };
        let result = self.execute(state, &input, &mut run).await;
        let StateRun {
            attempts,
            task_result,
            ..
        } = run;
        let exited_at = now_string();
        // A state stopped from outside: a Task's answer came after its branch was stopped
        // (whatever it answered, Step Functions discards it), or a Parallel whose branches were
        // all stopped. It is aborted, and the branch goes on being stopped.
        let aborted = match (&state.kind, &result) {
            (StateKind::Task { .. }, _) => stop.is_cancelled(),
            (_, Err(err)) => self.is_stop(err),
            _ => false,
        };
        let result = if aborted {
            Err(match &result {
                Err(err) if self.is_stop(err) => err.clone(),
                Ok(_) => self.stopped(
                    path,
                    "ran to its end (its result is discarded; a redrive runs it again)",
                ),
                Err(err) => self.stopped(
                    path,
                    &format!(
                        "ended with {}: {} (a redrive runs it again)",
                        err.error, err.cause
                    ),
                ),
            })
        } else {
            result
        };
        let mut record = self.record.lock().expect("record lock");
        match &result {
            Ok((output, next)) => {
                record.states.insert(
                    path.to_owned(),
                    StateRecord {
                        status: StateStatus::Succeeded,
                        input,
                        output: Some(output.clone()),
                        next: next.clone(),
                        error: None,
                        cause: None,
                        attempts,
                        entered_at: stamp(entered_at),
                        exited_at,
                    },
                );
                if let Some(checkpoint) = &self.options.checkpoint {
                    checkpoint(&record);
                }
                drop(record);
                self.observer.on_event(&Event::Succeeded {
                    path: path.to_owned(),
                    replayed: false,
                    elapsed: started.elapsed(),
                    result: task_result.unwrap_or_else(|| output.clone()),
                });
            }
            Err(err) => {
                record.states.insert(
                    path.to_owned(),
                    StateRecord {
                        status: if aborted {
                            StateStatus::Aborted
                        } else {
                            StateStatus::Failed
                        },
                        input,
                        output: None,
                        next: None,
                        error: Some(err.error.clone()),
                        cause: Some(err.cause.clone()),
                        attempts,
                        entered_at: stamp(entered_at),
                        exited_at,
                    },
                );
                if let Some(checkpoint) = &self.options.checkpoint {
                    checkpoint(&record);
                }
                drop(record);
                let (path, error, cause) = (path.to_owned(), err.error.clone(), err.cause.clone());
                self.observer.on_event(&if aborted {
                    Event::Aborted { path, error, cause }
                } else {
                    Event::Failed { path, error, cause }
                });
            }
        }
        result
    }

    async fn execute(
        &self,
        state: &State,
        input: &Value,
        run: &mut StateRun<'_>,
    ) -> Result<(Value, Option<String>), ExecError> {
        let (path, stop) = (run.path, run.stop);
        let attempts = &mut run.attempts;
        let context = self.state_context(state, run.entered_at, 0);
        let effective = apply_path(state.input_path.as_ref(), input, &context)?;
        let next = state.next.clone();
        match &state.kind {
            StateKind::Succeed => Ok((
                apply_path(state.output_path.as_ref(), &effective, &context)?,
                None,
            )),
            StateKind::Fail { error, cause } => Err(ExecError::new(
                error.clone().unwrap_or_else(|| "States.Fail".into()),
                cause.clone().unwrap_or_default(),
            )),
            StateKind::Choice { choices, default } => {
                let mut chosen = None;
                for rule in choices {
                    if evaluate(&rule.condition, &effective, &context)? {
                        chosen = Some(rule.next.clone());
                        break;
                    }
                }
                let next = chosen.or_else(|| default.clone()).ok_or_else(|| {
                    ExecError::new(
                        "States.NoChoiceMatched",
                        format!("no choice rule of {:?} matched", state.name),
                    )
                })?;
                Ok((
                    apply_path(state.output_path.as_ref(), &effective, &context)?,
                    Some(next),
                ))
            }
            StateKind::Pass { result } => {
                let value = match (&state.parameters, result) {
                    (Some(template), _) => path::render(template, &effective, &context)?,
                    (None, Some(result)) => result.clone(),
                    (None, None) => effective.clone(),
                };
                Ok((self.finish(state, input, value, &context)?, next))
            }
            StateKind::Task { resource } => {
                let payload = match &state.parameters {
                    Some(template) => path::render(template, &effective, &context)?,
                    None => effective.clone(),
                };
                let result = self
                    .with_retry(state, path, attempts, stop, || {
                        self.invoker.invoke(resource, payload.clone())
                    })
                    .await?;
                run.task_result = Some(result.clone());
                Ok((self.finish(state, input, result, &context)?, next))
            }
            StateKind::Parallel { branches } => {
                let payload = match &state.parameters {
                    Some(template) => path::render(template, &effective, &context)?,
                    None => effective.clone(),
                };
                let result = self
                    .with_retry(state, path, attempts, stop, || {
                        self.run_branches(branches, path, &payload, stop)
                    })
                    .await?;
                Ok((self.finish(state, input, result, &context)?, next))
            }
        }
    }

    /// A Parallel's branches, concurrently. The first branch to fail stops the others (each
    /// finishes the state it is in, which is then aborted) and its error is the Parallel's.
    fn run_branches<'s>(
        &'s self,
        branches: &'s [StateMachine],
        path: &'s str,
        payload: &'s Value,
        stop: &'s CancellationToken,
    ) -> BoxFuture<'s, Result<Value, ExecError>> {
        async move {
            let siblings = stop.child_token();
            let first_failure: Mutex<Option<ExecError>> = Mutex::new(None);
            let runs = branches.iter().enumerate().map(|(i, branch)| {
                let siblings = siblings.clone();
                let first_failure = &first_failure;
                async move {
                    let result = self
                        .run_machine(
                            branch,
                            format!("{path}[{i}]."),
                            payload.clone(),
                            siblings.clone(),
                        )
                        .await;
                    if let Err(err) = &result
                        && !self.is_stop(err)
                    {
                        first_failure
                            .lock()
                            .expect("failure lock")
                            .get_or_insert_with(|| err.clone());
                        siblings.cancel();
                    }
                    result
                }
            });
            let results = join_all(runs).await;
            if let Some(err) = first_failure.into_inner().expect("failure lock") {
                return Err(err);
            }
            results
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        .boxed()
    }

    /// ResultSelector, ResultPath and OutputPath.
    fn finish(
        &self,
        state: &State,
        input: &Value,
        result: Value,
        context: &Value,
    ) -> Result<Value, ExecError> {
        let selected = match &state.result_selector {
            Some(template) => path::render(template, &result, context)?,
            None => result,
        };
        let combined = match &state.result_path {
            None => selected,
            Some(None) => input.clone(),
            Some(Some(p)) => path::place(p, input.clone(), selected)?,
        };
        apply_path(state.output_path.as_ref(), &combined, context)
    }

    async fn with_retry<F, Fut>(
        &self,
        state: &State,
        path: &str,
        attempts: &mut u32,
        stop: &CancellationToken,
        mut attempt: F,
    ) -> Result<Value, ExecError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Value, ExecError>>,
    {
        let mut retries_per_rule = vec![0u32; state.retry.len()];
        loop {
            *attempts += 1;
            let err = match attempt().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let Some(index) = state
                .retry
                .iter()
                .position(|r| matches_error(r, &err.error))
            else {
                return Err(err);
            };
            let rule = &state.retry[index];
            let done = retries_per_rule[index];
            // A stopped branch retries nothing: its failed attempt is its last.
            if done >= rule.max_attempts || stop.is_cancelled() {
                return Err(err);
            }
            retries_per_rule[index] += 1;
            let delay = retry_delay(rule, done, self.options.retry_time_scale);
            self.observer.on_event(&Event::Retrying {
                path: path.to_owned(),
                error: err.error.clone(),
                attempt: done + 1,
                delay,
            });
            // Step Functions' own backoff between retries: the definition's IntervalSeconds,
            // BackoffRate and JitterStrategy. A sibling's failure ends the wait.
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.cancelled() => return Err(err),
            }
        }
    }

    fn state_context(&self, state: &State, entered_at: DateTime<Utc>, retry_count: u32) -> Value {
        let mut context = self.context.clone();
        context["State"] = json!({"Name": state.name, "EnteredTime": stamp(entered_at), "RetryCount": retry_count});
        context
    }
}

/// Whether a Retry rule applies to an error name (`States.ALL` matches everything,
/// `States.TaskFailed` every task error but a timeout).
fn matches_error(rule: &Retrier, error: &str) -> bool {
    rule.error_equals.iter().any(|e| {
        e == error
            || e == "States.ALL"
            || (e == "States.TaskFailed" && error != "States.Timeout" && error != "States.Runtime")
    }) && error != "States.Runtime"
}

fn retry_delay(rule: &Retrier, retries_done: u32, scale: f64) -> Duration {
    let mut seconds = rule.interval_seconds * rule.backoff_rate.powi(retries_done as i32);
    if let Some(max) = rule.max_delay_seconds {
        seconds = seconds.min(max);
    }
    if rule.full_jitter {
        seconds *= rand::random::<f64>();
    }
    Duration::from_secs_f64((seconds * scale).max(0.0))
}

fn apply_path(
    path: Option<&Option<String>>,
    input: &Value,
    context: &Value,
) -> Result<Value, ExecError> {
    match path {
        None => Ok(input.clone()),
        Some(None) => Ok(json!({})),
        Some(Some(p)) => path::select(p, input, context),
    }
}

fn evaluate(condition: &Condition, input: &Value, context: &Value) -> Result<bool, ExecError> {
    Ok(match condition {
        Condition::And(all) => {
            for c in all {
                if !evaluate(c, input, context)? {
                    return Ok(false);
                }
            }
            true
        }
        Condition::Or(any) => {
            for c in any {
                if evaluate(c, input, context)? {
                    return Ok(true);
                }
            }
            false
        }
        Condition::Not(inner) => !evaluate(inner, input, context)?,
        Condition::Compare {
            variable,
            op: CompareOp::IsPresent,
            value,
        } => path::is_present(variable, input, context) == (value.as_bool() == Some(true)),
        Condition::Compare {
            variable,
            op,
            value,
        } => {
            let actual = path::select(variable, input, context)?;
            let number = |v: &Value| v.as_f64();
            match op {
                CompareOp::StringEquals => {
                    actual.as_str().is_some() && actual.as_str() == value.as_str()
                }
                CompareOp::BooleanEquals => {
                    actual.as_bool().is_some() && actual.as_bool() == value.as_bool()
                }
                CompareOp::IsNull => actual.is_null() == (value.as_bool() == Some(true)),
                CompareOp::IsPresent => unreachable!("handled above"),
                numeric => match (number(&actual), number(value)) {
                    (Some(a), Some(b)) => match numeric {
                        CompareOp::NumericEquals => a == b,
                        CompareOp::NumericGreaterThan => a > b,
                        CompareOp::NumericGreaterThanEquals => a >= b,
                        CompareOp::NumericLessThan => a < b,
                        CompareOp::NumericLessThanEquals => a <= b,
                        _ => unreachable!("non-numeric operators are matched above"),
                    },
                    _ => false,
                },
            }
        }
    })
}

fn now_string() -> String {
    stamp(Utc::now())
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
