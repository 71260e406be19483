//! Writing organizations: the Global and US Gov org syncs and the partner sync. Creates with
//! Create Many Organizations, updates and marks with Update Many Organizations; a new Global org
//! then gets its sold-to contacts (SPEC §8).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Managed, Unwritable, Writes, existing_user, record_error, taken, unwritable};
use crate::error::StageError;
use crate::model::instance::{PARTNER_FIELD_KEYS, field};
use crate::model::{
    DesiredOrg, Instance, NewOrgWithoutContacts, OrgMark, OrgUpdate, RecordError, RecordOutcome,
    SalesforceId, SyncAction, SyncKind, SyncResult, ZendeskOrg, ZendeskOrgs,
};
use crate::stages::{StageContext, artifacts};
use crate::store::RunKeys;
use crate::zendesk::{ItemError, ItemOutcome, ZendeskClient, ZendeskError};

/// New orgs without contacts named in the Slack digest; the sync result lists all of them.
const DIGEST_NAMED: usize = 50;

pub(in crate::stages) struct OrgWrites;

impl Writes for OrgWrites {
    type Create = DesiredOrg;
    type Update = OrgUpdate;
    type Mark = OrgMark;

    type Gathered = ZendeskOrgs;

    fn instance_of(gathered: &ZendeskOrgs) -> Instance {
        gathered.instance
    }

    fn managed(sync: SyncKind, gathered: &ZendeskOrgs) -> Managed {
        let owned = gathered
            .orgs
            .iter()
            .filter(|org| sync.owns_org(org))
            .filter_map(|org| org.managed_id().map(|id| (org.id, id.to_string())))
            .collect();
        let in_use = gathered
            .orgs
            .iter()
            .filter_map(ZendeskOrg::managed_id)
            .chain(
                gathered
                    .others
                    .iter()
                    .filter_map(|o| o.key.as_deref())
                    .filter_map(|k| SalesforceId::parse(k.trim()).ok()),
            )
            .map(|id| id.to_string())
            .collect();
        Managed {
            owned,
            keys: in_use,
        }
    }

    fn create_key(create: &DesiredOrg) -> String {
        create.salesforce_id.to_string()
    }

    fn update_target(update: &OrgUpdate) -> (u64, String) {
        (update.id, update.salesforce_id.to_string())
    }

    fn mark_target(mark: &OrgMark) -> (u64, String) {
        (mark.id, mark.salesforce_id.to_string())
    }

    fn unwritable_create(sync: SyncKind, create: &DesiredOrg) -> Option<Unwritable> {
        unwritable(
            Some(&create.name),
            "organization_fields",
            &create.organization_fields,
            &owned_fields(sync),
        )
    }

    fn unwritable_update(sync: SyncKind, update: &OrgUpdate) -> Option<Unwritable> {
        unwritable(
            update.name.as_deref(),
            "organization_fields",
            &update.organization_fields,
            &owned_fields(sync),
        )
    }

    async fn create(
        ctx: &StageContext,
        run: &RunKeys,
        sync: SyncKind,
        creates: &[DesiredOrg],
        result: &mut SyncResult,
    ) -> Result<(), StageError> {
        let client = ctx.zendesk(sync.instance())?;
        let created = create_orgs(client, sync, creates, result).await?;
        if sync == SyncKind::Global && !created.is_empty() {
            associate_sold_tos(ctx, client, run, &created, result).await?;
        }
        Ok(())
    }

    fn update_item(update: &OrgUpdate) -> Value {
        let mut item = json!({"id": update.id});
        if let Some(name) = &update.name {
            item["name"] = json!(name);
        }
        if !update.organization_fields.is_empty() {
            item["organization_fields"] = Value::Object(update.organization_fields.clone());
        }
        item
    }

    fn mark_item(mark: &OrgMark) -> Value {
        json!({"id": mark.id, "organization_fields": {field::MARK_FOR_DELETION: true}})
    }

    async fn update_many(
        client: &ZendeskClient,
        items: Vec<Value>,
    ) -> Result<Vec<ItemOutcome>, ZendeskError> {
        client.update_organizations(items).await
    }
}

/// The organization fields a sync writes (SPEC §6, §9); no other key ever leaves it.
fn owned_fields(sync: SyncKind) -> Vec<&'static str> {
    match sync {
        SyncKind::Partners => PARTNER_FIELD_KEYS.to_vec(),
        _ => sync.instance().field_keys(),
    }
}

/// Create Many Organizations. A create refused because the name is taken by an org of this
/// sync with the same Salesforce id is what a re-run of this stage sees: it counts as done.
async fn create_orgs<'a>(
    client: &ZendeskClient,
    sync: SyncKind,
    creates: &'a [DesiredOrg],
    result: &mut SyncResult,
) -> Result<Vec<(&'a DesiredOrg, u64)>, StageError> {
    let items = creates
        .iter()
        .map(|o| json!({"name": o.name, "organization_fields": o.organization_fields}))
        .collect();
    let mut created = Vec::new();
    for outcome in client.create_organizations(items).await? {
        let object = &creates[outcome.index];
        let key = object.salesforce_id.to_string();
        let (id, already) = match outcome.result {
            Ok(id) => (id, false),
            Err(e) if taken(&e) => match org_with_same_id(client, sync, object).await? {
                Some(id) => (Some(id), true),
                None => {
                    result
                        .errors
                        .push(record_error(&key, SyncAction::Create, e));
                    continue;
                }
            },
            Err(e) => {
                result
                    .errors
                    .push(record_error(&key, SyncAction::Create, e));
                continue;
            }
        };
        result.created.push(RecordOutcome {
            already,
            ..RecordOutcome::new(key, id)
        });
        if let Some(id) = id {
            created.push((object, id));
        }
    }
    Ok(created)
}

/// The org holding `object`'s name, if it is this sync's org of the same account.
async fn org_with_same_id(
    client: &ZendeskClient,
    sync: SyncKind,
    object: &DesiredOrg,
) -> Result<Option<u64>, StageError> {
    let found = client
        .search_organizations_by_name(object.name.trim())
        .await?;
    Ok(found.into_iter().find_map(|raw| {
        let org = ZendeskOrg::from_api(raw).ok()?;
        (org.managed_id().as_ref() == Some(&object.salesforce_id) && sync.owns_org(&org))
            .then_some(org.id)
    }))
}

/// SPEC §8: for each new Global org and each sold-to email — no user: create an end-user in the
/// org; a user without an org: add a membership (never set `organization_id` on an existing
/// user, which would drop their other memberships); a user in another org: leave them. One email
/// on several new orgs gets its user once, in the first of them by Salesforce id; for the others
/// it is a user in another org. The new orgs left with nobody are named in one Slack digest.
async fn associate_sold_tos(
    ctx: &StageContext,
    client: &ZendeskClient,
    run: &RunKeys,
    created: &[(&DesiredOrg, u64)],
    result: &mut SyncResult,
) -> Result<(), StageError> {
    let mut created = created.to_vec();
    created.sort_by(|(a, _), (b, _)| a.salesforce_id.cmp(&b.salesforce_id));
    let mut attached: BTreeMap<u64, usize> = created.iter().map(|(_, id)| (*id, 0)).collect();
    // Emails whose user this run creates, and in which org: the first org by Salesforce id.
    let mut queued: BTreeSet<&str> = BTreeSet::new();
    let mut new_users = Vec::new();
    let mut new_user_orgs = Vec::new();
    for (object, org_id) in &created {
        let key = object.salesforce_id.to_string();
        for sold_to in &object.sold_tos {
            if queued.contains(sold_to.email.as_str()) {
                continue; // created in an earlier new org: "a user in another org".
            }
            let association_error = |e: &dyn std::fmt::Display| RecordError {
                key: key.clone(),
                action: SyncAction::AssociateUser,
                error: e.to_string(),
                details: Some(sold_to.email.clone()),
            };
            let user = match client.search_user_by_email(&sold_to.email).await {
                Ok(user) => user,
                Err(e) if e.is_retryable() => return Err(e.into()),
                Err(e) => {
                    result.errors.push(association_error(&e));
                    continue;
                }
            };
            let Some(user) = user else {
                queued.insert(&sold_to.email);
                new_users.push(json!({
                    "name": sold_to.name.clone().unwrap_or_else(|| sold_to.email.clone()),
                    "email": sold_to.email,
                    "role": "end-user",
                    "organization_id": org_id,
                }));
                new_user_orgs.push((key.clone(), *org_id, sold_to.email.clone()));
                continue;
            };
            match (
                user.get("id").and_then(Value::as_u64),
                user.get("organization_id").and_then(Value::as_u64),
            ) {
                (Some(user_id), None) => {
                    match client
                        .create_organization_membership(user_id, *org_id)
                        .await
                    {
                        Ok(()) => *attached.entry(*org_id).or_default() += 1,
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        Err(e) => result.errors.push(association_error(&e)),
                    }
                }
                (_, Some(existing)) if existing == *org_id => {
                    *attached.entry(*org_id).or_default() += 1
                }
                // In another organization already: leave them where they are.
                _ => {}
            }
        }
    }
    if !new_users.is_empty() {
        let bulk = client.create_users(new_users).await?;
        if bulk.fell_back_to_single_creates {
            result.warnings.push(format!(
                "global: bulk user import is disabled; {} users were created one by one",
                new_user_orgs.len()
            ));
        }
        for outcome in bulk.outcomes {
            let (key, org_id, email) = &new_user_orgs[outcome.index];
            let outcome = match outcome.result {
                // A create that landed before (a lost answer, a redrive): done when the user is
                // in this new org.
                Err(e) if taken(&e) => match existing_user(client, email, *org_id).await? {
                    Ok(id) => Ok(Some(id)),
                    Err(why) => Err(ItemError {
                        details: Some(format!(
                            "{}; {why}",
                            e.details.as_deref().unwrap_or("the email is taken")
                        )),
                        ..e
                    }),
                },
                other => other,
            };
            match outcome {
                Ok(_) => *attached.entry(*org_id).or_default() += 1,
                Err(e) => result.errors.push(RecordError {
                    key: key.clone(),
                    action: SyncAction::AssociateUser,
                    error: e.error,
                    details: Some(format!("{email}: {}", e.details.unwrap_or_default())),
                }),
            }
        }
    }
    result.without_contacts = created
        .iter()
        .filter(|(_, org_id)| attached.get(org_id).copied().unwrap_or(0) == 0)
        .map(|(object, org_id)| NewOrgWithoutContacts {
            salesforce_id: object.salesforce_id.clone(),
            name: object.name.clone(),
            id: *org_id,
            sold_to_emails: object.sold_tos.iter().map(|s| s.email.clone()).collect(),
        })
        .collect();
    if !result.without_contacts.is_empty() {
        let text = digest(run, Instance::Global, &result.without_contacts);
        notify(ctx, &text, result).await;
    }
    Ok(())
}

/// One Slack message per sync run (SPEC §8): the first [`DIGEST_NAMED`] new orgs without
/// contacts and a count of the rest; the sync result keeps the full list.
pub(crate) fn digest(run: &RunKeys, instance: Instance, orgs: &[NewOrgWithoutContacts]) -> String {
    let mut text = format!(
        "zdsync run {}: {} new Zendesk {instance} organization{} without support contacts. Please add their users:",
        run.run_id(),
        orgs.len(),
        if orgs.len() == 1 { " is" } else { "s are" },
    );
    for org in orgs.iter().take(DIGEST_NAMED) {
        let why = if org.sold_to_emails.is_empty() {
            "Salesforce lists no sold-to contact".to_owned()
        } else {
            format!("none of {} could be added", org.sold_to_emails.join(", "))
        };
        text.push_str(&format!(
            "\n• {} (Salesforce {}, Zendesk org {}): {why}",
            org.name, org.salesforce_id, org.id
        ));
    }
    if orgs.len() > DIGEST_NAMED {
        text.push_str(&format!(
            "\n… and {} more: see {}",
            orgs.len() - DIGEST_NAMED,
            run.key(&artifacts::sync_result(SyncKind::orgs(instance)))
                .unwrap_or_default()
        ));
    }
    text
}

/// Slack is best effort: no webhook, or a failed post, is a warning in the result, never fatal.
async fn notify(ctx: &StageContext, text: &str, result: &mut SyncResult) {
    match &ctx.slack {
        None => {
            tracing::warn!(%text, "Slack is not configured");
            result
                .warnings
                .push(format!("Slack not configured: {text}"));
        }
        Some(slack) => {
            if let Err(e) = slack.notify(text).await {
                tracing::warn!(error = %e, "Slack notification failed");
                result
                    .warnings
                    .push(format!("Slack notification failed ({e}): {text}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(n: u64) -> NewOrgWithoutContacts {
        NewOrgWithoutContacts {
            salesforce_id: SalesforceId::parse("0011U00000V0tkDQAR").unwrap(),
            name: format!("Org {n}"),
            id: n,
            sold_to_emails: if n.is_multiple_of(2) {
                vec![]
            } else {
                vec!["a@b.example".into()]
            },
        }
    }

    #[test]
    fn the_digest_names_the_first_fifty_and_counts_the_rest() {
        let run = RunKeys::new("r1").unwrap();
        let one = digest(&run, Instance::Global, &[org(1)]);
        assert!(
            one.contains("1 new Zendesk global organization is without"),
            "{one}"
        );
        assert!(one.contains("Org 1 (Salesforce 0011U00000V0tkDQAR, Zendesk org 1): none of a@b.example could be added"));
        let many: Vec<_> = (0..73).map(org).collect();
        let text = digest(&run, Instance::Global, &many);
        assert_eq!(text.lines().count(), 1 + 50 + 1, "{text}");
        assert!(text.contains("Org 49 ") && !text.contains("Org 50 "));
        assert!(
            text.ends_with("… and 23 more: see runs/r1/global_sync_result.json"),
            "{text}"
        );
        assert!(text.contains("Org 0 (Salesforce 0011U00000V0tkDQAR, Zendesk org 0): Salesforce lists no sold-to contact"));
    }
}
