//! `zdsync lambda-proxy`: the Lambda Invoke API in front of `cargo lambda watch`, so that a
//! caller that talks to Lambda the way AWS does — a Step Functions engine, an AWS SDK — runs the
//! real function binaries locally (README, "Local testing with a real Step Functions engine").
//!
//! Watch differs from Lambda in two ways that matter to such a caller:
//!
//! - It knows a function by its bare name only. Step Functions invokes a Task's `Resource`, a
//!   full function ARN, and SDK callers may pass a partial ARN or a qualifier. The proxy reduces
//!   every form Lambda accepts to the bare name.
//! - It answers a handler error with HTTP 500 and the runtime's error document
//!   (`{"errorType": …, "errorMessage": …}`) as the body. Lambda answers 200 with the header
//!   `X-Amz-Function-Error: Unhandled` and that document as the payload. A caller that sees a 500
//!   takes it for a failure of the Lambda *service*, so the stage's stable error name
//!   (`InvalidConfig`, `Retryable`, …) would never reach the state machine's Retry rules or the
//!   failed execution. The proxy restores Lambda's shape.
//!
//! Watch's own failures keep Lambda's service-error shape: a function that is not a binary of
//! the workspace (watch: 404 with `{"title", "detail"}`) becomes `ResourceNotFoundException`, and
//! any other 500 (its body is not a function error document) becomes `ServiceException`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Args;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zdsync::stages::Stage;
use zdsync_sandbox::CrashSwitch;

use crate::local::{CRASH_ERROR, CrashPlan};

/// Lambda's header naming a function error in an otherwise successful (200) Invoke answer.
pub const FUNCTION_ERROR_HEADER: &str = "x-amz-function-error";
/// Where the AWS JSON protocols put the error code of a service error.
const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

#[derive(Args)]
pub struct ProxyArgs {
    /// Where callers (e.g. moto_server started with MOTO_PORT=<this port>) send Invoke requests.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// The `cargo lambda watch` server.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    target: String,
}

/// `zdsync lambda-proxy`: serves until Ctrl-C.
pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let proxy = serve(args.listen, &args.target).await?;
    println!(
        "Lambda Invoke API on {} → cargo lambda watch at {}. Serving until Ctrl-C.",
        proxy.url(),
        proxy.target()
    );
    tokio::signal::ctrl_c().await?;
    proxy.shutdown().await;
    Ok(())
}

/// A running proxy. Dropping it stops serving.
pub struct LambdaProxy {
    addr: SocketAddr,
    target: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl LambdaProxy {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// Stops accepting, lets requests in flight finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for LambdaProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Target {
    base: String,
    client: reqwest::Client,
    /// Tests: crash the one invocation the plan names, as Lambda reports a process that died.
    crash: Option<Arc<(CrashPlan, CrashSwitch, AtomicBool)>>,
}

/// Serves the Invoke API on `listen`, forwarding to the watch server at `target`
/// (`http://host:port`).
pub async fn serve(listen: SocketAddr, target: &str) -> anyhow::Result<LambdaProxy> {
    serve_with(listen, target, None).await
}

/// [`serve`], and the first invocation `plan` names ends as a crashed function once the
/// sandbox's `switch` holds its write (the function itself is left stuck on that write).
pub async fn serve_crashing(
    listen: SocketAddr,
    target: &str,
    plan: CrashPlan,
    switch: CrashSwitch,
) -> anyhow::Result<LambdaProxy> {
    serve_with(
        listen,
        target,
        Some(Arc::new((plan, switch, AtomicBool::new(false)))),
    )
    .await
}

async fn serve_with(
    listen: SocketAddr,
    target: &str,
    crash: Option<Arc<(CrashPlan, CrashSwitch, AtomicBool)>>,
) -> anyhow::Result<LambdaProxy> {
    let url =
        reqwest::Url::parse(target).with_context(|| format!("--target {target:?} is not a URL"))?;
    anyhow::ensure!(
        url.scheme() == "http" || url.scheme() == "https",
        "--target {target:?} is not an http(s) URL"
    );
    let base = target.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        // No overall timeout: an invocation may run for Lambda's 15 minutes, and watch compiles
        // a function on its first invocation. Only an absent server fails fast.
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")?;
    let app = Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .fallback(unknown_operation)
        .with_state(Target {
            base: base.clone(),
            client,
            crash,
        });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "lambda proxy stopped");
        }
    });
    Ok(LambdaProxy {
        addr,
        target: base,
        stop: Some(stop),
        task,
    })
}

/// The bare function name of any `FunctionName` Lambda's Invoke accepts: `name`, `name:qualifier`,
/// `account:function:name[:qualifier]`, `arn:partition:lambda:region:account:function:name[:qualifier]`.
pub fn function_name(name_or_arn: &str) -> Result<&str, String> {
    let parts: Vec<&str> = name_or_arn.split(':').collect();
    let name = match parts.iter().position(|part| *part == "function") {
        Some(i) => parts.get(i + 1).copied().unwrap_or_default(),
        None => parts[0],
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(name)
    } else {
        Err(format!(
            "{name_or_arn:?} is not a function name, partial ARN or function ARN"
        ))
    }
}

async fn invoke(
    State(target): State<Target>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = match function_name(&function) {
        Ok(name) => name,
        Err(message) => {
            return service_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                "User",
                &message,
            );
        }
    };
    // Watch always waits for the result; an asynchronous or dry-run invocation would silently
    // become a synchronous one, so it is refused rather than faked.
    if let Some(kind) = headers.get("x-amz-invocation-type")
        && kind.as_bytes() != b"RequestResponse"
    {
        return service_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "User",
            &format!("invocation type {kind:?}: the local proxy supports RequestResponse only",),
        );
    }
    let crash = target.crash.as_ref().filter(|crash| {
        let (plan, _, used) = crash.as_ref();
        let input: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        Stage::from_function(name).is_some_and(|stage| plan.matches(stage, &input))
            && !used.swap(true, Ordering::SeqCst)
    });
    let url = format!("{}/2015-03-31/functions/{name}/invocations", target.base);
    let mut request = target.client.post(&url).body(body);
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let sent = request.send();
    let sent = match crash {
        None => sent.await,
        Some(crash) => {
            let (plan, switch, _) = crash.as_ref();
            switch.arm(plan.instance(), plan.after_writes);
            tokio::select! {
                sent = sent => sent,
                () = switch.crashed() => {
                    tracing::warn!(function = name, "crash hook: the invocation ends as a dead process");
                    return Answer {
                        status: StatusCode::OK,
                        function_error: Some("Unhandled"),
                        error_type: None,
                        body: Bytes::from(
                            json!({"errorType": CRASH_ERROR, "errorMessage": plan.message()})
                                .to_string(),
                        ),
                    }
                    .into_response_with(Some(HeaderValue::from_static("application/json")));
                }
            }
        }
    };
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            return service_error(
                StatusCode::BAD_GATEWAY,
                "ServiceException",
                "Service",
                &format!("cargo lambda watch at {} did not answer: {e}", target.base),
            );
        }
    };
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => {
            return service_error(
                StatusCode::BAD_GATEWAY,
                "ServiceException",
                "Service",
                &format!("reading the answer of cargo lambda watch: {e}"),
            );
        }
    };
    let answer = translate(name, status, body);
    if answer.function_error.is_some() {
        tracing::info!(function = name, body = %String::from_utf8_lossy(&answer.body), "function error");
    }
    answer.into_response_with(content_type)
}

/// What the proxy answers for one answer of watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    /// `X-Amz-Function-Error`.
    pub function_error: Option<&'static str>,
    /// `X-Amzn-ErrorType` (a service error).
    pub error_type: Option<&'static str>,
    pub body: Bytes,
}

/// Maps watch's answer to `function`'s invocation to Lambda's.
pub fn translate(function: &str, status: StatusCode, body: Bytes) -> Answer {
    let answer = |status, function_error, error_type, body| Answer {
        status,
        function_error,
        error_type,
        body,
    };
    if status.is_success() {
        return answer(status, None, None, body);
    }
    if status == StatusCode::INTERNAL_SERVER_ERROR && is_function_error_document(&body) {
        // The handler failed: Lambda's invocation itself succeeded and carries the document.
        return answer(StatusCode::OK, Some("Unhandled"), None, body);
    }
    let detail = String::from_utf8_lossy(&body);
    if status == StatusCode::NOT_FOUND {
        let detail = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| detail.into_owned());
        return answer(
            StatusCode::NOT_FOUND,
            None,
            Some("ResourceNotFoundException"),
            error_body(
                "User",
                &format!("Function not found: {function} ({detail})"),
            ),
        );
    }
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        Some("ServiceException"),
        error_body(
            "Service",
            &format!("cargo lambda watch answered {status} for {function}: {detail}"),
        ),
    )
}

/// The runtime's error document: an object with a string `errorType`.
fn is_function_error_document(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|doc| doc.get("errorType").is_some_and(Value::is_string))
}

fn error_body(kind: &str, message: &str) -> Bytes {
    Bytes::from(json!({"Type": kind, "message": message}).to_string())
}

fn service_error(status: StatusCode, code: &'static str, kind: &str, message: &str) -> Response {
    Answer {
        status,
        function_error: None,
        error_type: Some(code),
        body: error_body(kind, message),
    }
    .into_response_with(None)
}

impl Answer {
    fn into_response_with(self, content_type: Option<HeaderValue>) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        let json = HeaderValue::from_static("application/json");
        let content_type = match (self.function_error, self.error_type) {
            (None, None) => content_type.unwrap_or(json),
            _ => json,
        };
        headers.insert(header::CONTENT_TYPE, content_type);
        if let Some(error) = self.function_error {
            headers.insert(
                HeaderName::from_static(FUNCTION_ERROR_HEADER),
                HeaderValue::from_static(error),
            );
        }
        if let Some(code) = self.error_type {
            headers.insert(
                HeaderName::from_static(ERROR_TYPE_HEADER),
                HeaderValue::from_static(code),
            );
        }
        if self.status.is_success() {
            // Watch has no versions: every invocation runs the working tree's build.
            headers.insert(
                HeaderName::from_static("x-amz-executed-version"),
                HeaderValue::from_static("$LATEST"),
            );
        }
        response
    }
}

async fn unknown_operation() -> Response {
    service_error(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        "User",
        "zdsync lambda-proxy serves only POST /2015-03-31/functions/{FunctionName}/invocations",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_name_form_maps_to_the_bare_name() {
        for given in [
            "zdsync-guard",
            "zdsync-guard:$LATEST",
            "zdsync-guard:live",
            "123456789012:function:zdsync-guard",
            "123456789012:function:zdsync-guard:7",
            "arn:aws:lambda:us-east-1:123456789012:function:zdsync-guard",
            "arn:aws:lambda:us-east-1:123456789012:function:zdsync-guard:live",
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:zdsync-guard",
        ] {
            assert_eq!(function_name(given), Ok("zdsync-guard"), "{given}");
        }
    }

    #[test]
    fn what_is_not_a_function_name_is_refused() {
        for given in [
            "",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "../zdsync-guard",
            "zdsync guard",
            &"x".repeat(65),
        ] {
            assert!(function_name(given).is_err(), "{given:?}");
        }
    }

    /// Watch answers a handler error with 500 and the runtime's document (what
    /// `lambda_runtime` posts to `/runtime/invocation/{id}/error`).
    #[test]
    fn a_handler_error_becomes_an_unhandled_function_error() {
        let document = r#"{"errorType":"InvalidConfig","errorMessage":"execution input is invalid at allow_deletion"}"#;
        let answer = translate(
            "zdsync-guard",
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from(document),
        );
        assert_eq!(
            answer,
            Answer {
                status: StatusCode::OK,
                function_error: Some("Unhandled"),
                error_type: None,
                body: Bytes::from(document),
            }
        );
    }

    #[test]
    fn a_result_passes_through() {
        let body = Bytes::from(r#"{"stage":"compare","counts":{}}"#);
        let answer = translate("zdsync-compare", StatusCode::OK, body.clone());
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.function_error, None);
        assert_eq!(answer.error_type, None);
        assert_eq!(answer.body, body);
    }

    /// A function that returns a JSON document with an `errorType` *successfully* is not an
    /// error: only watch's 500 says the handler failed.
    #[test]
    fn a_successful_result_that_looks_like_an_error_stays_a_result() {
        let body = Bytes::from(r#"{"errorType":"X","errorMessage":"y"}"#);
        let answer = translate("f", StatusCode::OK, body);
        assert_eq!(answer.function_error, None);
    }

    #[test]
    fn a_missing_binary_is_resource_not_found() {
        let body = Bytes::from(
            r#"{"title":"Missing function","detail":"that function doesn't exist as a binary in your project. Available functions: {\"zdsync-guard\"}"}"#,
        );
        let answer = translate("zdsync-nope", StatusCode::NOT_FOUND, body);
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.error_type, Some("ResourceNotFoundException"));
        assert_eq!(answer.function_error, None);
        let doc: Value = serde_json::from_slice(&answer.body).unwrap();
        let message = doc["message"].as_str().unwrap();
        assert!(
            message.starts_with("Function not found: zdsync-nope"),
            "{message}"
        );
        assert!(message.contains("Available functions"), "{message}");
    }

    /// Over HTTP, against a stand-in for watch that answers the way watch does (checked against
    /// cargo-lambda 1.9.2: a handler error is 500 with the runtime's document and no headers of
    /// note; an unknown binary is 404 `{"title","detail"}`).
    #[tokio::test]
    async fn the_proxy_speaks_lambdas_invoke_api_in_front_of_watch() {
        let watch = Router::new().route(
            "/2015-03-31/functions/{function}/invocations",
            post(|Path(function): Path<String>, body: Bytes| async move {
                match function.as_str() {
                    "zdsync-guard" => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        r#"{"errorType":"InvalidConfig","errorMessage":"bad option"}"#,
                    )
                        .into_response(),
                    "zdsync-compare" => (StatusCode::OK, body).into_response(),
                    _ => (
                        StatusCode::NOT_FOUND,
                        r#"{"title":"Missing function","detail":"not a binary"}"#,
                    )
                        .into_response(),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let watch_addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, watch).await });
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let proxy = serve(local, &format!("http://{watch_addr}/"))
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let invoke = |function: &str| {
            client.post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                proxy.url()
            ))
        };

        // A full ARN, percent-encoded as the AWS SDKs send it: the handler error arrives as
        // Lambda's function error.
        let arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Azdsync-guard";
        let answer = invoke(arn).body("{}").send().await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()[FUNCTION_ERROR_HEADER], "Unhandled");
        let document: Value = answer.json().await.unwrap();
        assert_eq!(document["errorType"], "InvalidConfig");
        assert_eq!(document["errorMessage"], "bad option");

        // A partial ARN with a qualifier: the payload goes through both ways.
        let answer = invoke("123456789012:function:zdsync-compare:live")
            .body(r#"{"run_id":"r"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert!(answer.headers().get(FUNCTION_ERROR_HEADER).is_none());
        assert_eq!(answer.text().await.unwrap(), r#"{"run_id":"r"}"#);

        let answer = invoke("zdsync-nope").send().await.unwrap();
        assert_eq!(answer.status(), 404);
        assert_eq!(
            answer.headers()[ERROR_TYPE_HEADER],
            "ResourceNotFoundException"
        );

        let answer = invoke("zdsync-compare")
            .header("X-Amz-Invocation-Type", "Event")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400);

        // Nothing listening behind the proxy: Lambda's service error, not a hang.
        let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let nobody_addr = nobody.local_addr().unwrap();
        drop(nobody);
        let orphan = serve(local, &format!("http://{nobody_addr}"))
            .await
            .unwrap();
        let answer = client
            .post(format!(
                "{}/2015-03-31/functions/zdsync-guard/invocations",
                orphan.url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 502);
        assert_eq!(answer.headers()[ERROR_TYPE_HEADER], "ServiceException");
        proxy.shutdown().await;
    }

    /// A 500 without a function error document is watch failing (e.g. it could not start the
    /// function), which Lambda would report as its own failure, not the function's.
    #[test]
    fn a_failure_of_watch_itself_is_a_service_exception() {
        let answer = translate(
            "zdsync-guard",
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from("failed to start function process"),
        );
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.error_type, Some("ServiceException"));
        assert_eq!(answer.function_error, None);
        let doc: Value = serde_json::from_slice(&answer.body).unwrap();
        assert!(
            doc["message"]
                .as_str()
                .unwrap()
                .contains("failed to start function process")
        );
    }
}
