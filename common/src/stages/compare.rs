//! Compare (SPEC §7), for one sync: its desired objects against the Zendesk records it gathered,
//! with the one compare of `rules::compare`, written as the sync's three change sets.
//!
//! | sync | desired | Zendesk |
//! |---|---|---|
//! | `global`, `usgov` | `{instance}_accounts.json` | `zendesk_{instance}.json` |
//! | `partners` | `partner/salesforce_accounts.json` (→ partner objects) | `partner/zendesk_orgs.json` |
//! | `users` | `users/salesforce_contacts.json` (→ end-users) | `users/zendesk_users.json` |

use serde::Serialize;

use super::{RunInput, Stage, StageContext, StageOutput, artifacts, expect_same, read, write};
use crate::error::StageError;
use crate::model::{
    ChangeSet, Diff, HeldBack, PartnerAccounts, RawDesiredOrg, RawDesiredOrgs, RawZendeskOrgs,
    SalesforceContacts, SyncAction, SyncKind, ZendeskUsers,
};
use crate::rules::partners::partner_object;
use crate::rules::users::{desired_users, held_emails};
use crate::rules::{CompareRules, compare_orgs, compare_users};
use crate::store::RunKeys;

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let sync = input.sync(Stage::Compare)?;
    let instance = sync.instance();
    let protected = ctx.settings.sync.protected_salesforce_ids();
    let output = StageOutput::new(Stage::Compare, Some(instance));
    match sync {
        SyncKind::Global | SyncKind::Usgov => {
            let desired_name = artifacts::desired_orgs(instance);
            // Both sides keep their fields as text until a pair is compared (see RawZendeskOrg).
            let desired: RawDesiredOrgs = read(ctx, &keys, &desired_name).await?;
            expect_same(&keys, &desired_name, "instance", instance, desired.instance)?;
            let zendesk = read_orgs(ctx, &keys, sync).await?;
            let rules = CompareRules::default()
                .with_protected(protected)
                .with_held(desired.held_salesforce_ids.iter().cloned());
            let diff = compare_orgs(sync, &desired.orgs, &zendesk.orgs, &zendesk.others, &rules);
            write_diff(ctx, &keys, sync, diff, output).await
        }
        SyncKind::Partners => {
            let partners: PartnerAccounts = read(ctx, &keys, artifacts::PARTNER_ACCOUNTS).await?;
            let zendesk = read_orgs(ctx, &keys, sync).await?;
            let desired: Vec<RawDesiredOrg> = partners
                .accounts
                .iter()
                .map(|a| RawDesiredOrg::from(&partner_object(a)))
                .collect();
            let rules = CompareRules::default()
                .with_protected(protected)
                .with_held(partners.rejected.iter().filter_map(|r| r.valid_id()));
            let diff = compare_orgs(sync, &desired, &zendesk.orgs, &zendesk.others, &rules);
            write_diff(ctx, &keys, sync, diff, output).await
        }
        SyncKind::Users => {
            let contacts: SalesforceContacts = read(ctx, &keys, artifacts::CONTACTS).await?;
            let users: ZendeskUsers = read(ctx, &keys, artifacts::USERS).await?;
            expect_same(
                &keys,
                artifacts::USERS,
                "instance",
                instance,
                users.instance,
            )?;
            let rules = CompareRules::default().with_held(held_emails(&contacts));
            let diff = compare_users(
                &desired_users(&contacts),
                &users.users,
                &users.others,
                &rules,
            );
            let output = output.count("ambiguous_emails", contacts.ambiguous_emails.len());
            write_diff(ctx, &keys, sync, diff, output).await
        }
    }
}

async fn read_orgs(
    ctx: &StageContext,
    keys: &RunKeys,
    sync: SyncKind,
) -> Result<RawZendeskOrgs, StageError> {
    let name = artifacts::zendesk_records(sync);
    let orgs: RawZendeskOrgs = read(ctx, keys, &name).await?;
    expect_same(keys, &name, "instance", sync.instance(), orgs.instance)?;
    Ok(orgs)
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
