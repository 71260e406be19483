//! `zdsync cloud …`: what an operator does with the deployed state machine — start an execution
//! (e.g. with `allow_deletions` after checking a tripped deletion guard), redrive a failed one
//! from its failed state, and see the last executions.

use std::fmt::Write;

use anyhow::{Context, bail};
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::DisplayErrorContext;
use aws_sdk_sfn::primitives::DateTime as AwsDateTime;
use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, Utc};
use serde_json::Value;
use zdsync::store::validate_run_id;

/// A started or redriven execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub execution_arn: String,
    pub at: DateTime<Utc>,
}

/// One line of `zdsync cloud status`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionLine {
    pub name: String,
    pub status: String,
    pub start: DateTime<Utc>,
    pub stop: Option<DateTime<Utc>>,
    /// For failed and timed-out executions: the error name and cause.
    pub error: Option<String>,
    pub cause: Option<String>,
    pub redrive_count: i32,
}

/// Starts an execution named `name` (its run id: artifacts go to `runs/<name>/`).
pub async fn start(
    client: &Client,
    state_machine_arn: &str,
    name: &str,
    input: &Value,
) -> anyhow::Result<Started> {
    validate_run_id(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let out = client
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("starting {name}: {}", DisplayErrorContext(&e)))?;
    Ok(Started {
        execution_arn: out.execution_arn().to_owned(),
        at: to_chrono(out.start_date()),
    })
}

/// Redrives a FAILED, TIMED_OUT or ABORTED execution from its failed states; same name, same
/// input, same start time, so the stages compute what they computed before.
pub async fn redrive(client: &Client, execution_arn: &str) -> anyhow::Result<Started> {
    let out = client
        .redrive_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("redriving {execution_arn}: {}", DisplayErrorContext(&e)))?;
    Ok(Started {
        execution_arn: execution_arn.to_owned(),
        at: to_chrono(out.redrive_date()),
    })
}

/// The last `limit` executions, newest first, with the error of the ones that failed.
pub async fn status(
    client: &Client,
    state_machine_arn: &str,
    limit: i32,
) -> anyhow::Result<Vec<ExecutionLine>> {
    let listed = client
        .list_executions()
        .state_machine_arn(state_machine_arn)
        .max_results(limit)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("listing executions: {}", DisplayErrorContext(&e)))?;
    let mut lines = Vec::new();
    for execution in listed.executions() {
        let status = execution.status().as_str().to_owned();
        let (error, cause) = if matches!(
            execution.status(),
            ExecutionStatus::Failed | ExecutionStatus::TimedOut
        ) {
            let described = client
                .describe_execution()
                .execution_arn(execution.execution_arn())
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "describing {}: {}",
                        execution.name(),
                        DisplayErrorContext(&e)
                    )
                })?;
            (
                described.error().map(str::to_owned),
                described.cause().map(str::to_owned),
            )
        } else {
            (None, None)
        };
        lines.push(ExecutionLine {
            name: execution.name().to_owned(),
            status,
            start: to_chrono(execution.start_date()),
            stop: execution.stop_date().map(to_chrono),
            error,
            cause,
            redrive_count: execution.redrive_count().unwrap_or(0),
        });
    }
    Ok(lines)
}

/// The table `zdsync cloud status` prints.
pub fn render_status(lines: &[ExecutionLine], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:<10} {:<20} {:>9}  error",
        "execution", "status", "started (UTC)", "duration"
    );
    for line in lines {
        let elapsed = line.stop.unwrap_or(now) - line.start;
        let duration = format!(
            "{}m{:02}s",
            elapsed.num_minutes(),
            elapsed.num_seconds() % 60
        );
        let running = if line.stop.is_none() { "+" } else { "" };
        let redriven = if line.redrive_count > 0 {
            format!(" (redriven {}×)", line.redrive_count)
        } else {
            String::new()
        };
        let error = match (&line.error, &line.cause) {
            (Some(e), Some(c)) => format!("{e}: {}", first_line(c)),
            (Some(e), None) => e.clone(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<36} {:<10} {:<20} {:>9}  {error}{redriven}",
            line.name,
            line.status,
            line.start.format("%Y-%m-%d %H:%M:%S"),
            format!("{duration}{running}")
        );
    }
    out
}

/// The execution input of `zdsync cloud start`: options merged into `--input`.
pub fn execution_input(
    raw: Option<&str>,
    dry_run: bool,
    allow_deletions: &[(zdsync::model::SyncKind, usize)],
) -> anyhow::Result<Value> {
    let mut input: Value = match raw {
        Some(text) => serde_json::from_str(text).context("--input is not JSON")?,
        None => Value::Object(Default::default()),
    };
    let Some(fields) = input.as_object_mut() else {
        bail!("--input must be a JSON object");
    };
    if dry_run {
        fields.insert("dry_run".into(), Value::Bool(true));
    }
    if !allow_deletions.is_empty() {
        let allowed: serde_json::Map<String, Value> = allow_deletions
            .iter()
            .map(|(i, n)| (i.as_str().to_owned(), Value::from(*n)))
            .collect();
        fields.insert("allow_deletions".into(), Value::Object(allowed));
    }
    Ok(input)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn to_chrono(t: &AwsDateTime) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
    use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
    use aws_sdk_sfn::operation::redrive_execution::{
        RedriveExecutionError, RedriveExecutionOutput,
    };
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::types::ExecutionListItem;
    use aws_sdk_sfn::types::error::ExecutionNotRedrivable;
    use aws_smithy_mocks::{mock, mock_client};
    use serde_json::json;
    use zdsync::model::SyncKind;

    const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:zdsync-sync";

    fn at(secs: i64) -> AwsDateTime {
        AwsDateTime::from_secs(secs)
    }

    #[tokio::test]
    async fn start_sends_the_name_and_the_options() {
        let rule = mock!(Client::start_execution)
            .match_requests(|r| {
                r.state_machine_arn() == Some(MACHINE)
                    && r.name() == Some("allow-deletions-1")
                    && r.input().map(|i| serde_json::from_str::<Value>(i).unwrap())
                        == Some(json!({"allow_deletions": {"global": 40}}))
            })
            .then_output(|| {
                StartExecutionOutput::builder()
                    .execution_arn("arn:aws:states:us-east-1:123456789012:execution:zdsync-sync:allow-deletions-1")
                    .start_date(at(1_790_000_000))
                    .build()
                    .unwrap()
            });
        let client = mock_client!(aws_sdk_sfn, [&rule]);
        let input = execution_input(None, false, &[(SyncKind::Global, 40)]).unwrap();
        let started = start(&client, MACHINE, "allow-deletions-1", &input)
            .await
            .unwrap();
        assert!(started.execution_arn.ends_with(":allow-deletions-1"));
        assert_eq!(rule.num_calls(), 1);
        // A name Step Functions would refuse is refused before any call.
        assert!(start(&client, MACHINE, "bad name/1", &input).await.is_err());
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn redrive_names_the_execution_and_explains_refusals() {
        let ok = mock!(Client::redrive_execution)
            .match_requests(|r| r.execution_arn() == Some("arn:failed"))
            .then_output(|| {
                RedriveExecutionOutput::builder()
                    .redrive_date(at(1_790_000_100))
                    .build()
                    .unwrap()
            });
        let refused = mock!(Client::redrive_execution)
            .match_requests(|r| r.execution_arn() == Some("arn:succeeded"))
            .then_error(|| {
                RedriveExecutionError::ExecutionNotRedrivable(
                    ExecutionNotRedrivable::builder()
                        .message("Execution is SUCCEEDED")
                        .build(),
                )
            });
        let client = mock_client!(
            aws_sdk_sfn,
            aws_smithy_mocks::RuleMode::MatchAny,
            [&ok, &refused]
        );
        let started = redrive(&client, "arn:failed").await.unwrap();
        assert_eq!(started.at.timestamp(), 1_790_000_100);
        let err = redrive(&client, "arn:succeeded")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ExecutionNotRedrivable") && err.contains("SUCCEEDED"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn status_lists_executions_with_the_errors_of_failed_ones() {
        let list = mock!(Client::list_executions)
            .match_requests(|r| {
                r.state_machine_arn() == Some(MACHINE) && r.max_results() == Some(5)
            })
            .then_output(|| {
                let item = |name: &str, status: ExecutionStatus, start: i64, stop: Option<i64>| {
                    let mut b = ExecutionListItem::builder()
                        .execution_arn(format!(
                            "arn:aws:states:us-east-1:123456789012:execution:zdsync-sync:{name}"
                        ))
                        .state_machine_arn(MACHINE)
                        .name(name)
                        .status(status)
                        .start_date(at(start));
                    if let Some(stop) = stop {
                        b = b.stop_date(at(stop));
                    }
                    b.build().unwrap()
                };
                ListExecutionsOutput::builder()
                    .executions(item("hourly-3", ExecutionStatus::Running, 7200, None))
                    .executions(item(
                        "hourly-2",
                        ExecutionStatus::Failed,
                        3600,
                        Some(3600 + 754),
                    ))
                    .executions(item("hourly-1", ExecutionStatus::Succeeded, 0, Some(300)))
                    .build()
                    .unwrap()
            });
        let describe = mock!(Client::describe_execution)
            .match_requests(|r| r.execution_arn().is_some_and(|a| a.ends_with(":hourly-2")))
            .then_output(|| {
                DescribeExecutionOutput::builder()
                    .execution_arn("arn:…:hourly-2")
                    .state_machine_arn(MACHINE)
                    .status(ExecutionStatus::Failed)
                    .start_date(at(3600))
                    .error("DeletionGuardTripped")
                    .cause("global: 60 organizations would be marked for deletion\nmore")
                    .build()
                    .unwrap()
            });
        let client = mock_client!(
            aws_sdk_sfn,
            aws_smithy_mocks::RuleMode::MatchAny,
            [&list, &describe]
        );
        let lines = status(&client, MACHINE, 5).await.unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            describe.num_calls(),
            1,
            "only failed executions are described"
        );
        assert_eq!(lines[1].error.as_deref(), Some("DeletionGuardTripped"));
        let table = render_status(&lines, DateTime::<Utc>::from_timestamp(7260, 0).unwrap());
        assert!(
            table.contains("hourly-3") && table.contains("RUNNING") && table.contains("1m00s+"),
            "{table}"
        );
        assert!(
            table.contains("12m34s")
                && table.contains("DeletionGuardTripped: global: 60 organizations"),
            "{table}"
        );
        assert!(table.contains("5m00s"), "{table}");
    }

    #[test]
    fn execution_input_merges_flags_into_the_raw_input() {
        assert_eq!(execution_input(None, false, &[]).unwrap(), json!({}));
        assert_eq!(
            execution_input(Some(r#"{"allow_deletions": {"usgov": 2}}"#), true, &[]).unwrap(),
            json!({"allow_deletions": {"usgov": 2}, "dry_run": true})
        );
        assert!(execution_input(Some("[1]"), false, &[]).is_err());
        assert!(execution_input(Some("{"), false, &[]).is_err());
    }
}
