//! The sandbox in a process of its own (`zdsync sandbox`), as far as the benchmark drives it:
//! start, counters, stop.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::BenchArgs;

/// `KEY=VALUE` lines, as `zdsync sandbox --env-file` writes them.
pub(super) fn read_env_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// `zdsync sandbox` serving the world from its own process.
pub(super) struct SandboxProcess {
    pub(super) child: std::process::Child,
    pub(super) url: String,
}

impl SandboxProcess {
    pub(super) async fn start(
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
            // The world was generated just now, but stands for an org whose records are older
            // than the sync's first run: a quiet run after it finds nothing changed.
            .args([
                "--records-modified-at",
                &(chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339(),
            ])
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

    pub(super) async fn reset_counters(&self) -> anyhow::Result<()> {
        reqwest::Client::new()
            .post(format!("{}/_sandbox/reset-counters", self.url))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    pub(super) async fn counters(&self) -> anyhow::Result<zdsync_sandbox::Counters> {
        Ok(reqwest::get(format!("{}/_sandbox/counters", self.url))
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Sets `fields` of a Salesforce record, as a person or an automation would (its
    /// `SystemModstamp` moves).
    pub(super) async fn patch_salesforce(
        &self,
        object: &str,
        id: &str,
        fields: &serde_json::Value,
    ) -> anyhow::Result<()> {
        reqwest::Client::new()
            .patch(format!(
                "{}/_sandbox/salesforce/records/{object}/{id}",
                self.url
            ))
            .json(fields)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Zendesk writes so far, both instances (the sandbox's counters).
    pub(super) async fn zendesk_writes(&self) -> anyhow::Result<u64> {
        let counters = self.counters().await?;
        Ok(zdsync_sandbox::ZendeskInstance::ALL
            .into_iter()
            .map(|i| counters.zendesk_write_calls(i))
            .sum())
    }

    pub(super) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
