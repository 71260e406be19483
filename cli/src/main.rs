//! `zdsync`: run the sync locally, redrive it, run one stage, read a run's report, or serve the
//! API emulator.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use zdsync::model::{Instance, SyncKind};
use zdsync::stages::Stage;
use zdsync_cli::local::{self, DataDir, Progress, RunRequest, World, WorldSpec, world};
use zdsync_cli::{cloud, lambda_proxy, report, runs, sandbox_cmd};

#[derive(Parser)]
#[command(
    name = "zdsync",
    version,
    about = "Salesforce → Zendesk (Global and US Gov) sync: local runs, redrive, stages, sandbox"
)]
struct Cli {
    /// Show the stages' own log lines (info level) on stderr.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a full sync: statemachine/sync.asl.json executed locally, each stage in-process.
    /// Without --config it runs against the in-process sandbox with a generated demo world.
    Run(RunArgs),
    /// Resume a failed local execution from its failed states, like Step Functions redrive.
    Redrive(RedriveArgs),
    /// Run one stage (the `cargo lambda invoke` equivalent) and print its output.
    Stage(StageArgs),
    /// Print a finished run's report (runs/<run_id>/report.md): the latest run without RUN_ID.
    Report(ReportArgs),
    /// Why one account (Salesforce id) or US Gov user (email) is as it is after a run: its
    /// record, each rule that applied, the Zendesk record it matched, the change, what the sync
    /// did. From the run's artifacts, by the functions that ran.
    Explain(ExplainArgs),
    /// Print one artifact of the store as it was written (e.g. runs/<run_id>/zendesk_global.json):
    /// a big artifact's pointer is followed to its compressed blob, checked and expanded.
    Artifact(ArtifactArgs),
    /// Serve the Salesforce/Zendesk/Slack emulator on loopback (for `cargo lambda watch`).
    Sandbox(sandbox_cmd::SandboxArgs),
    /// Operate the deployed state machine (AWS credentials and region from the environment).
    Cloud(CloudArgs),
    /// Serve the Lambda Invoke API in front of `cargo lambda watch` (function ARNs, Lambda's
    /// function-error shape), so a Step Functions engine can run the real functions.
    LambdaProxy(lambda_proxy::ProxyArgs),
    /// Benchmark the whole sync at several sizes, each stage a Lambda function process
    /// (scripts/bench.sh builds the release binaries and runs it).
    Bench(zdsync_cli::bench::BenchArgs),
}

#[derive(Args)]
struct CloudArgs {
    /// The deployed state machine (stack output StateMachineArn).
    #[arg(long, env = "ZDSYNC_CLOUD_STATE_MACHINE_ARN")]
    state_machine_arn: String,
    #[command(subcommand)]
    command: CloudCommand,
}

#[derive(Subcommand)]
enum CloudCommand {
    /// Start an execution now (outside the hourly schedule).
    Start {
        /// Execution name = run id (artifacts under runs/<name>/); default manual-<UTC time>.
        #[arg(long)]
        name: Option<String>,
        /// Raw execution input (JSON object); the flags below are merged into it.
        #[arg(long)]
        input: Option<String>,
        #[arg(long)]
        dry_run: bool,
        /// After checking a tripped deletion guard: allow N marks by one sync (global, usgov,
        /// partners, users), e.g. global=40.
        #[arg(long, value_parser = parse_allowance)]
        allow_deletions: Vec<(SyncKind, usize)>,
    },
    /// Redrive a failed execution from its failed state.
    Redrive {
        execution_arn: String,
        /// After checking a tripped deletion guard: allow N marks by one sync in the redriven
        /// execution (recorded in the run's allow_deletions.json in the store of --config).
        #[arg(long, value_parser = parse_allowance)]
        allow_deletions: Vec<(SyncKind, usize)>,
        /// Settings with the artifact store (store.url) where the allowance is recorded.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The last executions, with state, duration and error.
    Status {
        #[arg(long, default_value_t = 10)]
        limit: i32,
    },
}

#[derive(Args, Clone)]
struct WorldArgs {
    /// Settings file (TOML) with real endpoints; ZDSYNC_* variables override it. Without it,
    /// the in-process sandbox is used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where runs (artifacts, execution history) and the sandbox's state live.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Sandbox: forget the saved state and start from a newly generated demo world.
    #[arg(long)]
    fresh: bool,
    /// Sandbox: accounts in a generated world.
    #[arg(long, default_value_t = world::DEMO_ACCOUNTS)]
    accounts: usize,
    /// Sandbox: generator seed.
    #[arg(long, default_value_t = world::DEMO_SEED)]
    seed: u64,
    /// Sandbox: share of ordinary accounts whose Zendesk organization exists already in a
    /// generated world; 0 makes a first run.
    #[arg(long, default_value_t = zdsync_sandbox::DEFAULT_EXISTING_ORGS)]
    existing_orgs: f64,
}

impl WorldArgs {
    fn spec(&self) -> WorldSpec {
        match &self.config {
            Some(path) => WorldSpec::Config {
                path: Some(path.clone()),
            },
            None => WorldSpec::Sandbox {
                accounts: self.accounts,
                seed: self.seed,
                existing_orgs: self.existing_orgs,
            },
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    world: WorldArgs,
    /// The run date (UTC) all date rules use; default today.
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// Execution name; default local-<UTC timestamp>.
    #[arg(long)]
    run_id: Option<String>,
    /// Gather, process and compare only: no Zendesk writes (safe against live APIs).
    #[arg(long)]
    dry_run: bool,
    /// Gather every source in full, whatever the snapshots under state/ (the daily reconcile,
    /// on request).
    #[arg(long)]
    full: bool,
    /// Allow the deletion guard to pass N marks by one sync (global, usgov, partners, users) for
    /// this run, e.g. global=40 or users=30.
    #[arg(long, value_parser = parse_allowance)]
    allow_deletions: Vec<(SyncKind, usize)>,
    /// Sandbox: inject the faults of the real world into every Zendesk and Salesforce call, e.g.
    /// `429=0.1,500=0.1,drop=0.05,lost=0.05` (lost: carried out, answer lost; also slow=F and
    /// slow_ms=MS). A run should end exactly as without them.
    #[arg(long, value_parser = parse_faults)]
    faults: Option<zdsync_sandbox::Faults>,
    /// Scale Retry waits of the state machine (1 = as in Step Functions).
    #[arg(long, default_value_t = 1.0, hide = true)]
    retry_time_scale: f64,
    /// No per-state progress lines.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_faults(text: &str) -> Result<zdsync_sandbox::Faults, String> {
    zdsync_sandbox::Faults::parse(text).map_err(|e| e.to_string())
}

#[derive(Args)]
struct RedriveArgs {
    run_id: String,
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// After checking a tripped deletion guard: allow N marks by one sync (global, usgov,
    /// partners, users) in the redriven execution, e.g. global=40.
    #[arg(long, value_parser = parse_allowance)]
    allow_deletions: Vec<(SyncKind, usize)>,
    /// Use these settings instead of the ones the run was started with.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 1.0, hide = true)]
    retry_time_scale: f64,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct ReportArgs {
    /// The run (execution name); default the run summarized last (latest_run.json).
    run_id: Option<String>,
    /// Settings whose store.url holds the runs (e.g. the deployed bucket); without it, the
    /// local data directory.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The local data directory (without --config).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ArtifactArgs {
    /// The artifact's key in the store, e.g. runs/<run_id>/global_accounts.json.
    key: String,
    /// Settings whose store.url holds the runs (e.g. the deployed bucket); without it, the
    /// local data directory.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The local data directory (without --config).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ExplainArgs {
    /// A Salesforce account id (15 or 18 characters) or a US Gov user's email.
    subject: String,
    /// The run (execution name); default the run summarized last (latest_run.json).
    #[arg(long)]
    run_id: Option<String>,
    /// Settings whose store.url holds the runs and whose plans.yaml, overrides and protected
    /// ids the run used; without it, the local data directory and the settings the local run
    /// was started with.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The local data directory (without --config).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// The explanation as JSON, for tools.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct StageArgs {
    /// guard, gather-accounts, gather-orgs, process, compare, sync, gather-users,
    /// gather-contacts or summarize.
    stage: Stage,
    #[arg(long)]
    run_id: String,
    /// global or usgov: the org sync of that instance (gather-orgs, compare, sync).
    #[arg(long)]
    instance: Option<Instance>,
    /// partners or users: the partner or user sync (gather-accounts, gather-orgs, compare,
    /// sync); or global / usgov, as --instance.
    #[arg(long)]
    sync: Option<SyncKind>,
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// The raw stage input as JSON instead of the one built from the flags.
    #[arg(long)]
    input: Option<String>,
    #[command(flatten)]
    world: WorldArgs,
}

fn parse_allowance(text: &str) -> Result<(SyncKind, usize), String> {
    let (sync, n) = text
        .split_once('=')
        .ok_or("expected SYNC=N, e.g. global=40 (global, usgov, partners, users)")?;
    Ok((
        sync.parse()?,
        n.parse().map_err(|_| format!("{n:?} is not a number"))?,
    ))
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.verbose { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(|| local::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zdsync: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run(args).await,
        Command::Redrive(args) => redrive(args).await,
        Command::Stage(args) => stage(args).await,
        Command::Report(args) => report_cmd(args).await.map(|()| ExitCode::SUCCESS),
        Command::Artifact(args) => artifact_cmd(args).await.map(|()| ExitCode::SUCCESS),
        Command::Explain(args) => {
            let text = runs::explain(
                args.config.as_deref(),
                &args.data_dir,
                args.run_id.as_deref(),
                &args.subject,
                args.json,
            )
            .await?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Sandbox(args) => sandbox_cmd::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Cloud(args) => cloud(args).await.map(|()| ExitCode::SUCCESS),
        Command::LambdaProxy(args) => lambda_proxy::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => zdsync_cli::bench::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
    }
}

async fn cloud(args: CloudArgs) -> anyhow::Result<()> {
    let aws = aws_config::load_from_env().await;
    let client = aws_sdk_sfn::Client::new(&aws);
    let machine = &args.state_machine_arn;
    match args.command {
        CloudCommand::Start {
            name,
            input,
            dry_run,
            allow_deletions,
        } => {
            let input = cloud::execution_input(input.as_deref(), dry_run, &allow_deletions)?;
            let name =
                name.unwrap_or_else(|| format!("manual-{}", Utc::now().format("%Y%m%dT%H%M%SZ")));
            let started = cloud::start(&client, machine, &name, &input).await?;
            println!(
                "started {} at {}
  input {input}",
                started.execution_arn, started.at
            );
        }
        CloudCommand::Redrive {
            execution_arn,
            allow_deletions,
            config,
        } => {
            if !allow_deletions.is_empty() {
                let settings = zdsync::config::Settings::load(
                    config.as_deref(),
                    &zdsync::config::Settings::process_env(),
                )?;
                let store = zdsync::store::StoreUrl::parse(&settings.store.url)
                    .map_err(|e| anyhow::anyhow!("setting store.url: {e}"))?
                    .open_with(&aws);
                let run_id = execution_arn.rsplit(':').next().unwrap_or_default();
                let key = zdsync::stages::allow_deletions(
                    store.as_ref(),
                    run_id,
                    &allow_deletions.into_iter().collect(),
                )
                .await?;
                println!("allowance recorded in {key}");
            }
            let redriven = cloud::redrive(&client, &execution_arn).await?;
            println!("redriving {} since {}", redriven.execution_arn, redriven.at);
        }
        CloudCommand::Status { limit } => {
            let lines = cloud::status(&client, machine, limit).await?;
            print!("{}", cloud::render_status(&lines, Utc::now()));
        }
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let as_of = args.as_of.unwrap_or_else(|| Utc::now().date_naive());
    let data = DataDir::new(&args.world.data_dir);
    let world = World::open(args.world.spec(), &data, as_of, args.world.fresh).await?;
    let run_id = args
        .run_id
        .unwrap_or_else(|| format!("local-{}", Utc::now().format("%Y%m%dT%H%M%SZ")));
    let mut allow_deletions = BTreeMap::new();
    for (instance, n) in args.allow_deletions {
        allow_deletions.insert(instance, n);
    }
    eprintln!(
        "zdsync run {run_id} (as of {as_of}{}) against {}",
        if args.dry_run { ", dry run" } else { "" },
        describe(&world)
    );
    let request = RunRequest {
        run_id,
        as_of,
        dry_run: args.dry_run,
        full: args.full,
        allow_deletions,
        retry_time_scale: args.retry_time_scale,
        crash: None,
    };
    if let Some(faults) = args.faults {
        let sandbox = world
            .sandbox()
            .context("--faults works with the sandbox only, not with --config")?;
        sandbox.set_faults(faults)?;
    }
    if let Some(sandbox) = world.sandbox() {
        sandbox.reset_counters();
    }
    let outcome = local::run(&data, &world, &request, &Progress::new(args.quiet)).await?;
    if let Some(sandbox) = world.sandbox() {
        // Faults are for this run only: the saved world and the next command have none.
        sandbox.set_faults(zdsync_sandbox::Faults::none())?;
    }
    print!("{}", report::render(&outcome, started.elapsed()));
    if let Some(sandbox) = world.sandbox() {
        println!("  {}", report::api_calls(&sandbox.counters()));
    }
    Ok(exit_code(&outcome))
}

async fn redrive(args: RedriveArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let data = DataDir::new(&args.data_dir);
    let info = data
        .load_info(&args.run_id)
        .context("is this a local run of this data directory?")?;
    let record = data.load_execution(&args.run_id)?;
    let spec = match args.config {
        Some(path) => WorldSpec::Config { path: Some(path) },
        None => info.world,
    };
    let as_of = record
        .start_time
        .parse::<chrono::DateTime<Utc>>()?
        .date_naive();
    let world = World::open(spec, &data, as_of, false).await?;
    eprintln!(
        "zdsync redrive {} against {}",
        args.run_id,
        describe(&world)
    );
    if !args.allow_deletions.is_empty() {
        let key = zdsync::stages::allow_deletions(
            data.store().as_ref(),
            &args.run_id,
            &args.allow_deletions.into_iter().collect(),
        )
        .await?;
        eprintln!("allowance recorded in {key}");
    }
    let outcome = local::redrive(
        &data,
        &world,
        &args.run_id,
        args.retry_time_scale,
        &Progress::new(args.quiet),
    )
    .await?;
    print!("{}", report::render(&outcome, started.elapsed()));
    Ok(exit_code(&outcome))
}

async fn report_cmd(args: ReportArgs) -> anyhow::Result<()> {
    let store = runs::open_store(args.config.as_deref(), &args.data_dir).await?;
    let run_id = runs::resolve_run(store.as_ref(), args.run_id.as_deref()).await?;
    print!("{}", runs::report(store.as_ref(), &run_id).await?);
    Ok(())
}

async fn artifact_cmd(args: ArtifactArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let store = runs::open_store(args.config.as_deref(), &args.data_dir).await?;
    let body = runs::artifact(store.as_ref(), &args.key).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(&body)?;
    if !body.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    Ok(())
}

async fn stage(args: StageArgs) -> anyhow::Result<ExitCode> {
    let as_of = args.as_of.unwrap_or_else(|| Utc::now().date_naive());
    let data = DataDir::new(&args.world.data_dir);
    let world = World::open(args.world.spec(), &data, as_of, args.world.fresh).await?;
    let input = match args.input {
        Some(text) => serde_json::from_str(&text).context("--input is not JSON")?,
        None if args.stage == Stage::Guard => json!({
            "run_id": args.run_id,
            "execution_arn": format!("{}:{}", local::LOCAL_STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:"), args.run_id),
            "state_machine_arn": local::LOCAL_STATE_MACHINE_ARN,
            "started_at": as_of.and_time(Utc::now().time()).and_utc(),
            "execution_input": {}
        }),
        None => {
            let mut input = json!({"run_id": args.run_id, "as_of": as_of});
            if let Some(instance) = args.instance {
                input["instance"] = json!(instance);
            }
            if let Some(sync) = args.sync {
                input["sync"] = json!(sync);
            }
            input
        }
    };
    if let Some(sandbox) = world.sandbox() {
        sandbox.reset_counters();
    }
    let result = local::run_stage(&data, &world, args.stage, input).await;
    // The stage's own calls, so one stage's cost can be read off (stderr: stdout is its output).
    if let Some(sandbox) = world.sandbox() {
        eprintln!("{}", report::api_calls(&sandbox.counters()));
    }
    match result {
        Ok(output) => {
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("zdsync: stage {} failed with {}: {e}", args.stage, e.name());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn describe(world: &World) -> String {
    match world.spec() {
        WorldSpec::Sandbox { .. } => format!(
            "the in-process sandbox ({})",
            world.sandbox().map(|s| s.base_url()).unwrap_or_default()
        ),
        WorldSpec::Config { path } => format!(
            "the endpoints of {}",
            path.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the environment".into())
        ),
    }
}

fn exit_code(outcome: &local::Outcome) -> ExitCode {
    if outcome.record.status == zdsync_cli::asl::ExecutionStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
