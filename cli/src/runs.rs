//! Finding a run's artifacts from the command line: the store (the local data directory, or
//! the `store.url` of a settings file) and the run (named, or the latest one). `zdsync report`
//! uses them; so can any command that reads a finished run.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use zdsync::store::{ArtifactStore, StoreUrl, validate_run_id};

/// The store of `config`'s `store.url` (ZDSYNC_* variables override the file, as everywhere),
/// else the local data directory `data_dir`.
pub async fn open_store(
    config: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<Arc<dyn ArtifactStore>> {
    let Some(config) = config else {
        return Ok(crate::local::DataDir::new(data_dir).store());
    };
    let settings =
        zdsync::config::Settings::load(Some(config), &zdsync::config::Settings::process_env())?;
    let url = StoreUrl::parse(&settings.store.url)
        .map_err(|e| anyhow::anyhow!("setting store.url of {}: {e}", config.display()))?;
    Ok(url.open().await)
}

/// `run_id` when given (checked as a run id), else the run summarized last.
pub async fn resolve_run(
    store: &dyn ArtifactStore,
    run_id: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(run_id) = run_id {
        validate_run_id(run_id)?;
        return Ok(run_id.to_owned());
    }
    zdsync::stages::latest_run(store)
        .await
        .with_context(|| format!("reading the latest run's pointer in {}", store.describe()))?
        .with_context(|| {
            format!(
                "no run has finished in {} yet (it has no {}); name a run, or start one with `zdsync run`",
                store.describe(),
                zdsync::stages::artifacts::LATEST_RUN
            )
        })
}

/// One artifact's bytes as they were written: a pointer to a blob is followed, the blob
/// checked against its digest and expanded (`zdsync artifact KEY`).
pub async fn artifact(store: &dyn ArtifactStore, key: &str) -> anyhow::Result<Vec<u8>> {
    let body = zdsync::store::read_artifact(store, key)
        .await
        .with_context(|| format!("reading {key} in {}", store.describe()))?
        .with_context(|| format!("{key} does not exist in {}", store.describe()))?;
    Ok(body.to_vec())
}

/// The run's `report.md`. A run summarized before reports existed has none, and a run that
/// has not finished (or does not exist) has neither report nor summary: the error says which,
/// naming the key.
pub async fn report(store: &dyn ArtifactStore, run_id: &str) -> anyhow::Result<String> {
    let key = zdsync::store::artifact_key(run_id, zdsync::stages::artifacts::REPORT)?;
    let read = |key: String| async move {
        store
            .get(&key)
            .await
            .with_context(|| format!("reading {key} in {}", store.describe()))
    };
    if let Some(body) = read(key.clone()).await? {
        return String::from_utf8(body.to_vec())
            .with_context(|| format!("{key} is not UTF-8 text"));
    }
    let summary = zdsync::store::artifact_key(run_id, zdsync::stages::artifacts::SUMMARY)?;
    if read(summary.clone()).await?.is_some() {
        anyhow::bail!(
            "{key} does not exist in {}: the run was summarized before runs had reports; its counts are in {summary}",
            store.describe()
        );
    }
    anyhow::bail!(
        "{key} does not exist in {}, nor {summary}: no run {run_id} has finished there",
        store.describe()
    )
}

/// The settings a run used, as far as explain needs them (`plans.yaml`, the overrides, the
/// protected ids and emails): `config` when given; else, for a local run, the settings it was
/// started with (its `--config`, or for the sandbox the `ZDSYNC_SYNC_*` variables, as `zdsync
/// run` takes them).
pub fn run_settings(
    config: Option<&Path>,
    data_dir: &Path,
    run_id: &str,
) -> anyhow::Result<zdsync::config::Settings> {
    use zdsync::config::Settings;
    let env = Settings::process_env();
    if let Some(config) = config {
        return Ok(Settings::load(Some(config), &env)?);
    }
    let started_with = crate::local::DataDir::new(data_dir)
        .load_info(run_id)
        .ok()
        .and_then(|info| match info.world {
            crate::local::WorldSpec::Config { path } => path,
            crate::local::WorldSpec::Sandbox { .. } => None,
        });
    match started_with {
        Some(path) => Settings::load(Some(&path), &env)
            .with_context(|| format!("the settings {} the run was started with", path.display())),
        None => {
            let sync_env = env
                .into_iter()
                .filter(|(key, _)| key.starts_with("ZDSYNC_SYNC_"))
                .collect();
            Ok(Settings::load(None, &sync_env).context("the ZDSYNC_SYNC_* settings")?)
        }
    }
}

/// `zdsync explain`: the story of `subject` (a Salesforce account id or a US Gov user's email)
/// in the run, for people or as JSON.
pub async fn explain(
    config: Option<&Path>,
    data_dir: &Path,
    run_id: Option<&str>,
    subject: &str,
    json: bool,
) -> anyhow::Result<String> {
    let subject = zdsync::explain::Subject::parse(subject).map_err(anyhow::Error::msg)?;
    let store = open_store(config, data_dir).await?;
    let run_id = resolve_run(store.as_ref(), run_id).await?;
    let settings = run_settings(config, data_dir, &run_id)?;
    let run = zdsync::store::RunKeys::new(&run_id)?;
    let sources = zdsync::explain::Sources {
        store: store.as_ref(),
        run: &run,
        settings: &settings,
        http: &reqwest::Client::new(),
    };
    let explanation = zdsync::explain::explain(&sources, &subject).await?;
    Ok(if json {
        serde_json::to_string_pretty(&explanation)? + "\n"
    } else {
        zdsync::explain::render(&explanation)
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use zdsync::model::{LatestRun, RunStatus};

    use super::*;

    #[tokio::test]
    async fn an_artifact_is_shown_as_written_even_from_a_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(None, dir.path()).await.unwrap();
        let big = format!(
            "{{\"as_of\":\"2026-12-01\",\"names\":[{}]}}",
            vec!["\"Acme\""; 40_000].join(",")
        );
        let key = "runs/r1/salesforce_accounts.json";
        zdsync::store::write_encoded(store.as_ref(), key, big.clone().into_bytes())
            .await
            .unwrap();
        let stored = store.get(key).await.unwrap().unwrap();
        assert!(stored.len() < 1024, "a pointer: {}", stored.len());
        assert_eq!(artifact(store.as_ref(), key).await.unwrap(), big.as_bytes());
        let missing = artifact(store.as_ref(), "runs/r1/nothing.json")
            .await
            .unwrap_err();
        assert!(
            format!("{missing:#}").contains("runs/r1/nothing.json does not exist"),
            "{missing:#}"
        );
    }

    #[tokio::test]
    async fn the_latest_run_or_the_named_one_and_its_report() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(None, dir.path()).await.unwrap();
        let none = resolve_run(store.as_ref(), None).await.unwrap_err();
        assert!(
            format!("{none:#}").contains("no run has finished in"),
            "{none:#}"
        );
        let bad = resolve_run(store.as_ref(), Some("../x")).await.unwrap_err();
        assert!(format!("{bad:#}").contains("'.'"), "{bad:#}");

        zdsync::store::write_json(
            store.as_ref(),
            "latest_run.json",
            &LatestRun {
                run_id: "r2".into(),
                status: RunStatus::Succeeded,
                as_of: None,
                finished_at: "2026-12-03T10:00:00Z".parse().unwrap(),
            },
        )
        .await
        .unwrap();
        assert_eq!(resolve_run(store.as_ref(), None).await.unwrap(), "r2");
        assert_eq!(resolve_run(store.as_ref(), Some("r1")).await.unwrap(), "r1");

        let unknown = report(store.as_ref(), "r2").await.unwrap_err();
        assert!(
            format!("{unknown:#}").contains("runs/r2/report.md does not exist in")
                && format!("{unknown:#}").contains("no run r2 has finished there"),
            "{unknown:#}"
        );
        store
            .put("runs/r2/summary.json", Bytes::from("{}"))
            .await
            .unwrap();
        let older = report(store.as_ref(), "r2").await.unwrap_err();
        assert!(
            format!("{older:#}").contains("summarized before runs had reports"),
            "{older:#}"
        );
        store
            .put("runs/r2/report.md", Bytes::from("# zdsync run r2\n"))
            .await
            .unwrap();
        assert_eq!(
            report(store.as_ref(), "r2").await.unwrap(),
            "# zdsync run r2\n"
        );
    }

    #[tokio::test]
    async fn a_settings_file_names_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = dir.path().join("artifacts");
        let config = dir.path().join("zdsync.toml");
        std::fs::write(
            &config,
            format!("[store]\nurl = {:?}\n", artifacts.display().to_string()),
        )
        .unwrap();
        let store = open_store(Some(&config), &dir.path().join("unused"))
            .await
            .unwrap();
        assert_eq!(store.describe(), artifacts.display().to_string());
        let typo = dir.path().join("typo.toml");
        std::fs::write(&typo, "[store]\nurl = \"s4://bucket\"\n").unwrap();
        let err = open_store(Some(&typo), dir.path()).await.unwrap_err();
        assert!(format!("{err:#}").contains("store.url"), "{err:#}");
    }
}
