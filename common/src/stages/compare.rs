//! Compare (SPEC §7), per instance: desired objects against the gathered Zendesk orgs.

use super::{RunInput, Stage, StageContext, StageOutput, artifacts, mismatch, read, write};
use crate::error::StageError;
use crate::model::{ChangeSet, DesiredOrgs, HeldBack, Instance, SyncAction, ZendeskOrgs};
use crate::rules::{CompareRules, compare_orgs};

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let instance = input.instance(Stage::Compare)?;
    let desired_name = artifacts::desired_orgs(instance);
    let desired: DesiredOrgs = read(ctx, &keys, &desired_name).await?;
    let zendesk_name = artifacts::zendesk_orgs(instance);
    let zendesk: ZendeskOrgs = read(ctx, &keys, &zendesk_name).await?;
    for (name, found) in [
        (&desired_name, desired.instance),
        (&zendesk_name, zendesk.instance),
    ] {
        if found != instance {
            return Err(mismatch(
                &keys.key(name)?,
                "instance",
                format!("expected {instance}, found {found}"),
            ));
        }
    }

    let rules = match instance {
        Instance::Global => CompareRules::global_orgs(),
        Instance::Usgov => CompareRules::usgov_orgs(),
    }
    .with_protected(ctx.settings.sync.protected_salesforce_ids())
    .with_held(desired.held_salesforce_ids.iter().cloned());
    let diff = compare_orgs(&desired.orgs, &zendesk.orgs, &rules);
    for conflict in &diff.conflicts {
        tracing::warn!(salesforce_id = %conflict.salesforce_id, orgs = ?conflict.orgs, "several Zendesk orgs share one Salesforce id; none is written");
    }

    let output = StageOutput::new(Stage::Compare, Some(instance))
        .count("creates", diff.creates.len())
        .count("updates", diff.updates.len())
        .count("marks", diff.not_in_sync.len())
        .count("conflicts", diff.conflicts.len())
        .count("held_back", diff.held_back.len());
    // Held-back creates travel with the creates, held-back renames with the updates, so the sync
    // reports each where it belongs.
    let (held_creates, held_renames): (Vec<HeldBack>, Vec<HeldBack>) = diff
        .held_back
        .into_iter()
        .partition(|h| h.action == SyncAction::Create);
    let conflicts = diff.conflicts;
    let creates = ChangeSet {
        instance,
        items: diff.creates,
        conflicts: conflicts.clone(),
        held_back: held_creates,
    };
    let updates = ChangeSet {
        instance,
        items: diff.updates,
        conflicts: conflicts.clone(),
        held_back: held_renames,
    };
    let marks = ChangeSet {
        instance,
        items: diff.not_in_sync,
        conflicts,
        held_back: Vec::new(),
    };
    Ok(output
        .with_artifact(write(ctx, &keys, &artifacts::creates(instance), &creates).await?)
        .with_artifact(write(ctx, &keys, &artifacts::updates(instance), &updates).await?)
        .with_artifact(write(ctx, &keys, &artifacts::not_in_sync(instance), &marks).await?))
}
