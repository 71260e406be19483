//! The same `statemachine/sync.asl.json` in a real Step Functions engine, with the real Lambda
//! binaries: moto's server executes the ASL, its Lambda Tasks call `zdsync lambda-proxy`
//! (in-process), which forwards to `cargo lambda watch` running the `functions/*` binaries
//! against an in-process sandbox. The end state must equal what the local executor
//! (`zdsync run`) makes of an identical world, and a failing stage must fail the execution
//! with its stable error name.
//!
//! Needs moto and cargo-lambda in `.tools/venv` (git-ignored), so it is `#[ignore]`d in a plain
//! `cargo test`; `scripts/sfn-engine.sh` installs them and runs it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use zdsync::model::{Instance, RunSummary, SyncKind};
use zdsync::stages::{Stage, artifacts, summarize};
use zdsync_cli::asl::ExecutionStatus as LocalStatus;
use zdsync_cli::lambda_proxy;
use zdsync_cli::local::{self, CRASH_ERROR, CrashPlan, Progress, RunRequest};
use zdsync_e2e::{Harness, first_difference, zendesk_end_state};
use zdsync_sandbox::{Fixture, GeneratorOptions};

const ACCOUNTS: usize = 60;
const SEED: u64 = 7;
const ACCOUNT_ID: &str = "123456789012";
const REGION: &str = "us-east-1";

/// A cold debug build of the seven functions takes minutes on a loaded 2-core machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Every stage answers in about a second against the sandbox; the rest is Retry headroom.
const EXECUTION_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto and cargo-lambda in .tools/venv: run scripts/sfn-engine.sh"]
async fn the_state_machine_runs_in_a_real_step_functions_engine() {
    let began = Instant::now();
    let repo = repo_root();
    let venv_bin = repo.join(".tools/venv/bin");
    for tool in ["moto_server", "cargo-lambda"] {
        assert!(
            venv_bin.join(tool).exists(),
            "{} is missing: run scripts/sfn-engine.sh (it installs moto and cargo-lambda into .tools/venv)",
            venv_bin.join(tool).display()
        );
    }
    let logs = tempfile::tempdir().unwrap();

    // Build the functions first, with the exact cargo invocation watch makes per function
    // (`cargo run --bin NAME` from the workspace root, so the same feature resolution and the
    // same artifacts): watch would otherwise compile them inside the first invocations, which
    // no timeout here could bound sensibly.
    let mut build = Command::new("cargo");
    build.current_dir(&repo).arg("build");
    for stage in Stage::ALL {
        build.args(["--bin", &binary(stage)]);
    }
    tools_env(&mut build, &venv_bin);
    let build_began = Instant::now();
    let mut cargo = Service::spawn("cargo build (functions)", build, logs.path());
    let status = cargo.wait(BUILD_TIMEOUT).await;
    assert!(
        status.success(),
        "building the functions failed ({status}):\n{}",
        cargo.log_tail()
    );
    drop(cargo);
    eprintln!("functions built in {:.1?}", build_began.elapsed());

    // Two identical worlds: one for the engine, one for the local executor.
    let today = Utc::now().date_naive();
    let fixture = Fixture::generate(&GeneratorOptions::new(ACCOUNTS, SEED, today));
    let engine_world = Harness::from_fixture(fixture.clone()).await;
    let local_world = Harness::from_fixture(fixture).await;
    let initial = zendesk_end_state(local_world.sandbox());

    // proxy → watch; moto → proxy (moto calls Lambda at http://localhost:$MOTO_PORT).
    let watch_port = free_port();
    // US Gov's org sync crashes after its first Zendesk write, once (step 0 below).
    let crash = CrashPlan {
        stage: Stage::Sync,
        sync: SyncKind::Usgov,
        after_writes: 1,
    };
    let proxy = lambda_proxy::serve_crashing(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &format!("http://127.0.0.1:{watch_port}"),
        crash,
        engine_world.sandbox().crash_switch(),
    )
    .await
    .unwrap();
    let moto_port = free_port();
    let moto_url = format!("http://127.0.0.1:{moto_port}");
    let mut moto_cmd = Command::new(venv_bin.join("moto_server"));
    moto_cmd
        .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
        .env("MOTO_PORT", proxy.local_addr().port().to_string());
    tools_env(&mut moto_cmd, &venv_bin);
    let mut moto = Service::spawn("moto_server", moto_cmd, logs.path());
    moto.await_port(moto_port).await;
    let http = reqwest::Client::new();
    let config = http
        .post(format!("{moto_url}/moto-api/config"))
        .json(&json!({"stepfunctions": {"execute_state_machine": true}}))
        .send()
        .await
        .unwrap();
    assert!(
        config.status().is_success(),
        "moto refused the config call: {}",
        config.status()
    );

    // What `zdsync sandbox --env-file` writes, pointing the functions at the engine's world.
    let env_file = logs.path().join("sandbox.env");
    let settings = zdsync_cli::sandbox_cmd::environment(
        engine_world.sandbox(),
        &engine_world.data_path().display().to_string(),
    );
    let text: String = settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, text).unwrap();
    let mut watch_cmd = Command::new(venv_bin.join("cargo-lambda"));
    watch_cmd
        .current_dir(&repo)
        .args(["lambda", "watch", "-A", "127.0.0.1", "-P"])
        .arg(watch_port.to_string())
        // The build above is what runs; a source edit during the test must not restart it.
        .arg("--ignore-changes")
        .arg("--env-file")
        .arg(&env_file)
        // Parallel branches invoke one function twice at once, as Lambda would run two instances.
        .args(["--concurrency", "3"])
        // The guard asks the engine for running executions (overlap guard).
        .env("AWS_ENDPOINT_URL_SFN", &moto_url);
    tools_env(&mut watch_cmd, &venv_bin);
    let mut watch = Service::spawn("cargo lambda watch", watch_cmd, logs.path());
    watch.await_port(watch_port).await;
    eprintln!("moto, proxy and watch up after {:.1?}", began.elapsed());

    let sfn = sfn_client(&moto_url);
    let definition = definition(&repo);
    let machine = sfn
        .create_state_machine()
        .name("zdsync-sync")
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT_ID}:role/zdsync-states"))
        .send()
        .await
        .unwrap();
    let machine_arn = machine.state_machine_arn();
    let services = [&moto, &watch];

    // 0. A crash: US Gov's org sync dies after its first write. The execution fails with the
    // error Lambda reports for a process that exited, and what the failed-run rule does in AWS
    // — summarize invoked with the status-change event — names the failed state from the
    // engine's own history. (moto 5.2 has no RedriveExecution: the next execution, not a
    // redrive, carries on from the crash; redrive after a crash is tested with the local
    // executor in tests/failures.rs.)
    let crashed = execute(&sfn, machine_arn, "sfn-engine-crash", "{}", &services).await;
    if crashed.status != ExecutionStatus::Failed || crashed.error.as_deref() != Some(CRASH_ERROR) {
        let report = report(&sfn, &crashed, &services, "expected FAILED with the crash").await;
        panic!("{report}");
    }
    let event = json!({
        "version": "0", "source": "aws.states", "detail-type": summarize::STATUS_CHANGE,
        "detail": {
            "executionArn": crashed.arn, "name": "sfn-engine-crash", "status": "FAILED",
            "startDate": crashed.start.timestamp_millis(), "error": crashed.error,
            "cause": crashed.cause,
        }
    });
    let summarized = http
        .post(format!(
            "{}/2015-03-31/functions/{}/invocations",
            proxy.url(),
            binary(Stage::Summarize)
        ))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert!(
        summarized.headers().get("x-amz-function-error").is_none(),
        "summarize failed: {}",
        summarized.text().await.unwrap_or_default()
    );
    let summary: RunSummary = engine_world
        .artifact("sfn-engine-crash", artifacts::SUMMARY)
        .await;
    let failure = summary.failure.expect("the failed run's summary");
    assert_eq!(failure.state.as_deref(), Some("SyncUsgov"), "{failure:?}");
    assert_eq!(failure.error, CRASH_ERROR);
    assert!(
        summary.stages.contains_key("compare_usgov"),
        "{:?}",
        summary.stages.keys()
    );

    // 1. A full run: SUCCEEDED, and Zendesk ends as the local executor leaves it (after the
    // crashed execution's partial writes, too).
    let run_began = Instant::now();
    let run = execute(&sfn, machine_arn, "sfn-engine-run", "{}", &services).await;
    eprintln!("execution sfn-engine-run took {:.1?}", run_began.elapsed());
    if run.status != ExecutionStatus::Succeeded {
        let report = report(&sfn, &run, &services, "the execution did not succeed").await;
        panic!("{report}");
    }
    let output: Value = serde_json::from_str(run.output.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(output["stage"], "summarize", "execution output: {output}");
    // Every Task state of the definition once (guard, the gathers, process, the compares and
    // syncs of all four syncs, summarize) and no retry: a retried stage would hide a failure.
    let tasks = task_states(&serde_json::from_str(local::SYNC_ASL).unwrap());
    let events = history(&sfn, &run.arn).await;
    let invoked: Vec<&str> = events
        .iter()
        .filter_map(|e| e.lambda_function_scheduled_event_details())
        .map(|d| d.resource())
        .collect();
    let failed = events
        .iter()
        .filter(|e| e.lambda_function_failed_event_details().is_some())
        .count();
    if invoked.len() != tasks || failed != 0 {
        let message = format!("expected {tasks} invocations and no failure, got {invoked:?}");
        panic!("{}", report(&sfn, &run, &services, &message).await);
    }

    // The local run gets the date the engine's run used (`as_of` is its start date).
    let as_of: NaiveDate = run.start.date_naive();
    let local = local::run(
        &local_world.data,
        &local_world.world,
        &RunRequest {
            run_id: "local-run".into(),
            as_of,
            dry_run: false,
            full: false,
            allow_deletions: BTreeMap::new(),
            retry_time_scale: 0.01,
            crash: None,
        },
        &Progress::new(true),
    )
    .await
    .unwrap();
    assert_eq!(
        local.record.status,
        LocalStatus::Succeeded,
        "the local run failed: {:?} {:?}",
        local.record.error,
        local.record.cause
    );

    let engine_end = zendesk_end_state(engine_world.sandbox());
    let local_end = zendesk_end_state(local_world.sandbox());
    assert_ne!(
        local_end, initial,
        "the local run changed nothing, so the comparison would prove nothing"
    );
    for instance in Instance::ALL {
        let state = &local_end[instance.as_str()];
        eprintln!(
            "{instance}: {} organization keys, {} users, {} memberships compared",
            state["organizations"].as_object().map_or(0, |o| o.len()),
            state["users"].as_object().map_or(0, |o| o.len()),
            state["memberships"].as_array().map_or(0, |m| m.len()),
        );
    }
    if let Some(difference) = first_difference(&engine_end, &local_end, "") {
        panic!(
            "Zendesk after the engine's run (left) differs from after `zdsync run` (right): {difference}"
        );
    }
    let engine_summary: RunSummary = engine_world
        .artifact("sfn-engine-run", artifacts::SUMMARY)
        .await;
    let local_summary: RunSummary = local_world.artifact("local-run", artifacts::SUMMARY).await;
    assert_eq!(engine_summary.as_of, Some(as_of));
    // The same stages ran and read the same Salesforce; what the syncs still had to write
    // differs, because the crashed execution had already done part of it.
    let keys = |s: &RunSummary| s.stages.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&engine_summary), keys(&local_summary));
    for stage in [
        "gather_accounts",
        "process",
        "gather_accounts_partners",
        "gather_contacts",
    ] {
        assert_eq!(
            engine_summary.stages[stage].counts, local_summary.stages[stage].counts,
            "{stage} counted differently"
        );
    }

    // 2. A stage error: the guard refuses an unknown execution option with InvalidConfig, which
    // has no Retry, so the execution fails with that name (through the proxy's mapping).
    let bad = execute(
        &sfn,
        machine_arn,
        "sfn-engine-invalid",
        r#"{"allow_deletion": 1}"#,
        &services,
    )
    .await;
    if bad.status != ExecutionStatus::Failed || bad.error.as_deref() != Some("InvalidConfig") {
        let report = report(
            &sfn,
            &bad,
            &services,
            "expected FAILED with error InvalidConfig",
        )
        .await;
        panic!("{report}");
    }
    let cause = bad.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("allow_deletion"),
        "the cause should carry the guard's message: {cause}"
    );
    let history = history(&sfn, &bad.arn).await;
    let failed_task = history
        .iter()
        .find_map(|e| e.lambda_function_failed_event_details())
        .expect("a LambdaFunctionFailed event");
    assert_eq!(failed_task.error(), Some("InvalidConfig"));
    let scheduled = history
        .iter()
        .filter(|e| e.lambda_function_scheduled_event_details().is_some())
        .count();
    assert_eq!(
        scheduled, 1,
        "InvalidConfig is not retried and no later state runs"
    );
    assert!(
        !engine_world.artifact_exists("sfn-engine-invalid", artifacts::SUMMARY),
        "a failed guard writes nothing"
    );

    proxy.shutdown().await;
    eprintln!("sfn engine test took {:.1?}", began.elapsed());
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

fn binary(stage: Stage) -> String {
    format!("zdsync-{}", stage.function_name())
}

/// The environment of every child: the venv's tools first on PATH, this test's target directory
/// (so watch runs the functions built above, and a warm rerun builds nothing), dummy AWS
/// credentials, and nothing of the developer's own `ZDSYNC_*`/`AWS_*` settings (an unknown
/// `ZDSYNC_*` variable fails a function's configuration; a real AWS profile must not be used).
fn tools_env(command: &mut Command, venv_bin: &Path) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("ZDSYNC_") || key.starts_with("AWS_") {
            command.env_remove(key.as_ref());
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![venv_bin.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    command
        .env("PATH", std::env::join_paths(paths).unwrap())
        .env("CARGO_TARGET_DIR", target_dir())
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        // The SDK would otherwise ask the (absent) EC2 metadata service for a region/credentials.
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

/// This test binary's target directory (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .to_path_buf()
}

/// A port nobody listens on now (the child binds it moments later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The ASL with every Task pointed at `arn:aws:lambda:us-east-1:123456789012:function:zdsync-<stage>`.
fn definition(repo: &Path) -> String {
    let text = std::fs::read_to_string(repo.join("statemachine/sync.asl.json")).unwrap();
    let arns = Stage::ALL
        .into_iter()
        .map(|stage| {
            let arn = format!(
                "arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{}",
                binary(stage)
            );
            (stage.substitution().to_owned(), arn)
        })
        .collect();
    zdsync_cli::asl::substitute(&text, &arns).expect("every substitution is a stage's function")
}

fn sfn_client(endpoint: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

/// A finished execution.
struct Finished {
    arn: String,
    status: ExecutionStatus,
    start: DateTime<Utc>,
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

/// Starts an execution (moto needs the `name`) and polls it until it ends.
async fn execute(
    sfn: &aws_sdk_sfn::Client,
    machine_arn: &str,
    name: &str,
    input: &str,
    services: &[&Service],
) -> Finished {
    let started = sfn
        .start_execution()
        .state_machine_arn(machine_arn)
        .name(name)
        .input(input)
        .send()
        .await
        .unwrap();
    let arn = started.execution_arn().to_owned();
    let deadline = Instant::now() + EXECUTION_TIMEOUT;
    loop {
        let described = sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "describe_execution {name}: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                )
            });
        if *described.status() != ExecutionStatus::Running {
            let start = described.start_date();
            return Finished {
                arn,
                status: described.status().clone(),
                start: DateTime::from_timestamp(start.secs(), start.subsec_nanos()).unwrap(),
                output: described.output().map(str::to_owned),
                error: described.error().map(str::to_owned),
                cause: described.cause().map(str::to_owned),
            };
        }
        if Instant::now() > deadline {
            let _ = sfn.stop_execution().execution_arn(&arn).send().await;
            let running = Finished {
                arn,
                status: ExecutionStatus::Running,
                start: Utc::now(),
                output: None,
                error: None,
                cause: None,
            };
            let message = format!("{name} still running after {EXECUTION_TIMEOUT:?}");
            panic!("{}", report(sfn, &running, services, &message).await);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn history(sfn: &aws_sdk_sfn::Client, arn: &str) -> Vec<HistoryEvent> {
    let mut events = Vec::new();
    let mut pages = sfn
        .get_execution_history()
        .execution_arn(arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        events.extend(page.unwrap().events().iter().cloned());
    }
    events
}

/// Why the test fails: the execution's history and the servers' logs.
async fn report(
    sfn: &aws_sdk_sfn::Client,
    execution: &Finished,
    services: &[&Service],
    message: &str,
) -> String {
    let mut report = format!(
        "{message}: status {:?}, error {:?}, cause {:?}\n\nhistory:\n",
        execution.status, execution.error, execution.cause
    );
    for event in history(sfn, &execution.arn).await {
        report.push_str(&describe(&event));
        report.push('\n');
    }
    for service in services {
        report.push_str(&format!(
            "\n--- {} log (tail) ---\n{}",
            service.name,
            service.log_tail()
        ));
    }
    report
}

/// One history event in a line (the SDK's `Debug` redacts inputs, errors and causes).
fn describe(event: &HistoryEvent) -> String {
    let mut line = format!("{:>3} {}", event.id(), event.r#type().as_str());
    if let Some(d) = event.state_entered_event_details() {
        line.push_str(&format!(" {}", d.name()));
    }
    if let Some(d) = event.lambda_function_scheduled_event_details() {
        line.push_str(&format!(
            " {} input {}",
            d.resource(),
            d.input().unwrap_or_default()
        ));
    }
    if let Some(d) = event.lambda_function_succeeded_event_details() {
        line.push_str(&format!(" output {}", d.output().unwrap_or_default()));
    }
    let failure = event
        .lambda_function_failed_event_details()
        .map(|d| (d.error(), d.cause()))
        .or(event
            .execution_failed_event_details()
            .map(|d| (d.error(), d.cause())));
    if let Some((error, cause)) = failure {
        line.push_str(&format!(
            " error {} cause {}",
            error.unwrap_or_default(),
            cause.unwrap_or_default()
        ));
    }
    line
}

/// A child process with its output in a log file. Dropping it (also while panicking) ends it
/// and every process it started: watch runs each function in a process group of its own.
struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Service {
    fn spawn(name: &'static str, mut command: Command, log_dir: &Path) -> Service {
        let log = log_dir.join(format!("{}.log", name.replace(' ', "-")));
        let out = File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({command:?}): {e}"));
        Service { name, child, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Waits (bounded) for the process to exit.
    async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not finish within {timeout:?}:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (bounded) until the process accepts connections on `port`.
    async fn await_port(&mut self, port: u16) {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}):\n{}", self.name, self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on port {port} within {START_TIMEOUT:?}:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let root = self.child.id() as i32;
        let mut tree = descendants(root);
        tree.push(root);
        signal(&tree, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever ignored SIGTERM (or was started meanwhile) is killed.
        let mut left = descendants(root);
        left.extend(tree);
        signal(&left, libc::SIGKILL);
        let _ = self.child.wait();
        if std::thread::panicking() {
            // Not eprintln!: a closed stderr (e.g. `| head`) would panic inside the panic and
            // abort the test before the other children are ended.
            let _ = writeln!(
                std::io::stderr(),
                "--- {} log (tail) ---\n{}",
                self.name,
                self.log_tail()
            );
        }
    }
}

/// Every live process below `root` (Linux: the parent pid from /proc/<pid>/stat).
fn descendants(root: i32) -> Vec<i32> {
    let mut parents: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
        let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        if let Some(ppid) = after_comm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
        {
            parents.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in parents.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

fn signal(pids: &[i32], signal: libc::c_int) {
    for &pid in pids {
        // SAFETY: kill(2) has no memory effects; the pids are processes this test started
        // (a recycled pid within these few milliseconds is the only, accepted, risk).
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The Task states of an ASL definition, inside Parallel branches too.
fn task_states(definition: &Value) -> usize {
    definition["States"]
        .as_object()
        .into_iter()
        .flat_map(|states| states.values())
        .map(|state| match state["Type"].as_str() {
            Some("Task") => 1,
            Some("Parallel") => state["Branches"]
                .as_array()
                .into_iter()
                .flatten()
                .map(task_states)
                .sum(),
            _ => 0,
        })
        .sum()
}
