//! Compare (SPEC §7), for one sync: its desired objects against the Zendesk records it gathered,
//! with the one compare of `rules::compare`, written as the sync's three change sets.
//!
//! | sync | desired | Zendesk |
//! |---|---|---|
//! | `global`, `usgov` | `{instance}_accounts.json` | `zendesk_{instance}.json` |
//! | `partners` | `partner/salesforce_accounts.json` (→ partner objects) | `partner/zendesk_orgs.json` |
//! | `users` | `users/salesforce_contacts.json` (→ end-users) | `users/zendesk_users.json` |

use serde::Serialize;

use super::artifacts;
use super::context::StageContext;
use super::input::{RunInput, StageOutput};
use super::io::{expect_same, read, write};
use super::table::Stage;
use crate::error::StageError;
use crate::model::{ChangeSet, Diff, HeldBack, SyncAction, SyncKind};
use crate::store::RunKeys;
use crate::syncs::{Gathered, SyncSpec, for_sync};

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let sync = input.sync(Stage::Compare)?;
    for_sync!(sync, spec => compare(ctx, &keys, spec).await)
}

/// The compare of one sync, as its spec describes it: both sides read and checked to be of the
/// sync's instance, its compare input built, the diff written.
async fn compare<S: SyncSpec>(
    ctx: &StageContext,
    keys: &RunKeys,
    spec: S,
) -> Result<StageOutput, StageError> {
    let instance = spec.instance();
    let desired_name = spec.desired_artifact();
    let desired: S::Desired = read(ctx, keys, &desired_name).await?;
    if let Some(found) = S::desired_instance(&desired) {
        expect_same(keys, &desired_name, "instance", instance, found)?;
    }
    let records_name = spec.records_artifact();
    let records: S::Records = read(ctx, keys, &records_name).await?;
    expect_same(
        keys,
        &records_name,
        "instance",
        instance,
        records.instance(),
    )?;
    let input = spec.compare_input(&desired, &records, &ctx.settings.sync);
    let diff = input.diff();
    let output = input.counts.iter().fold(
        StageOutput::new(Stage::Compare, Some(instance)),
        |output, (name, n)| output.count(name, *n),
    );
    write_diff(ctx, keys, spec.sync(), diff, output).await
}

/// The three change sets of `sync`. Held-back creates travel with the creates, held-back
/// renames with the updates, so the sync reports each where it belongs; the conflicts go into
/// all three, so whichever file an admin opens shows them.
async fn write_diff<D: Serialize, U: Serialize, M: Serialize>(
    ctx: &StageContext,
    keys: &RunKeys,
    sync: SyncKind,
    diff: Diff<D, U, M>,
    output: StageOutput,
) -> Result<StageOutput, StageError> {
    for conflict in &diff.conflicts {
        tracing::warn!(%sync, conflict = %conflict.describe(), "several Zendesk records share one key; none is written");
    }
    let output = output
        .count("creates", diff.creates.len())
        .count("updates", diff.updates.len())
        .count("marks", diff.not_in_sync.len())
        .count("conflicts", diff.conflicts.len())
        .count("held_back", diff.held_back.len());
    let (held_creates, held_renames): (Vec<HeldBack>, Vec<HeldBack>) = diff
        .held_back
        .into_iter()
        .partition(|h| h.action == SyncAction::Create);
    let creates = ChangeSet::new(sync, diff.creates, &diff.conflicts, held_creates);
    let updates = ChangeSet::new(sync, diff.updates, &diff.conflicts, held_renames);
    let marks = ChangeSet::new(sync, diff.not_in_sync, &diff.conflicts, Vec::new());
    Ok(output
        .with_artifact(write(ctx, keys, &artifacts::creates(sync), &creates).await?)
        .with_artifact(write(ctx, keys, &artifacts::updates(sync), &updates).await?)
        .with_artifact(write(ctx, keys, &artifacts::not_in_sync(sync), &marks).await?))
}
