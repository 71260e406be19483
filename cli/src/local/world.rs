//! The world a local command runs against: the in-process sandbox (default) or the endpoints
//! of a settings file.
//!
//! The sandbox's state is kept in `<data-dir>/sandbox/state.json` between commands, so a second
//! `zdsync run` starts from what the first one left (and makes no writes when nothing changed),
//! and `zdsync redrive` resumes against the state the failed run left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use zdsync::config::Settings;
use zdsync::model::Instance;
use zdsync::stages::StageContext;
use zdsync_sandbox::{Fixture, GeneratorOptions, Sandbox, SandboxConfig, ZendeskInstance};

use super::{DataDir, LocalExecutions};

/// Accounts and seed of the bundled demo world (generated relative to the run date).
pub const DEMO_ACCOUNTS: usize = 60;
pub const DEMO_SEED: u64 = 7;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorldSpec {
    /// The in-process sandbox, seeded by the generator the first time.
    Sandbox {
        accounts: usize,
        seed: u64,
        /// Share of ordinary accounts whose organization exists (0: a first run).
        #[serde(default = "default_existing_orgs")]
        existing_orgs: f64,
    },
    /// Real endpoints: a settings file (optional) and `ZDSYNC_*` variables.
    Config { path: Option<PathBuf> },
}

fn default_existing_orgs() -> f64 {
    zdsync_sandbox::DEFAULT_EXISTING_ORGS
}

pub struct World {
    spec: WorldSpec,
    settings: Arc<Settings>,
    sandbox: Option<Sandbox>,
    state_file: Option<PathBuf>,
}

impl World {
    /// Opens the world. `fresh` discards a saved sandbox state and starts from the generator.
    pub async fn open(
        spec: WorldSpec,
        data: &DataDir,
        as_of: NaiveDate,
        fresh: bool,
    ) -> anyhow::Result<World> {
        match &spec {
            WorldSpec::Config { path } => {
                let settings = Settings::load(path.as_deref(), &Settings::process_env())?;
                Ok(World {
                    spec,
                    settings: Arc::new(settings),
                    sandbox: None,
                    state_file: None,
                })
            }
            WorldSpec::Sandbox {
                accounts,
                seed,
                existing_orgs,
            } => {
                let dir = data.root().join("sandbox");
                let state_file = dir.join("state.json");
                let generated = fresh || !state_file.exists();
                let fixture = if generated {
                    // Snapshots of the world being replaced describe other records: the first
                    // run in the new one gathers in full.
                    forget_snapshots(data)?;
                    let mut options = GeneratorOptions::new(*accounts, *seed, as_of);
                    options.existing_orgs = *existing_orgs;
                    Fixture::generate(&options)
                } else {
                    Fixture::from_path(&state_file)
                        .with_context(|| format!("loading {}", state_file.display()))?
                };
                let overrides = write_demo_overrides(&dir, &fixture, as_of)?;
                let mut config = SandboxConfig::new(fixture);
                if generated {
                    // A new world stands for an org whose records are older than the sync's
                    // first run (a saved world keeps the stamps it was saved with).
                    config.salesforce.initial_modstamp =
                        Some(chrono::Utc::now() - chrono::Duration::days(1));
                }
                // Jobs finish quickly so the demo is quick; pacing still goes through job polls.
                config.job_delay = Duration::from_millis(100);
                // The same address as last time when it is free: the gathers' snapshots are of
                // a Zendesk at an address, and this world's is the same one.
                let port_file = dir.join("port");
                let last_port = std::fs::read_to_string(&port_file)
                    .ok()
                    .and_then(|text| text.trim().parse::<u16>().ok());
                if let Some(port) = last_port
                    && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
                {
                    config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                }
                let mut world =
                    World::start_sandbox(spec.clone(), config, data, &Settings::process_env())
                        .await?;
                let sync = &mut world.settings_mut().sync;
                if sync.overrides.is_none() {
                    sync.overrides = Some(overrides.display().to_string());
                }
                world.state_file = Some(state_file);
                if let Some(sandbox) = world.sandbox() {
                    // `http://127.0.0.1:PORT`
                    let base = sandbox.base_url();
                    let port = base
                        .trim_end_matches('/')
                        .rsplit(':')
                        .next()
                        .and_then(|port| port.parse::<u16>().ok());
                    if let Some(port) = port {
                        std::fs::create_dir_all(&dir)?;
                        std::fs::write(&port_file, port.to_string())?;
                    }
                }
                Ok(world)
            }
        }
    }

    /// A world around a sandbox started from `config` (tests tune its fixture and knobs). Its
    /// state is not saved unless a state file is set by [`World::open`].
    pub async fn with_sandbox(
        spec: WorldSpec,
        config: SandboxConfig,
        data: &DataDir,
    ) -> anyhow::Result<World> {
        World::start_sandbox(spec, config, data, &BTreeMap::new()).await
    }

    async fn start_sandbox(
        spec: WorldSpec,
        config: SandboxConfig,
        data: &DataDir,
        sync_env: &BTreeMap<String, String>,
    ) -> anyhow::Result<World> {
        let sandbox = Sandbox::start(config)
            .await
            .context("starting the sandbox")?;
        let settings = sandbox_settings(&sandbox, data, sync_env)?;
        Ok(World {
            spec,
            settings: Arc::new(settings),
            sandbox: Some(sandbox),
            state_file: None,
        })
    }

    /// Settings before the world is used (tests: protected ids, guard thresholds, overrides).
    pub fn settings_mut(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    /// A world of real (or separately served) endpoints given by `settings`.
    pub fn with_settings(spec: WorldSpec, settings: Settings) -> World {
        World {
            spec,
            settings: Arc::new(settings),
            sandbox: None,
            state_file: None,
        }
    }

    pub fn spec(&self) -> &WorldSpec {
        &self.spec
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// A context for every stage, writing artifacts under the data directory.
    pub fn context(&self, data: &DataDir) -> anyhow::Result<StageContext> {
        StageContext::build_all(
            Arc::clone(&self.settings),
            data.store(),
            Arc::new(LocalExecutions::new(data.clone())),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", e.name()))
    }

    /// Saves the sandbox's state for the next command (nothing to do for real endpoints).
    pub async fn save(&self) -> anyhow::Result<()> {
        let (Some(sandbox), Some(path)) = (&self.sandbox, &self.state_file) else {
            return Ok(());
        };
        let text = sandbox.snapshot().to_json_pretty();
        std::fs::create_dir_all(path.parent().expect("state file has a directory"))?;
        let temp = path.with_extension("json.tmp");
        std::fs::write(&temp, text)?;
        std::fs::rename(&temp, path)?;
        Ok(())
    }
}

/// Settings that point every client at the sandbox, with its credentials: the same
/// `ZDSYNC_*` variables `zdsync sandbox --env-file` writes for the functions, loaded the way a
/// function loads them. `sync_env` adds `ZDSYNC_SYNC_*` settings (the demo takes them from the
/// process, so `ZDSYNC_SYNC_DELETION_GUARD_MIN=2 zdsync run` works); endpoints, credentials and
/// the store are the sandbox's whatever the environment says.
fn sandbox_settings(
    sandbox: &Sandbox,
    data: &DataDir,
    sync_env: &BTreeMap<String, String>,
) -> anyhow::Result<Settings> {
    let mut env: BTreeMap<String, String> = sync_env
        .iter()
        .filter(|(key, _)| key.starts_with("ZDSYNC_SYNC_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(environment(sandbox, &data.root().display().to_string()));
    Settings::load(None, &env).context("the ZDSYNC_SYNC_* settings")
}

pub fn sandbox_instance(instance: Instance) -> ZendeskInstance {
    match instance {
        Instance::Global => ZendeskInstance::Global,
        Instance::Usgov => ZendeskInstance::Usgov,
    }
}

/// The demo's overrides file: one override in force (keeps a lapsed customer on premium for a
/// month) and one expired (reported, ignored), so a demo run shows both paths.
fn write_demo_overrides(
    dir: &Path,
    fixture: &Fixture,
    as_of: NaiveDate,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("overrides.yaml");
    if path.exists() {
        return Ok(path);
    }
    let scenario = |name: &str| {
        fixture
            .generated
            .as_ref()
            .and_then(|g| g.scenarios.get(name))
            .and_then(|ids| ids.first())
            .cloned()
    };
    let mut text = String::from(
        "# Entitlement overrides of the local demo (SPEC §5.2). Edit freely; delete this file to get\n\
         # the generated one back.\n",
    );
    if let Some(id) = scenario("expired_over_15_days") {
        let until = as_of + Days::new(30);
        text.push_str(&format!(
            "- salesforce_id: {id}\n  reason: demo — renewal signed, paperwork pending\n  expires: {until}\n  fields: {{ support_level: premium, sub_sm_premium: true, expiration_date: \"{until}\" }}\n"
        ));
    }
    if let Some(id) = scenario("expired_within_15_days") {
        let lapsed = as_of - Days::new(10);
        text.push_str(&format!(
            "- salesforce_id: {id}\n  reason: demo — a courtesy extension that has run out\n  expires: {lapsed}\n  fields: {{ support_level: ultimate }}\n"
        ));
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The `ZDSYNC_*` variables of a function talking to `sandbox`, writing to `store`.
pub fn environment(sandbox: &Sandbox, store: &str) -> Vec<(String, String)> {
    let sf = sandbox.salesforce();
    let options = sf.options();
    let mut env = vec![
        (
            "ZDSYNC_SALESFORCE_LOGIN_URL".to_owned(),
            sandbox.salesforce_url(),
        ),
        (
            "ZDSYNC_SALESFORCE_CLIENT_ID".to_owned(),
            options.client_id.clone(),
        ),
        (
            "ZDSYNC_SALESFORCE_CLIENT_SECRET".to_owned(),
            options.client_secret.clone(),
        ),
    ];
    for instance in Instance::ALL {
        let which = sandbox_instance(instance);
        let credentials = sandbox.zendesk_credentials(which);
        let upper = instance.as_str().to_uppercase();
        env.push((
            format!("ZDSYNC_ZENDESK_{upper}_URL"),
            sandbox.zendesk_url(which),
        ));
        env.push((
            format!("ZDSYNC_ZENDESK_{upper}_EMAIL"),
            credentials.email.clone(),
        ));
        env.push((
            format!("ZDSYNC_ZENDESK_{upper}_TOKEN"),
            credentials.token.clone(),
        ));
    }
    env.push((
        "ZDSYNC_SLACK_WEBHOOK_URL".to_owned(),
        sandbox.slack_webhook_url(),
    ));
    if let Some(id) = sandbox.alliance_account_id() {
        env.push(("ZDSYNC_SYNC_ALLIANCE_PARTNER_ID".to_owned(), id.to_owned()));
    }
    env.push(("ZDSYNC_STORE_URL".to_owned(), store.to_owned()));
    env
}

/// Removes the local store's snapshots (`state/`).
fn forget_snapshots(data: &DataDir) -> anyhow::Result<()> {
    let dir = data.root().join(zdsync::snapshot::STATE_PREFIX);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("removing {}", dir.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_takes_sync_settings_from_the_environment_and_endpoints_from_the_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let fixture = Fixture::generate(&GeneratorOptions::new(
            5,
            1,
            chrono::Utc::now().date_naive(),
        ));
        let sandbox = Sandbox::start(SandboxConfig::new(fixture)).await.unwrap();
        let env: BTreeMap<String, String> = [
            ("ZDSYNC_SYNC_DELETION_GUARD_MIN", "2"),
            (
                "ZDSYNC_ZENDESK_GLOBAL_TOKEN",
                "a-real-token-not-for-the-sandbox",
            ),
            ("ZDSYNC_SALESFORCE_GRANT", "password"),
            ("ZDSYNC_STORE_URL", "s3://somewhere/else"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let settings = sandbox_settings(&sandbox, &data, &env).unwrap();
        assert_eq!(settings.sync.deletion_guard_min, 2);
        let global = sandbox.zendesk_credentials(ZendeskInstance::Global);
        assert_eq!(
            settings.zendesk.global.token.as_ref().unwrap().expose(),
            global.token
        );
        assert_eq!(settings.salesforce.grant, Default::default());
        assert_eq!(settings.store.url, data.root().display().to_string());

        let bad: BTreeMap<String, String> = [(
            "ZDSYNC_SYNC_DELETION_GUARD_MIN".to_owned(),
            "two".to_owned(),
        )]
        .into();
        let error = sandbox_settings(&sandbox, &data, &bad).unwrap_err();
        assert!(
            format!("{error:#}").contains("deletion_guard_min"),
            "{error:#}"
        );
        sandbox.shutdown().await;
    }
}
