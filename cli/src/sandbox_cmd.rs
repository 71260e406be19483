//! `zdsync sandbox`: the emulator as a server, for developing the Lambda functions with
//! `cargo lambda watch` (see README, "Local development").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::Args;
use zdsync_sandbox::{Fixture, GeneratorOptions, Sandbox, SandboxConfig};

/// The `ZDSYNC_*` variables of a function talking to a sandbox (kept here for its callers).
pub use crate::local::world::environment;
use crate::local::world::{DEMO_ACCOUNTS, DEMO_SEED};

#[derive(Args)]
pub struct SandboxArgs {
    /// Start from this fixture (format: sandbox/FIXTURE.md) instead of a generated world.
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Generated world: number of accounts.
    #[arg(long, default_value_t = DEMO_ACCOUNTS)]
    accounts: usize,
    /// Generated world: seed (same seed and date → same world).
    #[arg(long, default_value_t = DEMO_SEED)]
    seed: u64,
    /// Generated world: the date subscriptions are placed around; default today.
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// Generated world: share of ordinary accounts whose Zendesk organization exists already
    /// (0 makes a first run).
    #[arg(long, default_value_t = zdsync_sandbox::DEFAULT_EXISTING_ORGS)]
    existing_orgs: f64,
    /// When the Salesforce records without a `SystemModstamp` were last changed (RFC 3339);
    /// default: when the sandbox starts (a restarted sandbox's records all look changed, so a
    /// delta gather reads them again). Benchmarks of a world generated just before its first
    /// run set a time before it, as a real org's records are older than the sync's first run.
    #[arg(long)]
    records_modified_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Write the fixture (generated, or from --fixture) to this file and exit without serving.
    #[arg(long)]
    write_fixture: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// How long a Zendesk background job takes.
    #[arg(long, default_value_t = 200)]
    job_delay_ms: u64,
    /// Zendesk's account rate limit, requests per minute per instance (Enterprise: 700); 0
    /// turns it off (benchmarks of the code itself).
    #[arg(long, default_value_t = 700)]
    rate_limit: u32,
    /// Write the ZDSYNC_* settings that point at this sandbox to a file (for
    /// `cargo lambda watch --env-file`).
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// Artifact store the env file points the functions at.
    #[arg(long, default_value = "data")]
    store: PathBuf,
    /// On Ctrl-C, save the sandbox's state as a fixture here.
    #[arg(long)]
    save_state: Option<PathBuf>,
    /// Print the state of the sandbox running at --url as JSON, and exit.
    #[arg(long)]
    dump_state: bool,
    #[arg(long, default_value = "http://127.0.0.1:9100")]
    url: String,
}

pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    if args.dump_state {
        let url = format!("{}/_sandbox/state", args.url.trim_end_matches('/'));
        let state: serde_json::Value = reqwest::get(&url)
            .await
            .with_context(|| format!("is a sandbox running at {}?", args.url))?
            .error_for_status()?
            .json()
            .await?;
        return print_ignoring_closed_pipe(&serde_json::to_string_pretty(&state)?);
    }
    let fixture = match &args.fixture {
        Some(path) => {
            Fixture::from_path(path).with_context(|| format!("loading {}", path.display()))?
        }
        None => {
            let mut options = GeneratorOptions::new(
                args.accounts,
                args.seed,
                args.as_of.unwrap_or_else(|| Utc::now().date_naive()),
            );
            options.existing_orgs = args.existing_orgs;
            Fixture::generate(&options)
        }
    };
    if let Some(path) = &args.write_fixture {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        fixture
            .write_json(std::io::BufWriter::new(file))
            .with_context(|| format!("writing {}", path.display()))?;
        // The process ends here: freeing a million-account world record by record would take
        // longer than writing it.
        std::mem::forget(fixture);
        return Ok(());
    }
    let mut config = SandboxConfig::new(fixture);
    config.bind = args.listen;
    config.job_delay = Duration::from_millis(args.job_delay_ms);
    config.zendesk_rate_limit_per_minute = args.rate_limit;
    config.salesforce.initial_modstamp = args.records_modified_at;
    let sandbox = Sandbox::start(config)
        .await
        .context("starting the sandbox")?;
    let store = std::path::absolute(&args.store)?;
    let env = environment(&sandbox, &store.display().to_string());
    println!("{}\n", sandbox.describe());
    println!("# Settings that point zdsync (functions, `zdsync stage --config`) at this sandbox:");
    for (key, value) in &env {
        println!("export {key}={value}");
    }
    if let Some(path) = &args.env_file {
        let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "\n# Also written to {} (cargo lambda watch --env-file {}).",
            path.display(),
            path.display()
        );
    }
    println!("\nServing until Ctrl-C.");
    tokio::signal::ctrl_c().await?;
    if let Some(path) = &args.save_state {
        std::fs::write(path, sandbox.snapshot().to_json_pretty())
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("state saved to {}", path.display());
    }
    sandbox.shutdown().await;
    Ok(())
}

/// Prints `text` to stdout. A reader that stops early (`--dump-state | head`) closes the pipe:
/// that is the reader's choice, not a failure, so it ends the command quietly.
fn print_ignoring_closed_pipe(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
