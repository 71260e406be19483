//! What every Lambda function shares (feature `lambda`): tracing, settings and secrets once at
//! cold start, clients built once, and stage errors reported under their stable names.
//!
//! A function whose configuration is broken still starts and answers every invocation with
//! `InvalidConfig` naming the setting: Step Functions then shows the reason on the failed state,
//! instead of an opaque init failure.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::config::{SecretKind, Settings};
use crate::error::StageError;
use crate::stages::{self, Executions, HowItEnded, RunningExecution, Stage, StageContext};
use crate::store::StoreUrl;

impl From<StageError> for Diagnostic {
    fn from(e: StageError) -> Diagnostic {
        Diagnostic {
            error_type: e.name().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Runs `stage` as this process's Lambda handler.
pub async fn serve(stage: Stage) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let context = cold_start(stage).await.map(Arc::new);
    if let Err(e) = &context {
        tracing::error!(error = %e, "configuration is invalid; every invocation will fail with InvalidConfig");
    }
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let context = context.clone();
        async move {
            let ctx = context?;
            tracing::info!(stage = %stage, input = %event.payload, "stage started");
            let (result, measured) = stages::run_measured(stage, &ctx, event.payload).await;
            // A sync that goes on in another invocation reports once, when it is done (its
            // counts add up over the invocations).
            let more = result
                .as_ref()
                .is_ok_and(|output| output.get("more") == Some(&Value::Bool(true)));
            if let Some((sync, stats)) = measured.as_ref().filter(|_| !more) {
                // One EMF line on stdout: CloudWatch Logs extracts the metrics from it.
                let record = crate::metrics::emf_record(
                    stage.function_name(),
                    sync.as_deref(),
                    stats,
                    chrono::Utc::now().timestamp_millis(),
                );
                println!("{record}");
            }
            match &result {
                Ok(output) => tracing::info!(stage = %stage, %output, "stage finished"),
                Err(e) => {
                    tracing::error!(stage = %stage, error = e.name(), message = %e, "stage failed")
                }
            }
            result
        }
    }))
    .await
}

async fn cold_start(stage: Stage) -> Result<StageContext, StageError> {
    let mut settings = Settings::load(None, &Settings::process_env())?;
    let aws = aws_config::load_from_env().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    for kind in stage.secrets() {
        if let Some(arn) = kind.arn(&settings).map(str::to_owned) {
            let json = read_secret(&secrets, &arn, kind).await?;
            settings.apply_secret(kind, &json)?;
        }
    }
    let store = StoreUrl::parse(&settings.store.url)
        .map_err(|e| StageError::InvalidConfig(format!("setting store.url: {e}")))?
        .open_with(&aws);
    let needs = stage.needs();
    let executions: Option<Arc<dyn Executions>> = needs
        .executions
        .then(|| Arc::new(SfnExecutions::new(aws_sdk_sfn::Client::new(&aws))) as _);
    StageContext::build(Arc::new(settings), store, needs, executions)
}

async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
    kind: SecretKind,
) -> Result<String, StageError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            StageError::InvalidConfig(format!(
                "reading the secret of {}: {}",
                kind.arn_setting(),
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
    out.secret_string().map(str::to_owned).ok_or_else(|| {
        StageError::InvalidConfig(format!(
            "the secret of {} has no SecretString",
            kind.arn_setting()
        ))
    })
}

/// Running executions from Step Functions (`ListExecutions`, status RUNNING).
pub struct SfnExecutions {
    client: aws_sdk_sfn::Client,
}

impl SfnExecutions {
    pub fn new(client: aws_sdk_sfn::Client) -> SfnExecutions {
        SfnExecutions { client }
    }
}

#[async_trait]
impl Executions for SfnExecutions {
    async fn how_it_ended(&self, execution_arn: &str) -> Result<HowItEnded, StageError> {
        let mut events = Vec::new();
        let mut pages = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                StageError::Retryable(format!(
                    "reading the history of {execution_arn}: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                ))
            })?;
            events.extend(page.events().iter().map(|e| {
                HistoryEvent {
                    id: e.id(),
                    previous: e.previous_event_id(),
                    kind: e.r#type().as_str().to_owned(),
                    state: e
                        .state_entered_event_details()
                        .map(|d| d.name().to_owned())
                        .or_else(|| e.state_exited_event_details().map(|d| d.name().to_owned())),
                }
            }));
        }
        Ok(how_it_ended(&events))
    }

    async fn running(&self, state_machine_arn: &str) -> Result<Vec<RunningExecution>, StageError> {
        let mut running = Vec::new();
        let mut pages = self
            .client
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .status_filter(ExecutionStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                StageError::Retryable(format!(
                    "listing running executions: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                ))
            })?;
            for execution in page.executions() {
                let start = DateTime::<Utc>::from_timestamp(
                    execution.start_date().secs(),
                    execution.start_date().subsec_nanos(),
                )
                .unwrap_or_default();
                running.push(RunningExecution {
                    execution_arn: execution.execution_arn().to_owned(),
                    start,
                });
            }
        }
        Ok(running)
    }
}

/// One event of an execution's history, as far as [`how_it_ended`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    pub id: i64,
    pub previous: i64,
    /// `TaskStateEntered`, `LambdaFunctionFailed`, …
    pub kind: String,
    /// The state an `…Entered` / `…Exited` event is about.
    pub state: Option<String>,
}

/// The Task states that never exited: the one whose own task failed (or timed out) is the
/// failed state; the others were still running when the execution stopped. A task's events
/// lead back, through `previous`, to the state's `TaskStateEntered`.
pub fn how_it_ended(events: &[HistoryEvent]) -> HowItEnded {
    let by_id: std::collections::HashMap<i64, &HistoryEvent> =
        events.iter().map(|e| (e.id, e)).collect();
    let mut open: Vec<(i64, String, bool)> = Vec::new();
    for event in events {
        match event.kind.as_str() {
            "TaskStateEntered" => {
                open.push((event.id, event.state.clone().unwrap_or_default(), false));
            }
            "TaskStateExited" => {
                if let Some(at) = open
                    .iter()
                    .rposition(|(_, name, _)| Some(name) == event.state.as_ref())
                {
                    open.remove(at);
                }
            }
            kind if (kind.starts_with("Task") || kind.starts_with("LambdaFunction"))
                && (kind.ends_with("Failed") || kind.ends_with("TimedOut")) =>
            {
                let mut id = event.previous;
                while let Some(earlier) = by_id.get(&id) {
                    if let Some(entry) = open.iter_mut().find(|(entered, _, _)| *entered == id) {
                        entry.2 = true;
                        break;
                    }
                    id = earlier.previous;
                }
            }
            _ => {}
        }
    }
    HowItEnded {
        failed_state: open
            .iter()
            .find(|(_, _, failed)| *failed)
            .map(|(_, n, _)| n.clone()),
        running: open
            .iter()
            .filter(|(_, _, failed)| !failed)
            .map(|(_, n, _)| n.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
    use aws_sdk_sfn::primitives::DateTime as AwsDateTime;
    use aws_sdk_sfn::types::ExecutionListItem;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:zdsync-sync";

    fn running(name: &str, start: i64) -> ExecutionListItem {
        ExecutionListItem::builder()
            .execution_arn(format!(
                "arn:aws:states:us-east-1:123456789012:execution:zdsync-sync:{name}"
            ))
            .state_machine_arn(MACHINE)
            .name(name)
            .status(ExecutionStatus::Running)
            .start_date(AwsDateTime::from_secs(start))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn the_guard_sees_every_page_of_running_executions() {
        let first = mock!(aws_sdk_sfn::Client::list_executions)
            .match_requests(|r| {
                r.state_machine_arn() == Some(MACHINE)
                    && r.status_filter() == Some(&ExecutionStatus::Running)
                    && r.next_token().is_none()
            })
            .then_output(|| {
                ListExecutionsOutput::builder()
                    .executions(running("hourly-b", 7200))
                    .next_token("page-2")
                    .build()
                    .unwrap()
            });
        let second = mock!(aws_sdk_sfn::Client::list_executions)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                ListExecutionsOutput::builder()
                    .executions(running("hourly-a", 3600))
                    .build()
                    .unwrap()
            });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&first, &second]);
        let found = SfnExecutions::new(client).running(MACHINE).await.unwrap();
        assert_eq!(found.len(), 2);
        assert!(found[1].execution_arn.ends_with(":hourly-a"));
        assert_eq!(found[1].start.timestamp(), 3600);
    }

    fn event(id: i64, previous: i64, kind: &str, state: Option<&str>) -> HistoryEvent {
        HistoryEvent {
            id,
            previous,
            kind: kind.into(),
            state: state.map(str::to_owned),
        }
    }

    #[test]
    fn the_history_names_the_failed_state_and_the_ones_still_running() {
        let events = [
            event(1, 0, "ExecutionStarted", None),
            event(2, 1, "ParallelStateEntered", Some("Instances")),
            // Global: a retried task that then succeeded.
            event(3, 2, "TaskStateEntered", Some("SyncGlobal")),
            event(4, 3, "LambdaFunctionScheduled", None),
            event(5, 4, "LambdaFunctionStarted", None),
            event(6, 5, "LambdaFunctionFailed", None),
            event(7, 6, "LambdaFunctionScheduled", None),
            event(8, 7, "LambdaFunctionStarted", None),
            event(9, 8, "LambdaFunctionSucceeded", None),
            event(10, 9, "TaskStateExited", Some("SyncGlobal")),
            event(11, 10, "TaskStateEntered", Some("SyncPartners")),
            event(12, 11, "LambdaFunctionScheduled", None),
            event(13, 12, "LambdaFunctionStarted", None),
            // US Gov: fails for good.
            event(14, 2, "TaskStateEntered", Some("SyncUsgov")),
            event(15, 14, "LambdaFunctionScheduled", None),
            event(16, 15, "LambdaFunctionStarted", None),
            event(17, 16, "LambdaFunctionFailed", None),
            event(18, 17, "ParallelStateFailed", None),
            event(19, 18, "ExecutionFailed", None),
        ];
        assert_eq!(
            how_it_ended(&events),
            HowItEnded {
                failed_state: Some("SyncUsgov".into()),
                running: vec!["SyncPartners".into()]
            }
        );
        assert_eq!(how_it_ended(&events[..10]), HowItEnded::default());
    }

    #[test]
    fn stage_errors_reach_step_functions_by_name() {
        let diagnostic: Diagnostic = StageError::EmptySource("no accounts".into()).into();
        assert_eq!(diagnostic.error_type, "EmptySource");
        assert_eq!(diagnostic.error_message, "no accounts");
    }
}
