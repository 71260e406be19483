//! Failure without mess (SPEC §8, §10): runs under the faults of the real world end exactly as
//! clean runs; a failing branch lets the other finish what it started; a failed run reports
//! itself and is redriven to the same end; two runs at once do the work once.

use std::collections::BTreeMap;

use serde_json::Value;
use zdsync::model::{Instance, RunStatus, RunSummary, SyncKind};
use zdsync::stages::{Stage, artifacts};
use zdsync_cli::asl::{ExecutionStatus, StateStatus};
use zdsync_cli::local::{CRASH_ERROR, CrashPlan};
use zdsync_e2e::{Harness, first_difference, succeeded, zendesk_end_state};
use zdsync_sandbox::Faults;

/// The world every test here starts from, and the state a clean run leaves it in.
async fn clean_end_state() -> Value {
    let h = Harness::generated(60, 7).await;
    succeeded(&h.run("e2e-clean").await);
    zendesk_end_state(h.sandbox())
}

fn assert_same_end(clean: &Value, h: &Harness, what: &str) {
    if let Some(difference) = first_difference(clean, &zendesk_end_state(h.sandbox()), "") {
        panic!("{what} (right) ends differently from a clean run (left): {difference}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_throttling_5xx_dropped_connections_and_lost_answers_a_run_ends_as_a_clean_one() {
    let clean = clean_end_state().await;
    let h = Harness::generated(60, 7).await;
    h.sandbox()
        .set_faults(Faults::everywhere(0.15, 0.15, 0.08, 0.08))
        .unwrap();
    let outcome = h.run("e2e-faults").await;
    h.sandbox().set_faults(Faults::none()).unwrap();
    succeeded(&outcome);
    assert_same_end(&clean, &h, "the faulted run");

    let counters = h.sandbox().counters();
    let faulted: u64 = counters.faulted.values().map(|t| t.total() + t.lost).sum();
    let lost: u64 = counters.faulted.values().map(|t| t.lost).sum();
    assert!(
        faulted >= 10 && lost >= 1,
        "the faults happened: {:#?}",
        counters.faulted
    );
    let summary = outcome.summary.unwrap();
    assert!(
        summary.calls.retries() >= faulted - lost,
        "the summary reports the retries: {:?} for {faulted} faults",
        summary.calls
    );
    for sync in SyncKind::ALL {
        let stage = &summary.stages[&format!("sync_{sync}")];
        assert_eq!(stage.counts["errors"], 0, "{sync}: {:?}", stage.errors);
    }
    println!(
        "faults: {faulted} faulted requests ({lost} lost answers); {} retries in the summary",
        summary.calls.retries()
    );

    // And nothing is left to do.
    h.sandbox().reset_counters();
    succeeded(&h.run("e2e-faults-again").await);
    for instance in Instance::ALL {
        assert_eq!(h.zendesk_writes(instance), 0, "{instance}");
    }
}

/// SPEC §10: Global trips its deletion guard while US Gov is at work. US Gov's running stage
/// finishes and is on record, the failed run gets its summary and one alert, and a redrive with
/// the allowance ends where an uninterrupted run with the allowance would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_tripping_its_guard_lets_the_other_finish_and_the_failed_run_reports_itself() {
    let mut h = Harness::generated(60, 7).await;
    // Global marks 3 orgs; US Gov, the partners and the users 1 each.
    h.world.settings_mut().sync.deletion_guard_min = 2;
    h.world.settings_mut().sync.deletion_guard_ratio = 0.0;
    let run = "e2e-branch-fails";
    let failed = h.run(run).await;
    assert_eq!(failed.record.status, ExecutionStatus::Failed);
    assert_eq!(failed.record.error.as_deref(), Some("DeletionGuardTripped"));
    assert_eq!(failed.record.failed_states()[0], "Instances[0].SyncGlobal");
    // Every US Gov state that started ran to its end: none was cut off. One still running when
    // Global failed is on record as aborted, as Step Functions records a stopped branch's
    // state, so the redrive runs it again.
    let usgov: Vec<(&String, StateStatus)> = failed
        .record
        .states
        .iter()
        .filter(|(path, _)| path.starts_with("Instances[1]."))
        .map(|(path, state)| (path, state.status))
        .collect();
    assert!(
        usgov.iter().any(|(p, _)| p.ends_with("SyncUsgov")),
        "US Gov was at work: {usgov:?}"
    );
    assert!(
        usgov
            .iter()
            .all(|(_, s)| matches!(s, StateStatus::Succeeded | StateStatus::Aborted)),
        "{usgov:?}"
    );
    assert!(
        failed
            .record
            .aborted_states()
            .iter()
            .all(|p| p.starts_with("Instances[1].")),
        "only the branch still at work was stopped: {:?}",
        failed.record.aborted_states()
    );
    assert!(h.artifact_exists(run, &artifacts::sync_result(SyncKind::Usgov)));

    // The summary of the failed run: what each stage did, where and why it stopped.
    let summary: RunSummary = h.artifact(run, artifacts::SUMMARY).await;
    assert_eq!(summary.status, RunStatus::Failed);
    let failure = summary.failure.clone().unwrap();
    assert_eq!(failure.state.as_deref(), Some("Instances[0].SyncGlobal"));
    assert_eq!(failure.error, "DeletionGuardTripped");
    assert!(
        failure.cause.contains("3 orgs would be marked"),
        "{}",
        failure.cause
    );
    for stage in [
        "gather_accounts",
        "gather_orgs_global",
        "process",
        "sync_usgov",
        "sync_global",
    ] {
        assert!(
            summary.stages.contains_key(stage),
            "{stage} in {:?}",
            summary.stages.keys()
        );
    }
    assert_eq!(
        summary.stages["sync_global"].error.as_deref(),
        Some("DeletionGuardTripped")
    );
    // The tripped sync applied its creates and updates: the summary says so.
    let global = &summary.stages["sync_global"].counts;
    let result: zdsync::model::SyncResult = h
        .artifact(run, &artifacts::sync_result(SyncKind::Global))
        .await;
    assert_eq!(global["created"], result.created.len() as u64, "{global:?}");
    assert_eq!(global["updated"], result.updated.len() as u64, "{global:?}");
    assert!(global["created"] > 0 && global["marked"] == 0, "{global:?}");
    assert!(
        summary
            .guard_decisions
            .iter()
            .any(|d| d.starts_with("global: deletion guard TRIPPED"))
    );
    // The report of the failed run: where it stopped, and the summary's numbers for every
    // sync that got as far as compare (the partner sync, after Global's, never started).
    let report = zdsync_e2e::report_md(&h, run);
    zdsync_e2e::assert_report_counts_are_the_summarys(&report, &summary, false);
    for part in [
        "- status: **FAILED**",
        "- failed state: Instances[0].SyncGlobal",
        "- error: `DeletionGuardTripped`",
        &format!("`zdsync redrive {run}`"),
        "global: deletion guard TRIPPED",
        "| Global orgs | ",
        "| US Gov users | ",
    ] {
        assert!(report.contains(part), "{part:?} in\n{report}");
    }
    assert!(!report.contains("| Global partners | "), "{report}");
    assert_eq!(
        zdsync::stages::latest_run(h.data.store().as_ref())
            .await
            .unwrap()
            .as_deref(),
        Some(run)
    );
    // `zdsync report` without a run id prints the latest run's report: this one.
    let printed = std::process::Command::new(zdsync_binary())
        .args(["report", "--data-dir"])
        .arg(h.data_path())
        .output()
        .unwrap();
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&printed.stdout), report);
    // One alert, naming the run, the state, the error and the report.
    let alerts: Vec<String> = h
        .sandbox()
        .slack_messages()
        .into_iter()
        .filter_map(|m| m.text)
        .filter(|t| t.contains(" FAILED"))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    for part in [
        &format!("zdsync run {run} FAILED at Instances[0].SyncGlobal: DeletionGuardTripped"),
        &format!("runs/{run}/report.md"),
        &format!("runs/{run}/summary.json"),
    ] {
        assert!(alert.contains(part.as_str()), "{part} in {alert}");
    }

    // Redrive with the allowance: the failed sync and what its failure cut off run again.
    zdsync::stages::allow_deletions(
        h.data.store().as_ref(),
        run,
        &BTreeMap::from([(SyncKind::Global, 3)]),
    )
    .await
    .unwrap();
    let progress = zdsync_cli::local::Progress::new(true);
    let redriven = zdsync_cli::local::redrive(&h.data, &h.world, run, 0.01, &progress)
        .await
        .unwrap();
    succeeded(&redriven);
    let summary = redriven.summary.unwrap();
    assert_eq!(summary.status, RunStatus::Succeeded);
    assert_eq!(summary.stages["sync_global"].counts["marked"], 3);
    // The redrive's summary rewrote the report: succeeded, with the redriven counts.
    let report = zdsync_e2e::report_md(&h, run);
    zdsync_e2e::assert_report_counts_are_the_summarys(&report, &summary, false);
    assert!(report.contains("- status: **SUCCEEDED**"), "{report}");

    // The same end as one run with the allowance given at the start.
    let mut reference = Harness::generated(60, 7).await;
    reference.world.settings_mut().sync.deletion_guard_min = 2;
    reference.world.settings_mut().sync.deletion_guard_ratio = 0.0;
    succeeded(
        &reference
            .run_with(
                "e2e-allowed-at-start",
                false,
                BTreeMap::from([(SyncKind::Global, 3)]),
            )
            .await,
    );
    let expected = zendesk_end_state(reference.sandbox());
    assert_same_end(&expected, &h, "the redriven run");
}

/// The `zdsync` binary of this build, brought up to date with the workspace's features (what
/// `cargo test --workspace --all-features` builds, so in CI this builds nothing).
fn zdsync_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = std::process::Command::new(env!("CARGO"))
                .args(["build", "--workspace", "--all-features", "--bins", "-q"])
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .status()
                .unwrap();
            assert!(status.success(), "building zdsync failed");
            std::env::current_exe()
                .unwrap()
                .parent()
                .and_then(|deps| deps.parent())
                .unwrap()
                .join("zdsync")
        })
        .clone()
}

/// SPEC §10's overlap guard, as two people (or a person and the schedule) would trip it: two
/// `zdsync run` processes on one data directory and one Zendesk. One does the work, the other
/// ends `Skipped` without a call, and Zendesk ends as after one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_started_together_do_the_work_once() {
    let clean = clean_end_state().await;
    let h = Harness::generated(60, 7).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("zdsync.toml");
    std::fs::write(&config, "# every setting from the environment\n").unwrap();
    let env = zdsync_cli::sandbox_cmd::environment(h.sandbox(), &data.display().to_string());
    let zdsync = zdsync_binary();
    let start = |run_id: &str| {
        std::process::Command::new(&zdsync)
            .args([
                "run",
                "--quiet",
                "--as-of",
                zdsync_e2e::AS_OF,
                "--run-id",
                run_id,
            ])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start("overlap-a"), start("overlap-b"));
    let (a, b) = tokio::task::spawn_blocking(move || {
        (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
    })
    .await
    .unwrap();
    for output in [&a, &b] {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let record = |run_id: &str| {
        zdsync_cli::local::DataDir::new(&data)
            .load_execution(run_id)
            .unwrap()
    };
    let skipped: Vec<&str> = ["overlap-a", "overlap-b"]
        .into_iter()
        .filter(|run| record(run).states.contains_key("Skipped"))
        .collect();
    assert_eq!(skipped.len(), 1, "exactly one run is skipped: {skipped:?}");
    let skipped = skipped[0];
    assert_eq!(
        record(skipped).states.len(),
        3,
        "guard, overlap check, skipped: {:?}",
        record(skipped).states.keys()
    );
    assert!(
        !data.join("runs").join(skipped).join("stages").exists(),
        "no stage of it ran"
    );
    assert_same_end(&clean, &h, "two runs at once");
}

/// Crashes the sync of `sync` after its first Zendesk write (of three or more: some, not all,
/// of its jobs were submitted), redrives, and checks the end is an uninterrupted run's.
async fn crash_and_redrive(sync: SyncKind) {
    let clean = clean_end_state().await;
    let h = Harness::generated(60, 7).await;
    let run = format!("e2e-crash-{sync}");
    let state = match sync {
        SyncKind::Global => "Instances[0].SyncGlobal",
        SyncKind::Partners => "Instances[0].SyncPartners",
        SyncKind::Usgov => "Instances[1].SyncUsgov",
        SyncKind::Users => "Instances[1].SyncUsers",
    };
    let plan = CrashPlan {
        stage: Stage::Sync,
        sync,
        after_writes: 1,
    };
    let crashed = h.run_crashing(&run, plan).await;
    assert_eq!(crashed.record.status, ExecutionStatus::Failed);
    assert_eq!(crashed.record.error.as_deref(), Some(CRASH_ERROR));
    assert_eq!(crashed.record.failed_states()[0], state);
    // A crashed function leaves at most its place (saved per window), never a finished
    // result; the run's summary says where it stopped.
    if h.artifact_exists(&run, &artifacts::sync_result(sync)) {
        let place: zdsync::model::SyncResult =
            h.artifact(&run, &artifacts::sync_result(sync)).await;
        assert!(place.progress.is_some(), "{sync}: an unfinished place");
    }
    let failure = crashed.summary.unwrap().failure.unwrap();
    assert_eq!(failure.state.as_deref(), Some(state));
    assert!(
        zendesk_end_state(h.sandbox()) != clean,
        "the crash left work undone"
    );

    let redriven = h.redrive(&run).await;
    succeeded(&redriven);
    assert_eq!(redriven.record.redrive_count, 1);
    assert_same_end(&clean, &h, &format!("a redrive after {sync}'s crash"));
    // The redriven sync says what it re-did: the creates that had landed before the crash
    // count as done — settled by the crashed attempt in its saved place, or learned by the
    // redrive from their jobs or found taken (`already`) — and nothing is an error.
    let result: zdsync::model::SyncResult = h.artifact(&run, &artifacts::sync_result(sync)).await;
    assert!(result.errors.is_empty(), "{:#?}", result.errors);
    let summary = redriven.summary.unwrap();
    let stage = &summary.stages[&format!("sync_{sync}")];
    assert_eq!(
        stage.counts["already_done"],
        result.created.iter().filter(|c| c.already).count() as u64
    );
    if sync != SyncKind::Users || !result.created.is_empty() {
        assert!(
            result.created.iter().any(|c| c.attempt == 0 || c.already),
            "{sync}: the creates of the crashed attempt are found done: {:#?}",
            result.created
        );
        // The summary tells the redrive's work from the crashed attempt's.
        assert!(
            summary.attempts.iter().any(|line| line
                .starts_with(&format!("{sync}: this redrive (attempt 2)"))
                && line.contains("earlier attempts created")),
            "{:?}",
            summary.attempts
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_org_sync_crashed_after_its_creates_is_redriven_without_duplicates() {
    crash_and_redrive(SyncKind::Global).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_us_gov_org_sync_crashed_mid_way_is_redriven_without_duplicates() {
    crash_and_redrive(SyncKind::Usgov).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_sync_crashed_mid_way_is_redriven_without_duplicates() {
    crash_and_redrive(SyncKind::Partners).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_sync_crashed_mid_way_is_redriven_without_duplicates() {
    crash_and_redrive(SyncKind::Users).await;
}

/// The local orchestrator itself killed mid-run (as a person's Ctrl-C or an OOM kill would):
/// `zdsync redrive` takes the execution from the states that finished, and the end is an
/// uninterrupted run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_zdsync_run_is_redriven_to_the_end() {
    let clean = clean_end_state().await;
    let h = Harness::generated(60, 7).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("zdsync.toml");
    std::fs::write(&config, "# every setting from the environment\n").unwrap();
    let env = zdsync_cli::sandbox_cmd::environment(h.sandbox(), &data.display().to_string());
    let zdsync = zdsync_binary();
    let command = |args: &[&str]| {
        let mut command = std::process::Command::new(&zdsync);
        command
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        command
    };
    let mut run = command(&[
        "run",
        "--quiet",
        "--as-of",
        zdsync_e2e::AS_OF,
        "--run-id",
        "killed",
    ])
    .spawn()
    .unwrap();
    // Kill it once Zendesk has taken some of its writes.
    let began = std::time::Instant::now();
    while h.zendesk_writes(Instance::Global) + h.zendesk_writes(Instance::Usgov) < 2 {
        assert!(
            began.elapsed() < std::time::Duration::from_secs(60),
            "no write came"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let record = zdsync_cli::local::DataDir::new(&data)
        .load_execution("killed")
        .unwrap();
    assert_eq!(
        record.status,
        ExecutionStatus::Running,
        "killed before it could finish"
    );
    assert!(
        !record.states.is_empty(),
        "the states that finished are on record"
    );

    let redrive = command(&["redrive", "killed", "--quiet"]).output().unwrap();
    assert!(
        redrive.status.success(),
        "{}",
        String::from_utf8_lossy(&redrive.stderr)
    );
    let record = zdsync_cli::local::DataDir::new(&data)
        .load_execution("killed")
        .unwrap();
    assert_eq!(record.status, ExecutionStatus::Succeeded);
    assert_same_end(&clean, &h, "a redrive after the run was killed");
}

/// Every value that grants access in this test's world: the Salesforce app and user secrets
/// and every access token the org issued, the Zendesk API tokens (bare and as the Basic
/// header carries them), the Slack webhook, and a wrong token given on purpose.
fn secrets_of(h: &Harness, extra: &[(&str, Instance, String)]) -> Vec<(String, String)> {
    use base64::Engine;
    let sf = h.sandbox().salesforce();
    let options = sf.options();
    let mut secrets = vec![
        (
            "salesforce client secret".to_owned(),
            options.client_secret.clone(),
        ),
        ("salesforce password".to_owned(), options.password.clone()),
        (
            "salesforce security token".to_owned(),
            options.security_token.clone(),
        ),
    ];
    for (i, token) in sf.issued_tokens().into_iter().enumerate() {
        // The part after the org id prefix is the secret one.
        let secret = token
            .split_once('!')
            .map_or(token.clone(), |(_, s)| s.to_owned());
        secrets.push((format!("salesforce access token {i}"), secret));
    }
    let email = |instance| {
        h.sandbox()
            .zendesk_credentials(zdsync_e2e::zendesk(instance))
            .email
    };
    let mut tokens: Vec<(String, String, String)> = Instance::ALL
        .into_iter()
        .map(|instance| {
            let token = h
                .sandbox()
                .zendesk_credentials(zdsync_e2e::zendesk(instance))
                .token;
            (format!("zendesk {instance} token"), email(instance), token)
        })
        .collect();
    for (what, instance, value) in extra {
        tokens.push((what.to_string(), email(*instance), value.clone()));
    }
    for (what, email, token) in tokens {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{email}/token:{token}"));
        secrets.push((format!("{what} (Basic header)"), basic));
        secrets.push((what, token));
    }
    let webhook = h.sandbox().slack_webhook_url();
    let webhook_path = webhook.split_once("/services/").unwrap().1.to_owned();
    secrets.push(("slack webhook path".to_owned(), webhook_path));
    for (_, value) in &secrets {
        assert!(
            value.len() >= 8,
            "a secret long enough to search for: {value:?}"
        );
    }
    secrets
}

/// Where `secrets` appear in `text`, as "secret in place" lines.
fn leaks(place: &str, text: &str, secrets: &[(String, String)]) -> Vec<String> {
    secrets
        .iter()
        .filter(|(_, value)| text.contains(value.as_str()))
        .map(|(what, _)| format!("{what} in {place}"))
        .collect()
}

/// No secret reaches a log line (at debug level, dependencies' logs included), an artifact,
/// `execution.json`, the summary, an error or a Slack message — through a failed run with its
/// alert, a redrive under faults with the password grant, and a run refused by Zendesk for a
/// wrong token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_an_artifact_or_an_error() {
    // The overrides file comes from a private project, fetched with a token.
    let fixture = zdsync_sandbox::Fixture::generate(&zdsync_sandbox::GeneratorOptions::new(
        60,
        7,
        zdsync_e2e::as_of(),
    ));
    let overrides_token = "glpat-secret-overrides-5d81a2c0".to_owned();
    let overrides_id =
        fixture.generated.as_ref().unwrap().scenarios["expired_over_15_days"][0].clone();
    let overrides = zdsync_sandbox::GitlabFile {
        project: "gitlab-com%2Fsupport%2Fmanaged-content".into(),
        path: "overrides.yaml".into(),
        content: format!(
            "- salesforce_id: {overrides_id}\n  reason: https://tracker.example/1\n  fields: {{ support_level: premium }}\n"
        ),
        token: Some(overrides_token.clone()),
    };
    let h = Harness::tuned(fixture, |c| c.gitlab_files = vec![overrides.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("zdsync.toml");
    std::fs::write(&config, "# every setting from the environment\n").unwrap();
    let options = h.sandbox().salesforce().options().clone();
    let mut env = zdsync_cli::sandbox_cmd::environment(h.sandbox(), &data.display().to_string());
    for (key, value) in [
        ("RUST_LOG", "debug".to_owned()),
        // The password grant, so the password is in play too.
        ("ZDSYNC_SALESFORCE_GRANT", "password".to_owned()),
        ("ZDSYNC_SALESFORCE_USERNAME", options.username.clone()),
        (
            "ZDSYNC_SALESFORCE_PASSWORD",
            format!("{}{}", options.password, options.security_token),
        ),
        // Global's 3 marks trip the guard: a failed run, its summary and its alert.
        ("ZDSYNC_SYNC_DELETION_GUARD_MIN", "2".to_owned()),
        ("ZDSYNC_SYNC_DELETION_GUARD_RATIO", "0".to_owned()),
        (
            "ZDSYNC_SYNC_OVERRIDES",
            overrides.url(&h.sandbox().base_url()),
        ),
        ("ZDSYNC_SYNC_OVERRIDES_TOKEN", overrides_token.clone()),
    ] {
        env.push((key.to_owned(), value));
    }
    let zdsync = zdsync_binary();
    let invoke = |args: &[&str], env: &[(String, String)]| {
        let output = std::process::Command::new(&zdsync)
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let run = ["run", "--as-of", zdsync_e2e::AS_OF, "--run-id"];
    let mut logs = Vec::new();

    let (ok, log) = invoke(&[&run[..], &["secrets-failed"]].concat(), &env);
    assert!(!ok, "the guard trips: {log}");
    logs.push(("the failed run's output", log));
    assert!(
        h.sandbox()
            .slack_messages()
            .iter()
            .any(|m| m.payload.to_string().contains("secrets-failed")),
        "the alert was sent"
    );

    h.sandbox()
        .set_faults(Faults::everywhere(0.15, 0.15, 0.08, 0.08))
        .unwrap();
    let (ok, log) = invoke(
        &["redrive", "secrets-failed", "--allow-deletions", "global=3"],
        &env,
    );
    h.sandbox().set_faults(Faults::none()).unwrap();
    assert!(ok, "the redrive under faults converges: {log}");
    logs.push(("the redrive's output", log));

    let wrong = "wrong-token-3f9c1e7a".to_owned();
    let mut refused = env.clone();
    refused.push(("ZDSYNC_ZENDESK_USGOV_TOKEN".to_owned(), wrong.clone()));
    let (ok, log) = invoke(&[&run[..], &["secrets-refused"]].concat(), &refused);
    assert!(!ok, "US Gov refuses the wrong token: {log}");
    assert!(log.contains("secrets-refused"), "{log}");
    logs.push(("the refused run's output", log));

    // A wrong overrides token: the process stage is refused, naming the setting.
    let wrong_overrides = "glpat-wrong-overrides-9e04b7f1".to_owned();
    let mut refused_overrides = env.clone();
    refused_overrides.push((
        "ZDSYNC_SYNC_OVERRIDES_TOKEN".to_owned(),
        wrong_overrides.clone(),
    ));
    let (ok, log) = invoke(
        &[&run[..], &["secrets-overrides-refused"]].concat(),
        &refused_overrides,
    );
    assert!(!ok, "the wrong overrides token is refused: {log}");
    assert!(log.contains("sync.overrides_token"), "{log}");
    logs.push(("the refused overrides run's output", log));

    let mut secrets = secrets_of(&h, &[("the wrong US Gov token", Instance::Usgov, wrong)]);
    secrets.push(("the overrides token".to_owned(), overrides_token));
    secrets.push(("the wrong overrides token".to_owned(), wrong_overrides));
    // The search finds what it looks for: every configured secret is in the environment given.
    let given = format!("{refused:?}");
    for what in [
        "salesforce client secret",
        "salesforce security token",
        "zendesk global token",
        "the wrong US Gov token",
        "slack webhook path",
        "the overrides token",
    ] {
        assert!(
            leaks("env", &given, &secrets)
                .iter()
                .any(|l| l.starts_with(what)),
            "{what} is searched for"
        );
    }
    assert!(
        secrets
            .iter()
            .any(|(what, _)| what.starts_with("salesforce access token")),
        "access tokens were issued"
    );
    let mut found = Vec::new();
    for (place, log) in &logs {
        assert!(
            log.lines().filter(|l| l.contains("DEBUG")).count() >= 20,
            "{place} was logged at debug level:\n{log}"
        );
        found.extend(leaks(place, log, &secrets));
    }
    let mut files = 0;
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let mut body = std::fs::read(&path).unwrap();
                // A big artifact's blob is gzip: look inside it.
                if path.to_string_lossy().ends_with(".json.gz") {
                    body = zdsync::store::blob::decompress(&body).unwrap();
                }
                let text = String::from_utf8_lossy(&body).into_owned();
                found.extend(leaks(&path.display().to_string(), &text, &secrets));
            }
        }
    }
    assert!(
        files >= 40,
        "the runs' artifacts, records and summaries: {files}"
    );
    for message in h.sandbox().slack_messages() {
        found.extend(leaks("a Slack message", &format!("{message:?}"), &secrets));
    }
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}
