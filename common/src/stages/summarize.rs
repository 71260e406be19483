//! The end of a run: one `summary.json` an operator reads first — what each stage counted, what
//! each of the four syncs did, which guard decisions were taken, and the first record errors.
//!
//! It runs as the state machine's last state, and for an execution that failed, timed out or
//! was aborted it runs too (SPEC §10): in AWS an EventBridge rule on the execution's status
//! change invokes it with the event, locally `zdsync run` and `redrive` call it. Then it also
//! names the failed state and the error, and sends the one alert.

use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::Value;

// A missing artifact is fine here (a dry run has no sync results); a corrupt one is not.
use super::{Stage, StageContext, StageOutput, StageStats, artifacts, parse_input, read_opt};
use crate::error::StageError;
use crate::model::{Pending, RunFailure, RunStatus, RunSummary, SyncKind, SyncResult};
use crate::store::{RunKeys, write_json};

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
        dry_run: false,
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
    let key = keys.key(artifacts::SUMMARY)?;
    write_json(ctx.store.as_ref(), &key, &summary).await?;
    if let Some(failure) = &summary.failure {
        alert(ctx, &summary.run_id, failure, &key).await;
    }

    let mut output = StageOutput::new(Stage::Summarize, None).with_artifact(key);
    for (stage, s) in &summary.stages {
        for (name, value) in &s.counts {
            output.counts.insert(format!("{stage}.{name}"), *value);
        }
    }
    Ok(output)
}

/// The one alert of a stopped run (SPEC §10): the run, the failed state, the error and where
/// the summary is. Slack is best effort; without a webhook the alert is a log line.
async fn alert(ctx: &StageContext, run_id: &str, failure: &RunFailure, summary_key: &str) {
    let text = alert_text(run_id, failure, &ctx.store.describe(), summary_key);
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

pub fn alert_text(
    run_id: &str,
    failure: &RunFailure,
    store_url: &str,
    summary_key: &str,
) -> String {
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
    text.push_str(&format!(
        "\nSummary: {}/{summary_key}",
        store_url.trim_end_matches('/')
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
    // Every stage's own account of itself: its counts, API calls and time (and its error).
    let prefix = format!("{}{}", keys.prefix(), artifacts::STAGE_STATS);
    let mut stats_keys = ctx.store.list(&prefix).await?;
    stats_keys.sort();
    for key in stats_keys {
        let Some(stats) =
            crate::store::read_json_opt::<StageStats>(ctx.store.as_ref(), &key).await?
        else {
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
    }
    // What the syncs did record by record: their errors and guard decisions.
    for sync in SyncKind::ALL {
        let Some(result) = read_opt::<SyncResult>(ctx, keys, &artifacts::sync_result(sync)).await?
        else {
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
        if let Some(decision) = &result.deletion_guard {
            summary
                .guard_decisions
                .push(format!("{sync}: {}", decision.describe(sync.records())));
        }
        summary
            .errors
            .extend(stage.errors.iter().map(|e| format!("{sync}: {e}")));
    }
    summary.errors.truncate(ERRORS_SHOWN);
    Ok(summary)
}
