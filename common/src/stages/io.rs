//! A stage's artifact reads and writes within its run, and the checks that an artifact belongs
//! to the run, instance and sync reading it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::artifacts;
use super::context::StageContext;
use crate::error::StageError;
use crate::model::{Instance, SyncKind};
use crate::store::RunKeys;

/// Reads an artifact of this run.
pub(super) async fn read<T: DeserializeOwned>(
    ctx: &StageContext,
    keys: &RunKeys,
    name: &str,
) -> Result<T, StageError> {
    let key = keys.key(name)?;
    Ok(crate::store::read_json(ctx.store.as_ref(), &key).await?)
}

/// Reads an artifact of this run that may not exist.
pub(super) async fn read_opt<T: DeserializeOwned>(
    ctx: &StageContext,
    keys: &RunKeys,
    name: &str,
) -> Result<Option<T>, StageError> {
    let key = keys.key(name)?;
    Ok(crate::store::read_json_opt(ctx.store.as_ref(), &key).await?)
}

/// Writes an artifact of this run and returns its key.
pub(super) async fn write<T: Serialize>(
    ctx: &StageContext,
    keys: &RunKeys,
    name: &str,
    value: &T,
) -> Result<String, StageError> {
    let key = keys.key(name)?;
    crate::store::write_json(ctx.store.as_ref(), &key, value).await?;
    Ok(key)
}

/// Records an operator's deletion allowance for a redrive of `run_id` (merged into any earlier
/// one: the larger allowance of a sync wins). The redriven sync reads it beside its input's.
pub async fn allow_deletions(
    store: &dyn crate::store::ArtifactStore,
    run_id: &str,
    allowances: &BTreeMap<SyncKind, usize>,
) -> Result<String, StageError> {
    let key = RunKeys::new(run_id)
        .and_then(|keys| keys.key(artifacts::ALLOW_DELETIONS))
        .map_err(|e| StageError::InvalidConfig(e.to_string()))?;
    let mut merged: BTreeMap<SyncKind, usize> = crate::store::read_json_opt(store, &key)
        .await?
        .unwrap_or_default();
    for (sync, n) in allowances {
        let entry = merged.entry(*sync).or_default();
        *entry = (*entry).max(*n);
    }
    crate::store::write_json(store, &key, &merged).await?;
    Ok(key)
}

/// Maps every record a Zendesk list returned. One the sync cannot read fails the stage, and not
/// as `Retryable`: the same page comes back the same way.
pub(super) fn zendesk_records<T>(
    instance: Instance,
    what: &str,
    raw: Vec<serde_json::Map<String, Value>>,
    from_api: impl Fn(serde_json::Map<String, Value>) -> Result<T, String>,
) -> Result<Vec<T>, StageError> {
    raw.into_iter()
        .map(from_api)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            StageError::InvalidConfig(format!(
                "Zendesk {instance} returned {what} the sync cannot read: {e}"
            ))
        })
}

/// An artifact whose `path` (its instance or sync) is not the one this stage works for: as bad
/// as a corrupt file.
pub(super) fn expect_same<T: PartialEq + fmt::Display>(
    keys: &RunKeys,
    name: &str,
    path: &str,
    expected: T,
    found: T,
) -> Result<(), StageError> {
    if expected == found {
        return Ok(());
    }
    Err(mismatch(
        &keys.key(name)?,
        path,
        format!("expected {expected}, found {found}"),
    ))
}

/// An artifact field that does not belong to this run or instance: as bad as a corrupt file.
pub(super) fn mismatch(key: &str, path: &str, message: String) -> StageError {
    StageError::InvalidArtifact {
        key: key.to_owned(),
        path: path.to_owned(),
        message,
    }
}
