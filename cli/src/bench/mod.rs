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

mod figures;
mod functions;
mod neighbour;
mod runtime_api;
mod sandbox_process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::Args;
use zdsync::config::Settings;
use zdsync::stages::Stage;
use zdsync_sandbox::{DEFAULT_EXISTING_ORGS, Fixture, GeneratorOptions};

use crate::asl::ExecutionStatus;
use crate::local::{self, DataDir, InProcessStages, Progress, RunRequest, World, WorldSpec};

pub use figures::{RunFigures, StageFigures, markdown};
use figures::{figures, is_sold_to_route, mb};
use functions::FunctionProcesses;
use neighbour::Neighbour;
use sandbox_process::{SandboxProcess, read_env_file};

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
    /// limit — or, with no --rate-limit, no share at all: a sandbox without a limit advertises
    /// none, and the client's assumed figure would measure the pacing, not the code).
    #[arg(long, default_value_t = 0)]
    share: u32,
    /// Another app of the account: this many Global requests a minute, evenly, during each run;
    /// the figures say how many it sent and how many were refused with 429.
    #[arg(long, default_value_t = 0)]
    neighbour_rpm: u32,
    /// Executions per size: the first does the work, a second shows the steady state (a quiet
    /// run: nothing changed since the first).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Before each run after the quiet ones (but a --full-last reconcile), rename this many
    /// customer accounts in Salesforce (a delta run with changes to carry to Zendesk).
    #[arg(long, default_value_t = 0)]
    changes: usize,
    /// How many runs after the first change nothing (the first of them follows the first run's
    /// writes; the next ones are an hour in which nothing happened at all).
    #[arg(long, default_value_t = 1)]
    quiet_runs: usize,
    /// Make the last run a full reconcile (`full: true`): after delta runs, it finds nothing to
    /// write when they left Zendesk as a full run would.
    #[arg(long)]
    full_last: bool,
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
    let customers = {
        let mut options = GeneratorOptions::new(accounts, args.seed, args.as_of);
        options.existing_orgs = args.existing_orgs;
        let fixture = Fixture::generate(&options);
        fixture.write_json(std::io::BufWriter::new(std::fs::File::create(&world_file)?))?;
        customer_ids(&fixture)
    };
    let generate_s = generated.elapsed().as_secs_f64();
    let world_mb = mb(std::fs::metadata(&world_file)?.len());

    let data_dir = dir.join("data");
    let env_file = dir.join("sandbox.env");
    let mut sandbox = SandboxProcess::start(args, &world_file, &env_file, &data_dir).await?;
    let mut env = read_env_file(&env_file)?;
    if let Some(share) = share(args) {
        for instance in ["GLOBAL", "USGOV"] {
            env.insert(
                format!("ZDSYNC_ZENDESK_{instance}_MAX_REQUESTS_PER_MINUTE"),
                share.to_string(),
            );
        }
    }
    let settings = Settings::load(None, &env).context("the sandbox's settings")?;
    let world = World::with_settings(WorldSpec::Config { path: None }, settings);
    let data = DataDir::new(&data_dir);
    let mut out = Vec::new();
    for n in 1..=args.runs {
        let run_id = format!("bench-{accounts}-{n}");
        let reconcile = args.full_last && n == args.runs && n > 1;
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
            full: reconcile,
            allow_deletions: BTreeMap::new(),
            retry_time_scale: 1.0,
            crash: None,
        };
        // The reconcile follows the delta runs with nothing changed: what it writes is what they
        // left undone.
        if n > 1 + args.quiet_runs && args.changes > 0 && !reconcile {
            let renamed = changed_accounts(&customers, args.changes, n);
            eprintln!("bench: renaming {} accounts in Salesforce", renamed.len());
            for id in &renamed {
                sandbox
                    .patch_salesforce(
                        "Account",
                        id,
                        &serde_json::json!({"Name": format!("Renamed {id} ({n})")}),
                    )
                    .await?;
            }
        }
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
/// The world's customer accounts' ids, in the world's order.
fn customer_ids(fixture: &Fixture) -> Vec<String> {
    fixture
        .salesforce
        .objects
        .get("Account")
        .into_iter()
        .flatten()
        .filter(|a| a["Type"] == "Customer")
        .filter_map(|a| a["Id"].as_str().map(str::to_owned))
        .collect()
}

/// `count` customer accounts spread evenly over the world, a different set each run.
fn changed_accounts(customers: &[String], count: usize, run: usize) -> Vec<String> {
    let step = (customers.len() / count.max(1)).max(1);
    customers
        .iter()
        .skip(run % step)
        .step_by(step)
        .take(count)
        .cloned()
        .collect()
}

/// The share the bench gives the sync: `--share`, or none to speak of when the sandbox has no
/// limit (`--rate-limit 0`) — measuring the code, not the pacing; otherwise the client's
/// default (half the limit the sandbox advertises).
fn share(args: &BenchArgs) -> Option<u32> {
    match (args.share, args.rate_limit) {
        (0, 0) => Some(UNPACED),
        (0, _) => None,
        (share, _) => Some(share),
    }
}

/// Requests a minute no run comes near: the sync is not paced.
const UNPACED: u32 = 1_000_000;
