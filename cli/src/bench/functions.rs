//! Each Task a release function process, one at a time, driven through the Lambda Runtime API
//! and measured (wall, cold start, peak RSS).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use zdsync::stages::{Stage, StageStats};

use super::figures::Invocation;
use super::function_binary;
use super::runtime_api::{Answer, RuntimeApi};
use crate::asl::{ExecError, TaskInvoker};
use crate::local::{self, InProcessStages};

/// Each Task a function process, one at a time, measured.
pub(super) struct FunctionProcesses {
    pub(super) functions: PathBuf,
    pub(super) env: BTreeMap<String, String>,
    pub(super) logs: PathBuf,
    pub(super) in_process: InProcessStages,
    pub(super) one_at_a_time: tokio::sync::Mutex<()>,
    pub(super) measured: Mutex<Vec<Invocation>>,
}

#[async_trait]
impl TaskInvoker for FunctionProcesses {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, ExecError> {
        let stage = local::deployed_stage(resource)?;
        if matches!(stage, Stage::Guard | Stage::Summarize) {
            return self.in_process.invoke(resource, input).await;
        }
        let _alone = self.one_at_a_time.lock().await;
        let name = StageStats::label(stage, &input);
        let (result, invocation) = self.invoke_process(stage, &name, input).await;
        eprintln!(
            "bench:   {name}: {:.2} s, init {:.0} ms, peak {:.0} MB{}",
            invocation.wall_s,
            invocation.init_ms,
            invocation.peak_rss_mb,
            invocation
                .error
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        );
        self.measured.lock().expect("not poisoned").push(invocation);
        result
    }
}

impl FunctionProcesses {
    pub(super) async fn invoke_process(
        &self,
        stage: Stage,
        name: &str,
        input: Value,
    ) -> (Result<Value, ExecError>, Invocation) {
        let mut invocation = Invocation {
            stage: name.to_owned(),
            wall_s: 0.0,
            init_ms: 0.0,
            peak_rss_mb: 0.0,
            error: None,
        };
        let result = self.drive(stage, name, input, &mut invocation).await;
        if let Err(e) = &result {
            invocation.error = Some(format!("{}: {}", e.error, e.cause));
        }
        (result, invocation)
    }

    pub(super) async fn drive(
        &self,
        stage: Stage,
        name: &str,
        input: Value,
        invocation: &mut Invocation,
    ) -> Result<Value, ExecError> {
        let failed = |what: String| ExecError::new("Bench.Error", what);
        let api = RuntimeApi::serve(input)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let log = std::fs::File::create(self.logs.join(format!("{name}.log")))
            .map_err(|e| failed(e.to_string()))?;
        let started = Instant::now();
        let child = std::process::Command::new(self.functions.join(function_binary(stage)))
            .env_clear()
            .envs(&self.env)
            .envs(lambda_environment(stage, &api.address))
            .stdout(log.try_clone().map_err(|e| failed(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| failed(format!("starting {}: {e}", function_binary(stage))))?;
        let pid = child.id() as libc::pid_t;
        let mut exited = tokio::task::spawn_blocking(move || wait_for(pid));
        let RuntimeApi {
            first_next,
            answer,
            server,
            ..
        } = api;
        let answer = tokio::select! {
            answer = answer => answer.map_err(|_| failed("the runtime API went away".into())),
            status = &mut exited => Err(failed(format!(
                "the function exited before answering ({:?})",
                status.ok().map(|(status, _)| status)
            ))),
        };
        invocation.wall_s = started.elapsed().as_secs_f64();
        if let Ok(ready) = first_next.try_lock().map(|t| *t) {
            invocation.init_ms = ready.map_or(0.0, |t| (t - started).as_secs_f64() * 1000.0);
        }
        // Done: the process would wait for its next event. Its peak memory is read before it is
        // ended: `VmHWM` counts the program since `exec`, where `wait4`'s `ru_maxrss` would also
        // count the bench's own pages, copied into the child before it became the function.
        let peak_kb = peak_rss_kb(pid);
        // SAFETY: `pid` is our child, not yet reaped (the waiter thread reaps it).
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        let waited = exited.await;
        invocation.peak_rss_mb = match (peak_kb, waited) {
            (Some(kb), _) => kb as f64 / 1024.0,
            // Exited on its own (a crash): only the kernel's figure is left.
            (None, Ok((_, max_rss_kb))) => max_rss_kb as f64 / 1024.0,
            (None, Err(_)) => 0.0,
        };
        server.abort();
        drop(child);
        match answer? {
            Answer::Response(output) => Ok(output),
            Answer::Error {
                error_type,
                message,
            } => Err(ExecError::new(&error_type, message)),
        }
    }
}

/// The peak resident set (`VmHWM`, KiB) of a running process.
pub(super) fn peak_rss_kb(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Blocks until process `pid` ends; its exit status and peak RSS in KiB.
pub(super) fn wait_for(pid: libc::pid_t) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: plain syscall on our own child; `usage` is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::wait4(pid, &mut status, 0, &mut usage);
    }
    (status, usage.ru_maxrss)
}

/// What Lambda sets in a function's environment (the runtime reads these at start), plus a
/// region and placeholder credentials so the AWS SDK never waits on instance metadata.
pub(super) fn lambda_environment(stage: Stage, api: &str) -> Vec<(String, String)> {
    let name = format!("bench-zdsync-{}", stage.function_name());
    [
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
        // As infra/template.yaml sets it for every function: freed memory goes back to the
        // system within 10 ms, so the peaks measured are the memory sizes the template needs.
        ("MIMALLOC_PURGE_DELAY", "10".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
