//! `zdsync bench`: the whole state machine at a given size, every stage as its own Lambda
//! function process — the release binaries of `functions/`, driven through the Lambda Runtime
//! API as Lambda drives them — against a sandbox served by a separate process. Per stage it
//! measures wall time, cold start (process start → first `next`), peak RSS, the bytes read and
//! written, and the JSON floor: how long serde_json takes to parse those same bytes into a
//! `Value` and serialise them back, on this machine, in this run.
//!
//! Stages run one at a time (a Parallel's branches wait for each other), so each one's figures
//! are its own; the guard and the summary run in-process (the guard asks Step Functions, which
//! is not here, for running executions).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::NaiveDate;
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
use zdsync::config::Settings;
use zdsync::stages::{Stage, StageStats};
use zdsync_sandbox::{DEFAULT_EXISTING_ORGS, Fixture, GeneratorOptions};

use crate::asl::{ExecError, ExecutionStatus, TaskInvoker};
use crate::local::{self, DataDir, InProcessStages, Progress, RunRequest, World, WorldSpec};

#[derive(Args)]
pub struct BenchArgs {
    /// World sizes, in Salesforce accounts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10000,50000,200000")]
    accounts: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The run date of the generated worlds and the runs.
    #[arg(long, default_value = "2026-12-01")]
    as_of: NaiveDate,
    /// Share of ordinary accounts whose Zendesk organization exists (0: a first run).
    #[arg(long, default_value_t = DEFAULT_EXISTING_ORGS)]
    existing_orgs: f64,
    /// Zendesk's account rate limit in the sandbox, requests per minute (0: none, to measure
    /// the code rather than the limit).
    #[arg(long, default_value_t = 0)]
    rate_limit: u32,
    /// How long a sandbox Zendesk job takes.
    #[arg(long, default_value_t = 50)]
    job_delay_ms: u64,
    /// The sync's share of each Zendesk instance's rate limit, requests per minute
    /// (`zendesk.<instance>.max_requests_per_minute`; 0: the default, half the advertised
    /// limit).
    #[arg(long, default_value_t = 0)]
    share: u32,
    /// Another app of the account: this many Global requests a minute, evenly, during each run;
    /// the figures say how many it sent and how many were refused with 429.
    #[arg(long, default_value_t = 0)]
    neighbour_rpm: u32,
    /// Executions per size: the first does the work, a second shows the steady state.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Where the function binaries (`zdsync-<stage>`) are; default: beside this binary.
    #[arg(long)]
    functions: Option<PathBuf>,
    /// Worlds, artifacts and function logs.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// The results as JSON.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
}

/// One function invocation, measured.
#[derive(Debug, Clone, Serialize)]
struct Invocation {
    stage: String,
    /// Process start to the response.
    wall_s: f64,
    /// Process start to its first `GET …/invocation/next`: the cold start.
    init_ms: f64,
    /// Peak resident set of the process, from `wait4`.
    peak_rss_mb: f64,
    error: Option<String>,
}

/// One stage of one run: its invocations and what its stats say it read and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct StageFigures {
    stage: String,
    invocations: usize,
    wall_s: f64,
    init_ms: f64,
    peak_rss_mb: f64,
    artifacts_in_mb: f64,
    artifacts_out_mb: f64,
    http_in_mb: f64,
    http_out_mb: f64,
    requests: u64,
    /// serde_json parse-to-Value + serialise of the stage's bytes, measured here.
    floor_s: f64,
    /// wall / floor.
    floor_ratio: f64,
    /// Records the stage's counts say it created (syncs).
    created: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    accounts: usize,
    run_id: String,
    status: String,
    wall_s: f64,
    generate_s: f64,
    world_mb: f64,
    stages: Vec<StageFigures>,
    zendesk_writes: u64,
    /// Requests per route the sandbox answered in this run (`global POST /api/v2/users/create_many`).
    requests_by_route: BTreeMap<String, u64>,
    /// Global orgs created, and the Global requests of the sold-to step (user creates,
    /// searches, memberships) per created org.
    global_creates: u64,
    sold_to_requests_per_new_org: f64,
    /// Per service, the most requests any 60 seconds of the run held (the sync's and the
    /// neighbour's together).
    busiest_minute: BTreeMap<String, u64>,
    /// The other app's requests during the run, and its 429s.
    neighbour: Option<Neighbour>,
}

/// Another app of the Zendesk account, making steady requests while the sync runs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Neighbour {
    requests_per_minute: u32,
    requests: u64,
    throttled: u64,
}

impl Neighbour {
    /// Sends `rpm` Global requests a minute, evenly, until `stop` says so.
    async fn run(
        rpm: u32,
        env: BTreeMap<String, String>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Neighbour> {
        let url = format!(
            "{}/api/v2/organizations?page[size]=1",
            env.get("ZDSYNC_ZENDESK_GLOBAL_URL")
                .context("the sandbox's Global URL")?
                .trim_end_matches('/')
        );
        let user = format!(
            "{}/token",
            env.get("ZDSYNC_ZENDESK_GLOBAL_EMAIL")
                .context("the sandbox's Global email")?
        );
        let token = env
            .get("ZDSYNC_ZENDESK_GLOBAL_TOKEN")
            .context("the sandbox's Global token")?
            .clone();
        let http = reqwest::Client::new();
        let mut figures = Neighbour {
            requests_per_minute: rpm,
            ..Neighbour::default()
        };
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(60.0 / f64::from(rpm)));
        while !*stop.borrow() {
            ticks.tick().await;
            let answer = http
                .get(&url)
                .basic_auth(&user, Some(&token))
                .send()
                .await?;
            figures.requests += 1;
            if answer.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                figures.throttled += 1;
            }
        }
        Ok(figures)
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let functions = match &args.functions {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the zdsync binary has a folder")?
            .to_owned(),
    };
    for stage in Stage::ALL {
        let binary = functions.join(function_binary(stage));
        if !binary.exists() {
            bail!(
                "{} is missing: build the functions first (cargo build --release --workspace --bins, or scripts/bench.sh)",
                binary.display()
            );
        }
    }
    std::fs::create_dir_all(&args.work_dir)?;
    let work_dir = std::path::absolute(&args.work_dir)?;
    let mut results = Vec::new();
    for &accounts in &args.accounts {
        let figures = bench_size(&args, &functions, &work_dir, accounts).await?;
        results.extend(figures);
        // Written after every size, so a long benchmark leaves what it measured so far.
        if let Some(dir) = args.out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&args.out, serde_json::to_vec_pretty(&results)?)?;
    }
    println!("{}", markdown(&results));
    println!("results: {}", args.out.display());
    Ok(())
}

fn function_binary(stage: Stage) -> String {
    format!("zdsync-{}", stage.function_name())
}

async fn bench_size(
    args: &BenchArgs,
    functions: &Path,
    work_dir: &Path,
    accounts: usize,
) -> anyhow::Result<Vec<RunFigures>> {
    let dir = work_dir.join(format!("{accounts}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    eprintln!("bench: generating {accounts} accounts");
    let generated = Instant::now();
    let world_file = dir.join("world.json");
    {
        let mut options = GeneratorOptions::new(accounts, args.seed, args.as_of);
        options.existing_orgs = args.existing_orgs;
        let fixture = Fixture::generate(&options);
        fixture.write_json(std::io::BufWriter::new(std::fs::File::create(&world_file)?))?;
    }
    let generate_s = generated.elapsed().as_secs_f64();
    let world_mb = mb(std::fs::metadata(&world_file)?.len());

    let data_dir = dir.join("data");
    let env_file = dir.join("sandbox.env");
    let mut sandbox = SandboxProcess::start(args, &world_file, &env_file, &data_dir).await?;
    let mut env = read_env_file(&env_file)?;
    if args.share > 0 {
        for instance in ["GLOBAL", "USGOV"] {
            env.insert(
                format!("ZDSYNC_ZENDESK_{instance}_MAX_REQUESTS_PER_MINUTE"),
                args.share.to_string(),
            );
        }
    }
    let settings = Settings::load(None, &env).context("the sandbox's settings")?;
    let world = World::with_settings(WorldSpec::Config { path: None }, settings);
    let data = DataDir::new(&data_dir);
    let mut out = Vec::new();
    for n in 1..=args.runs {
        let run_id = format!("bench-{accounts}-{n}");
        let invoker = FunctionProcesses {
            functions: functions.to_owned(),
            env: env.clone(),
            logs: dir.join("logs"),
            in_process: InProcessStages::new(world.context(&data)?),
            one_at_a_time: tokio::sync::Mutex::new(()),
            measured: Mutex::new(Vec::new()),
        };
        std::fs::create_dir_all(&invoker.logs)?;
        let request = RunRequest {
            run_id: run_id.clone(),
            as_of: args.as_of,
            dry_run: false,
            allow_deletions: BTreeMap::new(),
            retry_time_scale: 1.0,
            crash: None,
        };
        eprintln!("bench: {run_id}");
        sandbox.reset_counters().await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let neighbour = (args.neighbour_rpm > 0)
            .then(|| tokio::spawn(Neighbour::run(args.neighbour_rpm, env.clone(), stopped)));
        let started = Instant::now();
        let outcome =
            local::run_with_invoker(&data, &world, &request, &invoker, &Progress::new(false))
                .await?;
        let wall_s = started.elapsed().as_secs_f64();
        let _ = stop.send(true);
        let neighbour = match neighbour {
            Some(task) => Some(task.await??),
            None => None,
        };
        let invocations = invoker.measured.into_inner().expect("not poisoned");
        let stages = figures(&data_dir, &run_id, &invocations)?;
        let counters = sandbox.counters().await?;
        let writes = sandbox.zendesk_writes().await?;
        let busiest_minute = counters.busiest_minute.clone();
        let requests_by_route: BTreeMap<String, u64> = counters
            .requests
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        let global_creates = stages
            .iter()
            .find(|s| s.stage == "sync-global")
            .map_or(0, |s| s.created);
        let sold_to: u64 = requests_by_route
            .iter()
            .filter(|(route, _)| is_sold_to_route(route))
            .map(|(_, n)| n)
            .sum();
        out.push(RunFigures {
            accounts,
            run_id,
            status: format!("{:?}", outcome.record.status),
            wall_s,
            generate_s,
            world_mb,
            stages,
            zendesk_writes: writes,
            requests_by_route,
            global_creates,
            sold_to_requests_per_new_org: if global_creates > 0 {
                sold_to as f64 / global_creates as f64
            } else {
                0.0
            },
            busiest_minute,
            neighbour,
        });
        if outcome.record.status != ExecutionStatus::Succeeded {
            eprintln!(
                "bench: the run did not succeed: {:?} {:?}",
                outcome.record.error, outcome.record.cause
            );
            break;
        }
    }
    sandbox.stop();
    Ok(out)
}

/// Per stage: its invocations' time and memory, its stats' bytes, and its JSON floor.
fn figures(
    data_dir: &Path,
    run_id: &str,
    invocations: &[Invocation],
) -> anyhow::Result<Vec<StageFigures>> {
    let stats_dir = data_dir.join("runs").join(run_id).join("stages");
    let mut stats: BTreeMap<String, StageStats> = BTreeMap::new();
    for entry in std::fs::read_dir(&stats_dir)? {
        let path = entry?.path();
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        stats.insert(name, serde_json::from_slice(&std::fs::read(&path)?)?);
    }
    // The floor's rate for HTTP bodies (not kept): seconds per byte over all artifacts.
    let mut floors: BTreeMap<String, f64> = BTreeMap::new();
    let (mut floor_total, mut bytes_total) = (0.0, 0u64);
    for stage in stats.values() {
        for key in stage
            .artifacts
            .read
            .keys()
            .chain(stage.artifacts.written.keys())
        {
            if floors.contains_key(key) {
                continue;
            }
            let body = std::fs::read(data_dir.join(key))?;
            let seconds = json_floor(&body);
            floor_total += seconds;
            bytes_total += body.len() as u64;
            floors.insert(key.clone(), seconds);
        }
    }
    let per_byte = if bytes_total > 0 {
        floor_total / bytes_total as f64
    } else {
        0.0
    };
    let mut by_stage: BTreeMap<String, Vec<&Invocation>> = BTreeMap::new();
    for invocation in invocations {
        by_stage
            .entry(invocation.stage.clone())
            .or_default()
            .push(invocation);
    }
    let mut out = Vec::new();
    for (name, stage) in &stats {
        let runs = by_stage.get(name).cloned().unwrap_or_default();
        let http: (u64, u64) = stage
            .calls
            .0
            .iter()
            .filter(|(service, _)| service.as_str() != zdsync::calls::STORE)
            .fold((0, 0), |(i, o), (_, c)| {
                (i + c.bytes_received, o + c.bytes_sent)
            });
        let artifacts_in: u64 = stage.artifacts.read.values().sum();
        let artifacts_out: u64 = stage.artifacts.written.values().sum();
        let floor_s = stage
            .artifacts
            .read
            .keys()
            .chain(stage.artifacts.written.keys())
            .map(|k| floors[k])
            .sum::<f64>()
            + (http.0 + http.1) as f64 * per_byte;
        let wall_s: f64 = runs.iter().map(|r| r.wall_s).sum();
        out.push(StageFigures {
            stage: name.clone(),
            invocations: runs.len(),
            wall_s,
            init_ms: runs.iter().map(|r| r.init_ms).fold(0.0, f64::max),
            peak_rss_mb: runs.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max),
            artifacts_in_mb: mb(artifacts_in),
            artifacts_out_mb: mb(artifacts_out),
            http_in_mb: mb(http.0),
            http_out_mb: mb(http.1),
            requests: stage
                .calls
                .0
                .iter()
                .filter(|(service, _)| service.as_str() != zdsync::calls::STORE)
                .map(|(_, c)| c.requests)
                .sum(),
            floor_s,
            floor_ratio: if floor_s > 0.0 { wall_s / floor_s } else { 0.0 },
            created: stage.counts.get("created").copied().unwrap_or(0),
        });
    }
    Ok(out)
}

/// serde_json's time to parse `body` into a `Value` and serialise it back: the least any
/// stage that reads or writes these bytes as JSON could spend on them. Best of three.
fn json_floor(body: &[u8]) -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let text = serde_json::to_vec(&value).unwrap_or_default();
            std::hint::black_box(text);
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The Global routes of the sold-to step: creating users, looking up taken emails, adding
/// memberships (single or in bulk). Their jobs' polls share `job_statuses` with the org jobs
/// and are not counted.
fn is_sold_to_route(route: &str) -> bool {
    route.starts_with("global ")
        && (route.ends_with("/api/v2/users/create_many")
            || route.ends_with("/api/v2/users/search")
            || route.ends_with(" /api/v2/users")
            || route.contains("/organization_memberships"))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

pub fn markdown(results: &[RunFigures]) -> String {
    let mut text = String::new();
    for run in results {
        text.push_str(&format!(
            "\n### {} accounts — {} ({}) in {:.1} s, {} Zendesk writes; world {:.0} MB, generated in {:.1} s\n\n{} new Global orgs; sold-to step {:.3} requests per new org\n\n",
            run.accounts, run.run_id, run.status, run.wall_s, run.zendesk_writes, run.world_mb, run.generate_s,
            run.global_creates, run.sold_to_requests_per_new_org
        ));
        let busiest: Vec<String> = run
            .busiest_minute
            .iter()
            .filter(|(service, _)| matches!(service.as_str(), "global" | "usgov" | "salesforce"))
            .map(|(service, n)| format!("{service} {n}"))
            .collect();
        text.push_str(&format!(
            "Busiest 60 s: {}\n\n",
            if busiest.is_empty() {
                "–".to_owned()
            } else {
                busiest.join(", ")
            }
        ));
        if let Some(n) = run.neighbour {
            text.push_str(&format!(
                "Another app at {} requests a minute during the run: {} requests, {} answered 429\n\n",
                n.requests_per_minute, n.requests, n.throttled
            ));
        }
        text.push_str("| stage | inv. | wall s | init ms | peak RSS MB | artifacts in / out MB | HTTP in / out MB | requests | floor s | × floor |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for s in &run.stages {
            text.push_str(&format!(
                "| {} | {} | {:.2} | {:.0} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {} | {:.2} | {:.2} |\n",
                s.stage,
                s.invocations,
                s.wall_s,
                s.init_ms,
                s.peak_rss_mb,
                s.artifacts_in_mb,
                s.artifacts_out_mb,
                s.http_in_mb,
                s.http_out_mb,
                s.requests,
                s.floor_s,
                s.floor_ratio
            ));
        }
    }
    text
}

/// `KEY=VALUE` lines, as `zdsync sandbox --env-file` writes them.
fn read_env_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// `zdsync sandbox` serving the world from its own process.
struct SandboxProcess {
    child: std::process::Child,
    url: String,
}

impl SandboxProcess {
    async fn start(
        args: &BenchArgs,
        world: &Path,
        env_file: &Path,
        store: &Path,
    ) -> anyhow::Result<SandboxProcess> {
        let port = free_port()?;
        let log = std::fs::File::create(env_file.with_extension("log"))?;
        let child = std::process::Command::new(std::env::current_exe()?)
            .arg("sandbox")
            .arg("--fixture")
            .arg(world)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--env-file")
            .arg(env_file)
            .arg("--store")
            .arg(store)
            .args(["--job-delay-ms", &args.job_delay_ms.to_string()])
            .args(["--rate-limit", &args.rate_limit.to_string()])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the sandbox process")?;
        let mut sandbox = SandboxProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let began = Instant::now();
        loop {
            let ready = std::fs::read_to_string(env_file)
                .is_ok_and(|text| text.contains("ZDSYNC_STORE_URL="));
            if ready {
                return Ok(sandbox);
            }
            if let Some(status) = sandbox.child.try_wait()? {
                bail!(
                    "the sandbox exited with {status}; see {}",
                    env_file.with_extension("log").display()
                );
            }
            if began.elapsed() > Duration::from_secs(600) {
                sandbox.stop();
                bail!("the sandbox did not come up in 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn reset_counters(&self) -> anyhow::Result<()> {
        reqwest::Client::new()
            .post(format!("{}/_sandbox/reset-counters", self.url))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    async fn counters(&self) -> anyhow::Result<zdsync_sandbox::Counters> {
        Ok(reqwest::get(format!("{}/_sandbox/counters", self.url))
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Zendesk writes so far, both instances (the sandbox's counters).
    async fn zendesk_writes(&self) -> anyhow::Result<u64> {
        let counters = self.counters().await?;
        Ok(zdsync_sandbox::ZendeskInstance::ALL
            .into_iter()
            .map(|i| counters.zendesk_write_calls(i))
            .sum())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Each Task a function process, one at a time, measured.
struct FunctionProcesses {
    functions: PathBuf,
    env: BTreeMap<String, String>,
    logs: PathBuf,
    in_process: InProcessStages,
    one_at_a_time: tokio::sync::Mutex<()>,
    measured: Mutex<Vec<Invocation>>,
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
    async fn invoke_process(
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

    async fn drive(
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
fn peak_rss_kb(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Blocks until process `pid` ends; its exit status and peak RSS in KiB.
fn wait_for(pid: libc::pid_t) -> (i32, i64) {
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
fn lambda_environment(stage: Stage, api: &str) -> Vec<(String, String)> {
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
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

enum Answer {
    Response(Value),
    Error { error_type: String, message: String },
}

/// The Lambda Runtime API for one invocation: the first `next` gets the event, later ones wait
/// (the process is ended once it has answered).
struct RuntimeApi {
    address: String,
    first_next: Arc<tokio::sync::Mutex<Option<Instant>>>,
    answer: oneshot::Receiver<Answer>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct ApiState {
    event: Arc<Mutex<Option<Value>>>,
    first_next: Arc<tokio::sync::Mutex<Option<Instant>>>,
    answer: Arc<Mutex<Option<oneshot::Sender<Answer>>>>,
}

const REQUEST_ID: &str = "00000000-0000-4000-8000-000000000001";

impl RuntimeApi {
    async fn serve(event: Value) -> anyhow::Result<RuntimeApi> {
        let (tx, rx) = oneshot::channel();
        let state = ApiState {
            event: Arc::new(Mutex::new(Some(event))),
            first_next: Arc::new(tokio::sync::Mutex::new(None)),
            answer: Arc::new(Mutex::new(Some(tx))),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi {
            address,
            first_next: state.first_next,
            answer: rx,
            server,
        })
    }
}

async fn next(State(state): State<ApiState>) -> axum::response::Response {
    {
        let mut first = state.first_next.lock().await;
        first.get_or_insert_with(Instant::now);
    }
    let event = state.event.lock().expect("not poisoned").take();
    let Some(event) = event else {
        // Already handed out: the process waits here until it is ended.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 15 * 60 * 1000;
    let mut headers = HeaderMap::new();
    headers.insert(
        "Lambda-Runtime-Aws-Request-Id",
        REQUEST_ID.parse().expect("header"),
    );
    headers.insert(
        "Lambda-Runtime-Deadline-Ms",
        deadline.to_string().parse().expect("header"),
    );
    headers.insert(
        "Lambda-Runtime-Invoked-Function-Arn",
        "arn:aws:lambda:us-east-1:000000000000:function:bench"
            .parse()
            .expect("header"),
    );
    (StatusCode::OK, headers, axum::Json(event)).into_response()
}

fn send(state: &ApiState, answer: Answer) {
    if let Some(tx) = state.answer.lock().expect("not poisoned").take() {
        let _ = tx.send(answer);
    }
}

async fn response(
    State(state): State<ApiState>,
    UrlPath(_id): UrlPath<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let output = serde_json::from_slice(&body).unwrap_or(Value::Null);
    send(&state, Answer::Response(output));
    StatusCode::ACCEPTED
}

async fn error(
    State(state): State<ApiState>,
    UrlPath(_id): UrlPath<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let diagnostic: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    send(
        &state,
        Answer::Error {
            error_type: diagnostic["errorType"]
                .as_str()
                .unwrap_or("Unhandled")
                .to_owned(),
            message: diagnostic["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        },
    );
    StatusCode::ACCEPTED
}

async fn init_error(State(state): State<ApiState>, body: axum::body::Bytes) -> StatusCode {
    send(
        &state,
        Answer::Error {
            error_type: "Runtime.InitError".to_owned(),
            message: String::from_utf8_lossy(&body).into_owned(),
        },
    );
    StatusCode::ACCEPTED
}
