//! The end of a run: one `summary.json` an operator reads first — what each stage counted, what
//! each of the four syncs did, which guard decisions were taken, and the first record errors.
//!
//! It runs as the state machine's last state, and for an execution that failed, timed out or
//! was aborted it runs too (SPEC §10): in AWS an EventBridge rule on the execution's status
//! change invokes it with the event, locally `zdsync run` and `redrive` call it. Then it also
//! names the failed state and the error, and sends the one alert.

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;

// A missing artifact is fine here (a dry run has no sync results); a corrupt one is not,
// except in a failed run's summary and report, which are written with what could be read.
use super::artifacts;
use super::context::StageContext;
use super::input::StageOutput;
use super::input::parse_input;
use super::report;
use super::stats::StageStats;
use super::table::Stage;
use crate::error::StageError;
use crate::model::{
    AttemptCounts, LatestRun, Pending, RunFailure, RunStatus, RunSummary, SalesforceApi, SyncKind,
    SyncResult,
};
use crate::store::{
    ArtifactStore, RunKeys, StoreError, read_json_opt, validate_run_id, write_json,
};

/// Record errors copied into the summary (the sync results hold all of them).
const ERRORS_SHOWN: usize = 20;

/// What the summarize stage is asked to summarize.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummarizeInput {
    pub run_id: String,
    pub as_of: NaiveDate,
    /// The run stopped after compare.
    #[serde(default)]
    pub dry_run: bool,
    /// Set for an execution that did not succeed.
    #[serde(default)]
    pub failure: Option<RunFailure>,
}

/// EventBridge's "Step Functions Execution Status Change" event (the fields the summary uses).
#[derive(Debug, Deserialize)]
struct StatusChange {
    detail: StatusChangeDetail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusChangeDetail {
    execution_arn: String,
    name: String,
    status: String,
    /// Milliseconds since the epoch.
    start_date: i64,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
    /// The execution's input, as JSON text.
    #[serde(default)]
    input: Option<String>,
}

/// Whether a stopped execution was a dry run, from its input (the guard refused any input it
/// could not read, so unreadable input here means the run stopped before it: not a dry run).
fn was_dry_run(input: Option<&str>) -> bool {
    input
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|input| input.get("dry_run").and_then(Value::as_bool))
        .unwrap_or(false)
}

pub const STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// The stage's input: the state machine's `{run_id, as_of, …}`, or the status-change event of
/// a stopped execution, whose history then names the failed state.
pub async fn input(ctx: &StageContext, input: Value) -> Result<SummarizeInput, StageError> {
    if input.get("detail-type").and_then(Value::as_str) != Some(STATUS_CHANGE) {
        return parse_input(Stage::Summarize, input);
    }
    let event: StatusChange = parse_input(Stage::Summarize, input)?;
    let detail = event.detail;
    let status = match detail.status.as_str() {
        "FAILED" => RunStatus::Failed,
        "TIMED_OUT" => RunStatus::TimedOut,
        "ABORTED" => RunStatus::Aborted,
        other => {
            return Err(StageError::InvalidConfig(format!(
                "the summarize stage summarizes stopped executions; this event is for a {other} one"
            )));
        }
    };
    let ended = match &ctx.executions {
        Some(executions) => executions.how_it_ended(&detail.execution_arn).await?,
        None => Default::default(),
    };
    let as_of = DateTime::from_timestamp_millis(detail.start_date)
        .ok_or_else(|| {
            StageError::InvalidConfig(format!(
                "the event's startDate {} is not a time",
                detail.start_date
            ))
        })?
        .date_naive();
    Ok(SummarizeInput {
        run_id: detail.name,
        as_of,
        dry_run: was_dry_run(detail.input.as_deref()),
        failure: Some(RunFailure {
            status,
            state: ended.failed_state,
            error: detail.error.unwrap_or_else(|| match status {
                RunStatus::TimedOut => "States.Timeout".into(),
                RunStatus::Aborted => "ExecutionAborted".into(),
                _ => "Failed".into(),
            }),
            cause: detail.cause.unwrap_or_default(),
            running: ended.running,
        }),
    })
}

pub async fn run(ctx: &StageContext, input: SummarizeInput) -> Result<StageOutput, StageError> {
    let keys = RunKeys::new(&input.run_id)
        .map_err(|e| StageError::InvalidConfig(format!("stage input: {e}")))?;
    let summary = summarize(ctx, &keys, &input).await?;
    // The summary first: nothing the report or the pointer does can keep it from being written.
    let summary_key = keys.key(artifacts::SUMMARY)?;
    write_json(ctx.store.as_ref(), &summary_key, &summary).await?;
    let latest = LatestRun {
        run_id: summary.run_id.clone(),
        status: summary.status,
        as_of: summary.as_of,
        finished_at: Utc::now(),
    };
    write_json(ctx.store.as_ref(), artifacts::LATEST_RUN, &latest).await?;

    let mut output = StageOutput::new(Stage::Summarize, None)
        .with_artifact(summary_key)
        .with_artifact(artifacts::LATEST_RUN.to_owned());
    for (stage, s) in &summary.stages {
        for (name, value) in &s.counts {
            output.counts.insert(format!("{stage}.{name}"), *value);
        }
    }
    let failure = summary.failure.clone();
    let report_key = write_report(ctx, &keys, summary, input.dry_run).await?;
    if let Some(failure) = &failure {
        alert(ctx, &keys, failure).await;
    }
    Ok(output.with_artifact(report_key))
}

/// Writes `report.md`. For a succeeded run a corrupt artifact fails the stage, naming it; a
/// failed run's report is written with whatever could be read, because that run has to
/// report itself.
async fn write_report(
    ctx: &StageContext,
    keys: &RunKeys,
    summary: RunSummary,
    dry_run: bool,
) -> Result<String, StageError> {
    let store = ctx.store.as_ref();
    let failed = summary.failure.is_some();
    let corrupt = if failed {
        report::Corrupt::Note
    } else {
        report::Corrupt::Fail
    };
    let inputs = match report::load(store, keys, summary.clone(), dry_run, corrupt).await {
        Ok(inputs) => inputs,
        Err(e) if failed => {
            tracing::warn!(error = %e, "the failed run's report holds only its summary");
            report::ReportInputs {
                summary,
                dry_run,
                artifacts_at: report::artifacts_at(store, keys),
                unreadable: vec![e.to_string()],
                ..Default::default()
            }
        }
        Err(e) => return Err(e.into()),
    };
    let key = keys.key(artifacts::REPORT)?;
    let text = report::render_report(&inputs);
    store.put(&key, Bytes::from(text)).await?;
    Ok(key)
}

/// The run the summarize stage wrote last (`latest_run.json`), or `None` before the first.
pub async fn latest_run(store: &dyn ArtifactStore) -> Result<Option<String>, StoreError> {
    let Some(latest) = read_json_opt::<LatestRun>(store, artifacts::LATEST_RUN).await? else {
        return Ok(None);
    };
    // The pointer names a folder under runs/: a bad name there is a corrupt pointer.
    validate_run_id(&latest.run_id).map_err(|e| StoreError::InvalidArtifact {
        key: artifacts::LATEST_RUN.to_owned(),
        path: "run_id".to_owned(),
        message: e.to_string(),
    })?;
    Ok(Some(latest.run_id))
}

/// The one alert of a stopped run (SPEC §10): the run, the failed state, the error and where
/// its report is. Slack is best effort; without a webhook the alert is a log line.
async fn alert(ctx: &StageContext, keys: &RunKeys, failure: &RunFailure) {
    let text = alert_text(keys, failure, &ctx.store.describe());
    match &ctx.slack {
        None => {
            tracing::warn!(%text, "Slack is not configured; the failed run is reported here only")
        }
        Some(slack) => {
            if let Err(e) = slack.notify(&text).await {
                tracing::warn!(error = %e, %text, "the failure alert could not be posted to Slack");
            }
        }
    }
}

pub fn alert_text(keys: &RunKeys, failure: &RunFailure, store_url: &str) -> String {
    let run_id = keys.run_id();
    let state = failure
        .state
        .as_deref()
        .map(|s| format!(" at {s}"))
        .unwrap_or_default();
    let cause = failure.cause.lines().next().unwrap_or_default();
    let mut text = format!(
        "zdsync run {run_id} {}{state}: {} {cause}",
        failure.status.as_str(),
        failure.error
    )
    .trim_end()
    .to_owned();
    if !failure.running.is_empty() {
        text.push_str(&format!(
            "\nStill running when it stopped (let them finish before a redrive): {}",
            failure.running.join(", ")
        ));
    }
    // The report reads as a page; summary.json beside it is for tools.
    let run = format!("{}/{}", store_url.trim_end_matches('/'), keys.prefix());
    text.push_str(&format!(
        "\nReport: {run}{} (counts: {run}{})",
        artifacts::REPORT,
        artifacts::SUMMARY
    ));
    text
}

/// "1200 creates, 30 updates left for the next run"; none when nothing is left.
fn left_for_next_run(left: &Pending) -> Option<String> {
    let parts: Vec<String> = [
        (left.creates, "create"),
        (left.updates, "update"),
        (left.marks, "mark"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
    .collect();
    (!parts.is_empty()).then(|| format!("{} left for the next run", parts.join(", ")))
}

/// The run's Salesforce calls and the org's daily allowance as last reported, when any stage
/// called Salesforce.
fn salesforce_api(calls: &crate::calls::CallStats) -> Option<SalesforceApi> {
    let service = calls.0.get("salesforce")?;
    let allowance = service.allowance?;
    Some(SalesforceApi {
        calls: service.requests,
        used: allowance.used,
        limit: allowance.limit,
    })
}

/// For a sync of a redriven run: what its last attempt (the redrive) did and what earlier
/// attempts did, from the attempt each record carries; `None` for a first attempt. Applied work
/// is never "left": it is named with the attempt that applied it.
fn attempts(result: &SyncResult) -> Option<String> {
    if result.attempt == 0 {
        return None;
    }
    let by = result.by_attempt();
    let describe = |counts: AttemptCounts| {
        let parts: Vec<String> = [
            (counts.created, "created"),
            (counts.updated, "updated"),
            (counts.marked, "marked"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{what} {n}"))
        .chain((counts.errors > 0).then(|| {
            format!(
                "met {} record error{}",
                counts.errors,
                if counts.errors == 1 { "" } else { "s" }
            )
        }))
        .collect();
        if parts.is_empty() {
            "wrote nothing".to_owned()
        } else {
            parts.join(", ")
        }
    };
    let this = by.get(&result.attempt).copied().unwrap_or_default();
    let earlier = by
        .range(..result.attempt)
        .fold(AttemptCounts::default(), |sum, (_, c)| AttemptCounts {
            created: sum.created + c.created,
            updated: sum.updated + c.updated,
            marked: sum.marked + c.marked,
            errors: sum.errors + c.errors,
        });
    Some(format!(
        "this redrive (attempt {}) {}; earlier attempts {}",
        result.attempt + 1,
        describe(this),
        describe(earlier)
    ))
}

async fn summarize(
    ctx: &StageContext,
    keys: &RunKeys,
    input: &SummarizeInput,
) -> Result<RunSummary, StageError> {
    let mut summary = RunSummary {
        run_id: input.run_id.clone(),
        as_of: Some(input.as_of),
        status: input
            .failure
            .as_ref()
            .map_or(RunStatus::Succeeded, |f| f.status),
        failure: input.failure.clone(),
        ..RunSummary::default()
    };
    if input.dry_run {
        summary
            .guard_decisions
            .push("dry run: compare only, Zendesk was not written".into());
    }
    // A failed run must report itself: there a corrupt artifact is noted, not fatal.
    let failed = input.failure.is_some();
    let mut unreadable = Vec::new();
    // Every stage's own account of itself: its counts, API calls and time (and its error).
    let prefix = format!("{}{}", keys.prefix(), artifacts::STAGE_STATS);
    let mut stats_keys = ctx.store.list(&prefix).await?;
    stats_keys.sort();
    for key in stats_keys {
        let read = read_json_opt::<StageStats>(ctx.store.as_ref(), &key).await;
        let Some(stats) = tolerate(read, &mut unreadable, failed)? else {
            continue;
        };
        let name = key
            .trim_start_matches(&prefix)
            .trim_end_matches(".json")
            .replace('-', "_");
        summary.calls.add(&stats.calls);
        let entry = summary.stages.entry(name).or_default();
        entry.counts.extend(stats.counts);
        entry.retries = stats.calls.retries();
        entry.seconds = Some(stats.seconds);
        entry.error = stats.error;
        let source_calls = stats.calls.excluding(crate::calls::STORE);
        entry.gathers = stats
            .gathers
            .into_iter()
            .map(|mut note| {
                note.calls = Some(crate::model::GatherCalls {
                    requests: source_calls.requests,
                    bytes_received: source_calls.bytes_received,
                });
                note
            })
            .collect();
    }
    // What the syncs did record by record: their errors and guard decisions.
    for sync in SyncKind::ALL {
        let key = keys.key(&artifacts::sync_result(sync))?;
        let read = read_json_opt::<SyncResult>(ctx.store.as_ref(), &key).await;
        let Some(result) = tolerate(read, &mut unreadable, failed)? else {
            continue;
        };
        let stage = summary.stages.entry(format!("sync_{sync}")).or_default();
        if stage.counts.is_empty() {
            // The stage failed after writing its result (a tripped guard, too many record
            // errors): what it did is in the result.
            stage.counts = result
                .counts()
                .into_iter()
                .map(|(k, n)| (k.to_owned(), n as u64))
                .collect();
        }
        stage.errors = result
            .errors
            .iter()
            .take(ERRORS_SHOWN)
            .map(|e| e.describe())
            .collect();
        if let Some(left) = left_for_next_run(&result.left_for_next_run) {
            summary.left_for_next_run.push(format!("{sync}: {left}"));
        }
        if let Some(attempts) = attempts(&result) {
            summary.attempts.push(format!("{sync}: {attempts}"));
        }
        if let Some(decision) = &result.deletion_guard {
            summary
                .guard_decisions
                .push(format!("{sync}: {}", decision.describe(sync.records())));
        }
        summary
            .errors
            .extend(stage.errors.iter().map(|e| format!("{sync}: {e}")));
    }
    summary.salesforce_api = salesforce_api(&summary.calls);
    if let Some(api) = summary.salesforce_api.filter(SalesforceApi::is_high) {
        tracing::warn!(used = api.used, limit = api.limit, "{}", api.describe());
    }
    summary.errors.truncate(ERRORS_SHOWN);
    // After the truncation, so what could not be read is never cut off.
    summary.errors.extend(unreadable);
    Ok(summary)
}

/// A corrupt artifact of a failed run: noted in `unreadable` and read as absent. Anything else
/// (a succeeded run's corrupt artifact, a store outage) stays an error.
fn tolerate<T>(
    read: Result<Option<T>, StoreError>,
    unreadable: &mut Vec<String>,
    failed: bool,
) -> Result<Option<T>, StoreError> {
    match read {
        Err(e @ StoreError::InvalidArtifact { .. }) if failed => {
            unreadable.push(format!(
                "not summarized, the artifact could not be read: {e}"
            ));
            Ok(None)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DirStore;

    #[test]
    fn a_stopped_dry_run_is_known_by_its_input() {
        assert!(was_dry_run(Some(r#"{"dry_run": true}"#)));
        assert!(!was_dry_run(Some(
            r#"{"dry_run": false, "as_of": "2026-11-23"}"#
        )));
        assert!(!was_dry_run(Some("{}")));
        assert!(!was_dry_run(Some("not json")));
        assert!(!was_dry_run(None));
    }

    #[test]
    fn the_alert_names_the_failure_and_the_report() {
        let failure = RunFailure {
            status: RunStatus::Failed,
            state: Some("Instances[0].SyncGlobal".into()),
            error: "DeletionGuardTripped".into(),
            cause: "3 orgs would be marked\nsecond line".into(),
            running: vec!["Instances[1].SyncUsgov".into()],
        };
        let keys = RunKeys::new("r1").unwrap();
        let text = alert_text(&keys, &failure, "s3://zdsync-artifacts/");
        assert_eq!(
            text,
            "zdsync run r1 FAILED at Instances[0].SyncGlobal: DeletionGuardTripped 3 orgs would be marked\n\
             Still running when it stopped (let them finish before a redrive): Instances[1].SyncUsgov\n\
             Report: s3://zdsync-artifacts/runs/r1/report.md (counts: s3://zdsync-artifacts/runs/r1/summary.json)"
        );
    }

    #[tokio::test]
    async fn the_latest_run_is_read_from_its_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        assert_eq!(latest_run(&store).await.unwrap(), None, "no run yet");
        let pointer = LatestRun {
            run_id: "local-20261203T155115Z".into(),
            status: RunStatus::Failed,
            as_of: Some("2026-12-03".parse().unwrap()),
            finished_at: "2026-12-03T15:52:00Z".parse().unwrap(),
        };
        write_json(&store, artifacts::LATEST_RUN, &pointer)
            .await
            .unwrap();
        assert_eq!(
            latest_run(&store).await.unwrap().as_deref(),
            Some("local-20261203T155115Z")
        );
        // Outside runs/, so the lifecycle rule that expires runs never takes it.
        assert!(dir.path().join("latest_run.json").is_file());

        let climbing = LatestRun {
            run_id: "../secrets".into(),
            ..pointer
        };
        write_json(&store, artifacts::LATEST_RUN, &climbing)
            .await
            .unwrap();
        match latest_run(&store).await {
            Err(StoreError::InvalidArtifact { key, path, .. }) => {
                assert_eq!((key.as_str(), path.as_str()), ("latest_run.json", "run_id"));
            }
            other => panic!("a pointer out of runs/ must be refused: {other:?}"),
        }
    }
}
