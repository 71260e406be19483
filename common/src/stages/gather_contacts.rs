//! Gather contacts (SPEC §9, seed 000): the contact query for the accounts of every US Gov org
//! gathered after the US Gov org sync, in chunks whose request URL stays under Salesforce's
//! 16 KB limit, mapped to the end-user each contact should be → `users/salesforce_contacts.json`.
//! A record that cannot be read holds the users it may stand for (SPEC §10); when only its
//! account can be read, those are the users of the account's orgs, from `users/zendesk_users.json`
//! (gathered before this stage), read only then.

use std::collections::BTreeMap;

use super::artifacts;
use super::context::StageContext;
use super::gather_accounts::check_rejected;
use super::gather_accounts::parse_stored;
use super::input::{RunInput, StageOutput};
use super::io::{expect_same, read, write};
use super::salesforce_feeds::ContactFeed;
use super::snapshots;
use super::table::Stage;
use crate::error::StageError;
use crate::model::{Instance, SalesforceId, SyncKind, ZendeskOrgs, ZendeskUsers};
use crate::rules::users::{collect_contacts, map_contact, needs_org_users, users_by_org};
use crate::snapshot::Source;
use serde_json::Value;

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    if input.sync.is_some_and(|s| s != SyncKind::Users) {
        return Err(StageError::InvalidConfig(
            "stage input: the gather-contacts stage serves the users sync only".into(),
        ));
    }
    let orgs: ZendeskOrgs = read(ctx, &keys, artifacts::USER_ORGS).await?;
    expect_same(
        &keys,
        artifacts::USER_ORGS,
        "instance",
        Instance::Usgov,
        orgs.instance,
    )?;
    let orgs_by_account = orgs_by_account(&orgs);
    let feed = ContactFeed {
        ctx,
        accounts: orgs_by_account.keys().cloned().collect(),
    };
    let (snapshot, note) = snapshots::current(ctx, &feed, input.gather_request()).await?;
    let mut mapped = Vec::new();
    for (account, contacts) in &snapshot.records {
        let contacts: Vec<Value> = parse_stored(Source::SalesforceContacts, account, contacts)?;
        mapped.extend(contacts.iter().map(map_contact));
    }
    drop(snapshot);
    let records = mapped.len();
    let org_users = if needs_org_users(&mapped, &orgs_by_account) {
        let users: ZendeskUsers = read(ctx, &keys, artifacts::USERS).await?;
        expect_same(
            &keys,
            artifacts::USERS,
            "instance",
            Instance::Usgov,
            users.instance,
        )?;
        users_by_org(&users.users)
    } else {
        BTreeMap::new()
    };
    let protection = ctx.settings.sync.user_protection();
    let contacts = collect_contacts(mapped, &orgs_by_account, &org_users, &protection);
    let key = write(ctx, &keys, artifacts::CONTACTS, &contacts).await?;
    check_rejected(ctx, &contacts.rejected, records, &key)?;
    Ok(
        StageOutput::new(Stage::GatherContacts, Some(SyncKind::Users.instance()))
            .count("records", records)
            .count("contacts", contacts.contacts.len())
            .count("ambiguous_emails", contacts.ambiguous_emails.len())
            .count("held", contacts.held.len())
            .count("without_email", contacts.without_email)
            .count("protected", contacts.protected)
            .count("rejected", contacts.rejected.len())
            .with_gather(note)
            .with_artifact(key),
    )
}

/// Each managed US Gov org's Salesforce id → the ids of the orgs carrying it (more than one is
/// a conflict: those contacts are held).
fn orgs_by_account(orgs: &ZendeskOrgs) -> BTreeMap<SalesforceId, Vec<u64>> {
    let mut by_account: BTreeMap<SalesforceId, Vec<u64>> = BTreeMap::new();
    for org in &orgs.orgs {
        if let Some(id) = org.managed_id() {
            by_account.entry(id).or_default().push(org.id);
        }
    }
    for ids in by_account.values_mut() {
        ids.sort_unstable();
    }
    by_account
}
