//! What every Lambda function shares (feature `lambda`): tracing, settings and secrets at cold
//! start, clients built once, and stage errors reported under their stable names.
//!
//! The cold start runs at the first invocation ([`Starter`]) and its context is kept for the
//! container's life. A function whose configuration is broken still starts and answers every
//! invocation with `InvalidConfig` naming the setting: Step Functions then shows the reason on
//! the failed state, instead of an opaque init failure. A transient AWS error while starting (a
//! throttled or failed secret read) is `Retryable` and is not kept: the next invocation starts
//! again (SPEC §10 "Cold start").

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::types::ExecutionStatus;
use aws_types::SdkConfig;
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
    let aws = aws_config::load_from_env().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let starter = Arc::new(Starter::new(stage, Settings::process_env(), aws, secrets));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let starter = starter.clone();
        async move {
            let ctx = starter.context().await?;
            invoke(stage, &ctx, event.payload).await
        }
    }))
    .await
}

/// One invocation of `stage` with a started context.
async fn invoke(stage: Stage, ctx: &StageContext, payload: Value) -> Result<Value, StageError> {
    tracing::info!(stage = %stage, input = %payload, "stage started");
    let (result, measured) = stages::run_measured(stage, ctx, payload).await;
    // A sync that goes on in another invocation reports once, when it is done (its counts add
    // up over the invocations).
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

/// A function's cold start, made at its first invocation and kept for the container's life —
/// the context, or the invalid setting that keeps it from being made. A transient failure
/// (`Retryable`) is not kept: the next invocation tries the start again, so a throttled secret
/// read does not leave a warm container failing every invocation it gets.
pub struct Starter {
    stage: Stage,
    env: BTreeMap<String, String>,
    aws: SdkConfig,
    secrets: aws_sdk_secretsmanager::Client,
    started: tokio::sync::Mutex<Option<Result<Arc<StageContext>, StageError>>>,
}

impl Starter {
    /// `env`: the `ZDSYNC_*` variables; `secrets`: the client the secrets are read with.
    pub fn new(
        stage: Stage,
        env: BTreeMap<String, String>,
        aws: SdkConfig,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Starter {
        Starter {
            stage,
            env,
            aws,
            secrets,
            started: tokio::sync::Mutex::new(None),
        }
    }

    /// The stage's context: the one made before, or a new cold start (one at a time: Lambda
    /// hands a container one invocation at a time, and the lock keeps it so).
    pub async fn context(&self) -> Result<Arc<StageContext>, StageError> {
        let mut started = self.started.lock().await;
        if let Some(done) = started.as_ref() {
            return done.clone();
        }
        let result = cold_start(self.stage, &self.env, &self.aws, &self.secrets)
            .await
            .map(Arc::new);
        match &result {
            Err(e @ StageError::Retryable(_)) => {
                tracing::warn!(error = %e, "the function could not start for a passing reason; the next invocation starts again");
                return result;
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration is invalid; every invocation will fail with InvalidConfig");
            }
            Ok(_) => {}
        }
        *started = Some(result.clone());
        result
    }
}

async fn cold_start(
    stage: Stage,
    env: &BTreeMap<String, String>,
    aws: &SdkConfig,
    secrets: &aws_sdk_secretsmanager::Client,
) -> Result<StageContext, StageError> {
    let mut settings = Settings::load(None, env)?;
    for kind in stage.secrets() {
        if let Some(arn) = kind.arn(&settings).map(str::to_owned) {
            let json = read_secret(secrets, &arn, kind).await?;
            settings.apply_secret(kind, &json)?;
        }
    }
    let store = StoreUrl::parse(&settings.store.url)
        .map_err(|e| StageError::InvalidConfig(format!("setting store.url: {e}")))?
        .open_with(aws);
    let needs = stage.needs();
    let executions: Option<Arc<dyn Executions>> = needs
        .executions
        .then(|| Arc::new(SfnExecutions::new(aws_sdk_sfn::Client::new(aws))) as _);
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
            let message = format!(
                "reading the secret of {}: {}",
                kind.arn_setting(),
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            );
            if transient(&e) {
                StageError::Retryable(message)
            } else {
                StageError::InvalidConfig(message)
            }
        })?;
    out.secret_string().map(str::to_owned).ok_or_else(|| {
        StageError::InvalidConfig(format!(
            "the secret of {} has no SecretString",
            kind.arn_setting()
        ))
    })
}

/// Whether an AWS call failed for a passing reason — no answer (a timeout, a network error, an
/// answer that could not be read), throttling, or a 5xx — rather than because of what was
/// asked: a secret that does not exist, may not be read (AccessDenied, a KMS key it may not
/// use) or is scheduled for deletion stays so until someone fixes it.
fn transient<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>,
) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            status >= 500
                || status == 429
                || matches!(
                    e.code(),
                    Some(
                        "ThrottlingException"
                            | "Throttling"
                            | "TooManyRequestsException"
                            | "RequestLimitExceeded"
                            | "InternalServiceError"
                            | "InternalFailure"
                            | "ServiceUnavailable"
                    )
                )
        }
        // ConstructionFailure: the request could not be made as configured.
        _ => false,
    }
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

    const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:zdsync-usgov";

    /// A gather-users function's settings (it reads the US Gov Zendesk secret alone), with a
    /// directory store: the cold start calls nothing but Secrets Manager.
    fn gather_users(secrets: aws_sdk_secretsmanager::Client, store: &std::path::Path) -> Starter {
        let env = BTreeMap::from([
            (
                "ZDSYNC_ZENDESK_USGOV_URL".to_owned(),
                "https://agency.zendesk.example".to_owned(),
            ),
            (
                "ZDSYNC_SECRETS_ZENDESK_USGOV_ARN".to_owned(),
                SECRET.to_owned(),
            ),
            ("ZDSYNC_STORE_URL".to_owned(), store.display().to_string()),
        ]);
        let aws = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .build();
        Starter::new(Stage::GatherUsers, env, aws, secrets)
    }

    /// Secrets Manager answering each GetSecretValue from `rules` in turn. The SDK's own
    /// retries are off, so each rule is one answer the cold start sees.
    fn secrets_answering(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_secretsmanager::Client {
        mock_client!(aws_sdk_secretsmanager, RuleMode::Sequential, rules, |c| {
            c.retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
        })
    }

    fn secret_error(code: &'static str) -> aws_smithy_mocks::Rule {
        use aws_sdk_secretsmanager::error::ErrorMetadata;
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
        mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_error(move || {
            GetSecretValueError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("as AWS says it")
                    .build(),
            )
        })
    }

    fn secret_value(text: Option<&'static str>) -> aws_smithy_mocks::Rule {
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
        mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .match_requests(|r| r.secret_id() == Some(SECRET))
            .then_output(move || {
                GetSecretValueOutput::builder()
                    .set_secret_string(text.map(str::to_owned))
                    .build()
            })
    }

    const TOKEN: &str = r#"{"email": "ops@agency.example", "token": "t0k3n"}"#;

    #[tokio::test]
    async fn a_throttled_secret_read_at_cold_start_is_retryable_and_the_next_invocation_starts() {
        let store = tempfile::tempdir().unwrap();
        let throttled = secret_error("ThrottlingException");
        let read = secret_value(Some(TOKEN));
        let starter = gather_users(secrets_answering(&[&throttled, &read]), store.path());

        let first = starter.context().await.err().expect("the cold start fails");
        assert_eq!(first.name(), "Retryable", "{first}");
        assert!(
            first.to_string().contains("secrets.zendesk_usgov_arn"),
            "{first}"
        );
        // The same container's next invocation starts again, and this time it starts.
        let ctx = starter.context().await.expect("the second cold start");
        assert!(ctx.zendesk.contains_key(&crate::model::Instance::Usgov));
        // And it is kept: a third invocation reads no secret.
        starter.context().await.unwrap();
        assert_eq!((throttled.num_calls(), read.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_secret_that_cannot_be_read_is_invalid_config_for_the_containers_life() {
        for code in ["ResourceNotFoundException", "AccessDeniedException"] {
            let store = tempfile::tempdir().unwrap();
            let missing = secret_error(code);
            let read = secret_value(Some(TOKEN));
            let starter = gather_users(secrets_answering(&[&missing, &read]), store.path());
            for _ in 0..2 {
                let e = starter.context().await.err().expect("the cold start fails");
                assert_eq!(e.name(), "InvalidConfig", "{code}: {e}");
                assert!(e.to_string().contains(code), "{e}");
            }
            assert_eq!((missing.num_calls(), read.num_calls()), (1, 0), "{code}");
        }
    }

    #[tokio::test]
    async fn transient_start_failures_are_retryable_and_bad_secrets_are_invalid_config() {
        use aws_sdk_secretsmanager::config::http::HttpResponse;
        let status = |code: u16| {
            mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_http_response(move || {
                HttpResponse::new(code.try_into().unwrap(), "{}".into())
            })
        };
        let cases: Vec<(&str, aws_smithy_mocks::Rule, &str)> = vec![
            (
                "throttled",
                secret_error("ThrottlingException"),
                "Retryable",
            ),
            (
                "its server failed",
                secret_error("InternalServiceError"),
                "Retryable",
            ),
            ("a bare 503", status(503), "Retryable"),
            ("a bare 429", status(429), "Retryable"),
            ("a bare 400", status(400), "InvalidConfig"),
            (
                "a KMS key it may not use",
                secret_error("DecryptionFailure"),
                "InvalidConfig",
            ),
            (
                "scheduled for deletion",
                secret_error("InvalidRequestException"),
                "InvalidConfig",
            ),
            ("no SecretString", secret_value(None), "InvalidConfig"),
            ("not JSON", secret_value(Some("t0k3n")), "InvalidConfig"),
        ];
        for (case, rule, name) in cases {
            let store = tempfile::tempdir().unwrap();
            let starter = gather_users(secrets_answering(&[&rule]), store.path());
            let e = starter.context().await.err().expect("the cold start fails");
            assert_eq!(e.name(), name, "{case}: {e}");
            assert!(
                !e.to_string().contains("t0k3n"),
                "{case}: the secret stays out: {e}"
            );
        }
    }

    #[test]
    fn stage_errors_reach_step_functions_by_name() {
        let diagnostic: Diagnostic = StageError::EmptySource("no accounts".into()).into();
        assert_eq!(diagnostic.error_type, "EmptySource");
        assert_eq!(diagnostic.error_message, "no accounts");
    }
}
