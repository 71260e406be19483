//! The executor against the real `statemachine/sync.asl.json` with a scripted invoker, plus
//! small machines for the corners.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::*;

const SYNC_ASL: &str = include_str!("../../../statemachine/sync.asl.json");

fn dummy_substitutions() -> BTreeMap<String, String> {
    placeholders(SYNC_ASL)
        .into_iter()
        .map(|name| {
            let function = name.trim_end_matches("FunctionArn").to_lowercase();
            (
                name,
                format!("arn:aws:lambda:us-east-1:123456789012:function:zdsync-{function}"),
            )
        })
        .collect()
}

fn sync_machine() -> StateMachine {
    load(SYNC_ASL, &dummy_substitutions()).unwrap()
}

/// Answers Tasks from a script: resource suffix + instance → a queue of outcomes (default: echo
/// a small output), and records every call.
#[derive(Default)]
struct Script {
    outcomes: Mutex<BTreeMap<String, Vec<Result<Value, ExecError>>>>,
    calls: Mutex<Vec<(String, Value)>>,
    /// Tasks that take this long, as a slow Lambda would.
    delays: BTreeMap<String, std::time::Duration>,
    /// Tasks that finished, in order.
    finished: Mutex<Vec<String>>,
}

impl Script {
    fn fail(self, key: &str, outcomes: Vec<Result<Value, ExecError>>) -> Self {
        self.outcomes
            .lock()
            .unwrap()
            .insert(key.to_owned(), outcomes);
        self
    }

    fn slow(mut self, key: &str, millis: u64) -> Self {
        self.delays
            .insert(key.to_owned(), std::time::Duration::from_millis(millis));
        self
    }

    fn calls_to(&self, key: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == key)
            .count()
    }
}

fn key_of(resource: &str, input: &Value) -> String {
    let function = resource
        .rsplit(':')
        .next()
        .unwrap()
        .trim_start_matches("zdsync-");
    match input
        .get("sync")
        .or_else(|| input.get("instance"))
        .and_then(Value::as_str)
    {
        Some(which) => format!("{function}/{which}"),
        None => function.to_owned(),
    }
}

#[async_trait]
impl TaskInvoker for Script {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, ExecError> {
        let key = key_of(resource, &input);
        self.calls
            .lock()
            .unwrap()
            .push((key.clone(), input.clone()));
        if let Some(delay) = self.delays.get(&key) {
            tokio::time::sleep(*delay).await;
        }
        self.finished.lock().unwrap().push(key.clone());
        let scripted = self
            .outcomes
            .lock()
            .unwrap()
            .get_mut(&key)
            .filter(|queue| !queue.is_empty())
            .map(|queue| queue.remove(0));
        if let Some(outcome) = scripted {
            return outcome;
        }
        Ok(match key.as_str() {
            "guard" => json!({
                "run_id": input["run_id"], "as_of": "2026-11-23", "skip": false,
                "options": {"dry_run": input["execution_input"].get("dry_run").cloned().unwrap_or(json!(false)),
                            "full": input["execution_input"].get("full").cloned().unwrap_or(json!(false)),
                            "allow_deletions": {}}
            }),
            _ => json!({"stage": key, "counts": {"n": 1}}),
        })
    }
}

fn fast() -> ExecutionOptions {
    ExecutionOptions {
        retry_time_scale: 0.0,
        checkpoint: None,
    }
}

async fn run_sync(script: &Script, input: Value) -> ExecutionRecord {
    let record = ExecutionRecord::new(
        "arn:aws:states:local:000000000000:stateMachine:zdsync-sync",
        "run-1",
        input,
        "2026-11-23T10:00:00Z".parse().unwrap(),
    );
    start(&sync_machine(), record, script, &Quiet, fast()).await
}

#[test]
fn the_sync_definition_parses_and_every_state_is_reachable() {
    let machine = sync_machine();
    assert_eq!(machine.unreachable_states(), Vec::<String>::new());
    assert_eq!(machine.timeout_seconds, Some(3000), "50 minutes (SPEC §10)");
    let functions: Vec<String> = machine
        .task_resources()
        .iter()
        .map(|r| r.rsplit(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        functions,
        vec![
            "zdsync-compare",
            "zdsync-gatheraccounts",
            "zdsync-gathercontacts",
            "zdsync-gatherorgs",
            "zdsync-gatherusers",
            "zdsync-guard",
            "zdsync-process",
            "zdsync-summarize",
            "zdsync-sync"
        ]
    );
}

#[tokio::test]
async fn a_full_run_calls_every_stage_once_with_small_inputs() {
    let script = Script::default();
    let record = run_sync(&script, json!({})).await;
    assert_eq!(record.status, ExecutionStatus::Succeeded, "{record:#?}");
    let calls = script.calls.lock().unwrap().clone();
    let mut keys: Vec<&str> = calls.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "compare/global",
            "compare/partners",
            "compare/users",
            "compare/usgov",
            "gatheraccounts",
            "gatheraccounts/partners",
            "gathercontacts/users",
            "gatherorgs/global",
            "gatherorgs/partners",
            "gatherorgs/users",
            "gatherorgs/usgov",
            "gatherusers/users",
            "guard",
            "process",
            "summarize",
            "sync/global",
            "sync/partners",
            "sync/users",
            "sync/usgov"
        ]
    );
    let guard = &calls.iter().find(|(k, _)| k == "guard").unwrap().1;
    assert_eq!(guard["run_id"], json!("run-1"));
    assert_eq!(guard["started_at"], json!("2026-11-23T10:00:00.000Z"));
    assert_eq!(
        guard["execution_arn"],
        json!("arn:aws:states:local:000000000000:execution:zdsync-sync:run-1")
    );
    let sync = &calls.iter().find(|(k, _)| k == "sync/usgov").unwrap().1;
    assert_eq!(
        sync,
        &json!({"run_id": "run-1", "as_of": "2026-11-23", "instance": "usgov", "allow_deletions": {}, "execution": {"Id": "arn:aws:states:local:000000000000:execution:zdsync-sync:run-1", "Name": "run-1", "StartTime": "2026-11-23T10:00:00.000Z", "Input": {}, "RedriveCount": 0}, "state_machine_arn": "arn:aws:states:local:000000000000:stateMachine:zdsync-sync"})
    );
    let sync = &calls.iter().find(|(k, _)| k == "sync/users").unwrap().1;
    assert_eq!(
        sync,
        &json!({"run_id": "run-1", "as_of": "2026-11-23", "sync": "users", "allow_deletions": {}, "execution": {"Id": "arn:aws:states:local:000000000000:execution:zdsync-sync:run-1", "Name": "run-1", "StartTime": "2026-11-23T10:00:00.000Z", "Input": {}, "RedriveCount": 0}, "state_machine_arn": "arn:aws:states:local:000000000000:stateMachine:zdsync-sync"})
    );
    // Each branch's two gathers run in a Parallel of their own, after the branch's org sync.
    let order: Vec<&str> = calls.iter().map(|(k, _)| k.as_str()).collect();
    let at = |key: &str| order.iter().position(|k| *k == key).unwrap();
    assert!(at("sync/global") < at("gatherorgs/partners"));
    assert!(at("sync/usgov") < at("gatherorgs/users"));
    assert!(at("gatherusers/users") < at("gathercontacts/users"));
    assert!(at("gathercontacts/users") < at("compare/users"));
    assert!(at("gatheraccounts/partners") < at("compare/partners"));
    for (state, key) in [
        ("Instances[0].GatherPartners", "gather_partners"),
        ("Instances[1].GatherUserSide", "gather_user_side"),
    ] {
        let output = record.states[state].output.as_ref().unwrap();
        assert_eq!(output[key].as_array().unwrap().len(), 2, "{state}");
    }
    let gathered = record.states["GatherOrgs"].output.as_ref().unwrap();
    assert_eq!(
        gathered["stages"]["gather_orgs"].as_array().unwrap().len(),
        2
    );
    // The execution's output is the summary stage's answer; StartTime stays out of it.
    let output = record.output.unwrap();
    assert_eq!(output["stage"], json!("summarize"));
    assert!(!output.to_string().contains("10:00:00"));
}

#[tokio::test]
async fn the_overlap_guard_skips_everything() {
    let script = Script::default().fail(
        "guard",
        vec![Ok(json!({"run_id": "run-1", "as_of": "2026-11-23", "skip": true, "options": {"dry_run": false, "full": false, "allow_deletions": {}}}))],
    );
    let record = run_sync(&script, json!({})).await;
    assert_eq!(record.status, ExecutionStatus::Succeeded);
    assert_eq!(script.calls.lock().unwrap().len(), 1);
    assert!(record.states.contains_key("Skipped"));
}

#[tokio::test]
async fn a_dry_run_gathers_and_compares_every_sync_and_writes_nothing() {
    let script = Script::default();
    let record = run_sync(&script, json!({"dry_run": true})).await;
    assert_eq!(record.status, ExecutionStatus::Succeeded);
    let calls = script.calls.lock().unwrap().clone();
    assert!(
        calls.iter().all(|(k, _)| !k.starts_with("sync")),
        "no sync stage runs: {calls:?}"
    );
    for compare in [
        "compare/global",
        "compare/usgov",
        "compare/partners",
        "compare/users",
    ] {
        assert_eq!(script.calls_to(compare), 1, "{compare}");
    }
    assert_eq!(script.calls_to("summarize"), 1);
}

#[tokio::test]
async fn retryable_errors_are_retried_and_others_are_not() {
    let retryable = || Err(ExecError::new("Retryable", "Zendesk answered 503"));
    let script = Script::default().fail("gatheraccounts", vec![retryable(), retryable()]);
    let record = run_sync(&script, json!({})).await;
    assert_eq!(record.status, ExecutionStatus::Succeeded);
    assert_eq!(script.calls_to("gatheraccounts"), 3);
    assert_eq!(record.states["GatherAccounts"].attempts, 3);

    let script = Script::default().fail(
        "process",
        vec![Err(ExecError::new(
            "InvalidArtifact",
            "salesforce_accounts.json: accounts[3].charges",
        ))],
    );
    let record = run_sync(&script, json!({})).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.error.as_deref(), Some("InvalidArtifact"));
    assert_eq!(script.calls_to("process"), 1);
    assert_eq!(record.failed_states(), vec!["Process"]);

    // MaxAttempts 3: the fourth failure is final.
    let script = Script::default().fail("gatheraccounts", (0..4).map(|_| retryable()).collect());
    let record = run_sync(&script, json!({})).await;
    assert_eq!(record.error.as_deref(), Some("Retryable"));
    assert_eq!(script.calls_to("gatheraccounts"), 4);
}

#[tokio::test]
async fn a_failed_branch_fails_the_execution_and_a_redrive_reruns_only_what_failed() {
    let script = Script::default().fail(
        "sync/usgov",
        vec![Err(ExecError::new(
            "DeletionGuardTripped",
            "60 marks > limit 25",
        ))],
    );
    let record = run_sync(&script, json!({})).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.error.as_deref(), Some("DeletionGuardTripped"));
    assert_eq!(
        record.failed_states(),
        vec!["Instances[1].SyncUsgov", "Instances"]
    );
    let before = script.calls.lock().unwrap().len();

    // Round trip through JSON, as `zdsync redrive` reads it back from the run directory.
    let saved: ExecutionRecord =
        serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
    let redriven = redrive(&sync_machine(), saved, &script, &Quiet, fast())
        .await
        .unwrap();
    assert_eq!(redriven.status, ExecutionStatus::Succeeded, "{redriven:#?}");
    assert_eq!(redriven.redrive_count, 1);
    let calls = script.calls.lock().unwrap()[before..]
        .iter()
        .map(|(k, _)| k.clone())
        .collect::<Vec<_>>();
    assert_eq!(
        calls,
        vec![
            "sync/usgov",
            "gatherorgs/users",
            "gatherusers/users",
            "gathercontacts/users",
            "compare/users",
            "sync/users",
            "summarize"
        ],
        "the failed state and the states after it run; succeeded states are replayed"
    );
    assert_eq!(redriven.name, record.name);
    assert_eq!(redriven.start_time, record.start_time);

    // A succeeded execution cannot be redriven.
    assert!(
        redrive(&sync_machine(), redriven, &script, &Quiet, fast())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_parallel_failure_cancels_the_other_branch() {
    // Both branches' first task fails at once; whichever is seen first fails the Parallel and
    // nothing after it in either branch runs.
    let fail = || {
        Err(ExecError::new(
            "AuthFailed",
            "401 Couldn't authenticate you",
        ))
    };
    let script = Script::default()
        .fail("compare/global", vec![fail()])
        .fail("compare/usgov", vec![fail()]);
    let record = run_sync(&script, json!({})).await;
    assert_eq!(record.error.as_deref(), Some("AuthFailed"));
    assert_eq!(
        script.calls_to("sync/global")
            + script.calls_to("sync/usgov")
            + script.calls_to("summarize"),
        0
    );
}

fn tiny(definition: Value) -> StateMachine {
    StateMachine::parse(&definition).unwrap()
}

#[tokio::test]
async fn input_and_output_processing() {
    let machine = tiny(json!({
        "StartAt": "Shape",
        "States": {
            "Shape": {"Type": "Pass", "InputPath": "$.in", "Parameters": {"x.$": "$.a", "name.$": "$$.Execution.Name"}, "ResultPath": "$.shaped", "Next": "Keep"},
            "Keep": {"Type": "Pass", "Result": {"ignored": true}, "ResultPath": null, "OutputPath": "$.shaped", "Next": "Choose"},
            "Choose": {"Type": "Choice", "Choices": [
                {"And": [{"Variable": "$.x", "IsPresent": true}, {"Variable": "$.x", "NumericGreaterThan": 2}], "Next": "Big"},
                {"Not": {"Variable": "$.name", "StringEquals": "exec"}, "Next": "Odd"}
            ], "Default": "Small"},
            "Big": {"Type": "Succeed"},
            "Small": {"Type": "Pass", "Result": "small", "End": true},
            "Odd": {"Type": "Fail", "Error": "Odd", "Cause": "unexpected name"}
        }
    }));
    let record = |input| {
        ExecutionRecord::new(
            "arn:aws:states:local:0:stateMachine:m",
            "exec",
            input,
            chrono::Utc::now(),
        )
    };
    let done = start(
        &machine,
        record(json!({"in": {"a": 5}})),
        &Script::default(),
        &Quiet,
        fast(),
    )
    .await;
    assert_eq!(done.output, Some(json!({"x": 5, "name": "exec"})));
    assert_eq!(done.states["Choose"].next.as_deref(), Some("Big"));
    let done = start(
        &machine,
        record(json!({"in": {"a": 1}})),
        &Script::default(),
        &Quiet,
        fast(),
    )
    .await;
    assert_eq!(done.output, Some(json!("small")));
    let done = start(
        &machine,
        record(json!({"nope": 1})),
        &Script::default(),
        &Quiet,
        fast(),
    )
    .await;
    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
}

/// Tasks named by their resource (`arn:slow`); the first call of `arn:slow` takes 1.5 s and
/// then leaves its side effect, as a Lambda invocation writes its artifacts.
#[derive(Default)]
struct SlowOnce {
    calls: Mutex<Vec<String>>,
    effects: Mutex<Vec<String>>,
}

#[async_trait]
impl TaskInvoker for SlowOnce {
    async fn invoke(&self, resource: &str, _: Value) -> Result<Value, ExecError> {
        let name = resource.trim_start_matches("arn:").to_owned();
        let first = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(name.clone());
            calls.iter().filter(|c| **c == name).count() == 1
        };
        if name == "slow" && first {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        }
        self.effects.lock().unwrap().push(name.clone());
        Ok(json!({"done": name}))
    }
}

fn timed(name: &str) -> ExecutionRecord {
    ExecutionRecord::new(
        "arn:aws:states:local:0:stateMachine:m",
        name,
        json!({}),
        chrono::Utc::now(),
    )
}

#[tokio::test]
async fn a_task_running_at_the_machine_timeout_finishes_and_a_redrive_runs_it_again() {
    let machine = tiny(json!({"StartAt": "Slow", "TimeoutSeconds": 1, "States": {
        "Slow": {"Type": "Task", "Resource": "arn:slow", "Next": "After"},
        "After": {"Type": "Task", "Resource": "arn:after", "End": true}
    }}));
    let tasks = SlowOnce::default();
    let done = start(&machine, timed("slow"), &tasks, &Quiet, fast()).await;
    assert_eq!(done.status, ExecutionStatus::TimedOut);
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    // The invocation was not cut off: its side effect happened before the execution ended.
    assert_eq!(*tasks.effects.lock().unwrap(), vec!["slow"]);
    // But its result is not the execution's: it is aborted, and nothing after it started.
    assert_eq!(done.states["Slow"].status, StateStatus::Aborted);
    assert_eq!(done.states["Slow"].error.as_deref(), Some("States.Timeout"));
    assert!(!done.states.contains_key("After"));
    assert!(done.failed_states().is_empty());
    assert_eq!(done.aborted_states(), vec!["Slow"]);

    let redriven = redrive(&machine, done, &tasks, &Quiet, fast())
        .await
        .unwrap();
    assert_eq!(redriven.status, ExecutionStatus::Succeeded, "{redriven:#?}");
    assert_eq!(
        *tasks.calls.lock().unwrap(),
        vec!["slow", "slow", "after"],
        "the redrive runs the timed-out Task again"
    );
}

#[tokio::test]
async fn the_machine_timeout_stops_every_branch_and_lets_their_running_tasks_finish() {
    let machine = tiny(json!({"StartAt": "P", "TimeoutSeconds": 1, "States": {
        "P": {"Type": "Parallel", "Next": "Last", "Branches": [
            {"StartAt": "Slow", "States": {
                "Slow": {"Type": "Task", "Resource": "arn:slow", "Next": "AfterSlow"},
                "AfterSlow": {"Type": "Task", "Resource": "arn:after", "End": true}}},
            {"StartAt": "Fast", "States": {
                "Fast": {"Type": "Task", "Resource": "arn:fast", "End": true}}}
        ]},
        "Last": {"Type": "Task", "Resource": "arn:last", "End": true}
    }}));
    let tasks = SlowOnce::default();
    let done = start(&machine, timed("parallel"), &tasks, &Quiet, fast()).await;
    assert_eq!(done.status, ExecutionStatus::TimedOut);
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    assert_eq!(*tasks.effects.lock().unwrap(), vec!["fast", "slow"]);
    let status = |path: &str| done.states[path].status;
    assert_eq!(status("P[0].Slow"), StateStatus::Aborted);
    assert_eq!(status("P[1].Fast"), StateStatus::Succeeded);
    assert_eq!(status("P"), StateStatus::Aborted);
    assert!(!done.states.contains_key("P[0].AfterSlow"));
    assert!(!done.states.contains_key("Last"));
    assert!(done.failed_states().is_empty());

    let redriven = redrive(&machine, done, &tasks, &Quiet, fast())
        .await
        .unwrap();
    assert_eq!(redriven.status, ExecutionStatus::Succeeded, "{redriven:#?}");
    assert_eq!(
        *tasks.calls.lock().unwrap(),
        vec!["slow", "fast", "slow", "after", "last"],
        "the stopped branch runs again from its aborted Task; the finished one is replayed"
    );
}

#[test]
fn unsupported_or_broken_definitions_are_refused() {
    let task = |extra: Value| {
        let mut state = json!({"Type": "Task", "Resource": "arn:x", "End": true});
        for (k, v) in extra.as_object().unwrap() {
            state[k] = v.clone();
        }
        StateMachine::parse(&json!({"StartAt": "T", "States": {"T": state}}))
    };
    assert!(task(json!({})).is_ok());
    assert!(
        task(json!({"Catch": []}))
            .unwrap_err()
            .contains("\"Catch\"")
    );
    assert!(
        task(json!({"Next": "T"}))
            .unwrap_err()
            .contains("exactly one of Next or End")
    );
    assert!(task(json!({"ResultPath": "$..x"})).is_err());
    assert!(
        StateMachine::parse(&json!({"StartAt": "Nope", "States": {}}))
            .unwrap_err()
            .contains("Nope")
    );
    let err = StateMachine::parse(
        &json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}),
    )
    .unwrap_err();
    assert!(err.contains("\"B\""), "{err}");
    assert!(
        StateMachine::parse(
            &json!({"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "End": true}}})
        )
        .is_err()
    );
    let err = load(SYNC_ASL, &BTreeMap::new()).unwrap_err();
    assert!(err.contains("GuardFunctionArn"), "{err}");
}

#[tokio::test]
async fn a_task_running_when_a_sibling_branch_fails_finishes_is_recorded_aborted_and_runs_again_on_redrive()
 {
    // US Gov's compare fails at once while Global's compare is still running.
    let script = Script::default().slow("compare/global", 150).fail(
        "compare/usgov",
        vec![Err(ExecError::new(
            "InvalidArtifact",
            "usgov_accounts.json",
        ))],
    );
    let record = run_sync(&script, json!({})).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.error.as_deref(), Some("InvalidArtifact"));
    // The running Task ran to its end (a Lambda invocation is not interrupted: its artifacts
    // are written), but Step Functions stopped its branch: it is on record as aborted, not
    // succeeded, and nothing after it started.
    assert!(
        script
            .finished
            .lock()
            .unwrap()
            .contains(&"compare/global".to_owned())
    );
    let global = &record.states["Instances[0].CompareGlobal"];
    assert_eq!(global.status, StateStatus::Aborted, "{global:#?}");
    assert_eq!(global.error.as_deref(), Some("States.BranchAborted"));
    assert_eq!(global.output, None, "its result is not the branch's");
    assert_eq!(script.calls_to("sync/global"), 0);
    assert!(!record.states.contains_key("Instances[0].DryRunGlobal"));
    assert_eq!(script.calls_to("summarize"), 0);
    // The failure is US Gov's alone; the aborted state is listed apart.
    assert_eq!(
        record.failed_states(),
        vec!["Instances[1].CompareUsgov", "Instances"]
    );
    assert_eq!(record.aborted_states(), vec!["Instances[0].CompareGlobal"]);

    // Redrive (read back as `zdsync redrive` reads it): the aborted compare runs again, and
    // the rest of its branch after it; the failed US Gov branch runs again.
    let saved: ExecutionRecord =
        serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
    let before = script.calls.lock().unwrap().len();
    let redriven = redrive(&sync_machine(), saved, &script, &Quiet, fast())
        .await
        .unwrap();
    assert_eq!(redriven.status, ExecutionStatus::Succeeded, "{redriven:#?}");
    let calls: Vec<String> = script.calls.lock().unwrap()[before..]
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    for rerun in [
        "compare/global",
        "sync/global",
        "gatherorgs/partners",
        "sync/partners",
        "compare/usgov",
        "sync/usgov",
        "sync/users",
        "summarize",
    ] {
        assert_eq!(
            calls.iter().filter(|c| *c == rerun).count(),
            1,
            "{rerun} in {calls:?}"
        );
    }
    assert!(!calls.contains(&"process".to_owned()), "{calls:?}");
    assert_eq!(
        redriven.states["Instances[0].CompareGlobal"].status,
        StateStatus::Succeeded
    );
    assert!(redriven.aborted_states().is_empty());
}

#[tokio::test]
async fn a_task_aborted_in_a_nested_parallel_reruns_alone_in_its_branch() {
    // Global is in its partner gathers (a Parallel of its own) when US Gov's sync fails: the
    // partner accounts are gathered, the partner orgs' gather is still running.
    let script = Script::default()
        .slow("gatherorgs/partners", 300)
        .slow("sync/usgov", 100)
        .fail(
            "sync/usgov",
            vec![Err(ExecError::new(
                "DeletionGuardTripped",
                "60 marks > limit 25",
            ))],
        );
    let record = run_sync(&script, json!({})).await;
    assert_eq!(record.error.as_deref(), Some("DeletionGuardTripped"));
    let status = |path: &str| record.states[path].status;
    assert_eq!(
        status("Instances[0].GatherPartners[0].GatherPartnerAccounts"),
        StateStatus::Succeeded
    );
    assert_eq!(
        status("Instances[0].GatherPartners[1].GatherPartnerOrgs"),
        StateStatus::Aborted
    );
    // The inner Parallel was stopped, it did not fail: only US Gov's sync and the outer
    // Parallel failed.
    assert_eq!(status("Instances[0].GatherPartners"), StateStatus::Aborted);
    assert_eq!(
        record.failed_states(),
        vec!["Instances[1].SyncUsgov", "Instances"]
    );
    assert!(
        script
            .finished
            .lock()
            .unwrap()
            .contains(&"gatherorgs/partners".to_owned())
    );
    assert_eq!(script.calls_to("compare/partners"), 0);

    let before = script.calls.lock().unwrap().len();
    let redriven = redrive(&sync_machine(), record, &script, &Quiet, fast())
        .await
        .unwrap();
    assert_eq!(redriven.status, ExecutionStatus::Succeeded, "{redriven:#?}");
    let mut calls: Vec<String> = script.calls.lock().unwrap()[before..]
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    calls.sort();
    assert_eq!(
        calls,
        vec![
            "compare/partners",
            "compare/users",
            "gathercontacts/users",
            "gatherorgs/partners",
            "gatherorgs/users",
            "gatherusers/users",
            "summarize",
            "sync/partners",
            "sync/users",
            "sync/usgov",
        ],
        "the partner accounts' gather is replayed, the partner orgs' runs again"
    );
}

#[tokio::test]
async fn a_sibling_waiting_to_retry_gives_up_when_a_branch_fails() {
    // Global's compare fails retryably (and would be retried in seconds); US Gov fails for good.
    let retryable = || Err(ExecError::new("Retryable", "Zendesk answered 503"));
    let script = Script::default()
        .fail("compare/global", vec![retryable(), retryable()])
        .slow("compare/usgov", 50)
        .fail(
            "compare/usgov",
            vec![Err(ExecError::new(
                "InvalidArtifact",
                "usgov_accounts.json",
            ))],
        );
    let machine = sync_machine();
    let record = ExecutionRecord::new(
        "arn:aws:states:local:000000000000:stateMachine:zdsync-sync",
        "run-retry",
        json!({}),
        "2026-11-23T10:00:00Z".parse().unwrap(),
    );
    // Real retry delays (scale 1): the test ends long before a 5 s interval would.
    let started = std::time::Instant::now();
    let record = start(
        &machine,
        record,
        &script,
        &Quiet,
        ExecutionOptions {
            retry_time_scale: 1.0,
            checkpoint: None,
        },
    )
    .await;
    assert_eq!(record.error.as_deref(), Some("InvalidArtifact"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        script.calls_to("compare/global"),
        1,
        "no retry after the sibling failed"
    );
}
