//! Sync (SPEC §8), per instance: creates, then updates, then marks — each as bulk jobs.
//!
//! Everything is read and cross-checked before the first write: a compare artifact that does not
//! fit the gathered orgs (an id that is not there, a field the sync does not own) fails the stage
//! with `InvalidArtifact` and Zendesk is not touched. The result is written even when the stage
//! then fails, so every per-record outcome is on record.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::{RunInput, Stage, StageContext, StageOutput, artifacts, mismatch, read, write};
use crate::error::StageError;
use crate::model::instance::field;
use crate::model::{
    ChangeSet, DesiredOrg, HeldBack, Instance, OrgMark, OrgUpdate, RecordError, RecordOutcome,
    SalesforceId, SyncAction, SyncResult, ZendeskOrg, ZendeskOrgs,
};
use crate::rules::GuardDecision;
use crate::store::RunKeys;
use crate::zendesk::{ItemError, ZendeskClient};

/// The compare sets of one instance, checked against each other and the gathered orgs.
struct SyncPlan {
    creates: Vec<DesiredOrg>,
    /// Creates and renames compare held back (the name is taken): reported, never sent.
    held_back: Vec<HeldBack>,
    updates: Vec<OrgUpdate>,
    marks: Vec<OrgMark>,
    /// Managed orgs in the instance: the deletion guard's base.
    managed: usize,
}

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let instance = input.instance(Stage::Sync)?;
    let plan = SyncPlan::load(ctx, &keys, instance).await?;
    let client = ctx.zendesk(instance)?;
    let decision = ctx.settings.sync.deletion_guard().decide(
        plan.marks.len(),
        plan.managed,
        input.allow_deletions.get(&instance).copied(),
    );

    let mut result = SyncResult {
        instance: Some(instance),
        deletion_guard: Some(decision.clone()),
        errors: plan.held_back.iter().map(name_taken_error).collect(),
        ..SyncResult::default()
    };
    let applied = apply(ctx, client, instance, &plan, &decision, &mut result).await;
    let key = write(ctx, &keys, &artifacts::sync_result(instance), &result).await?;
    applied?;

    if let GuardDecision::Tripped {
        marks,
        limit,
        managed,
    } = decision
    {
        return Err(StageError::DeletionGuardTripped {
            instance,
            marks,
            limit,
            managed,
        });
    }
    let max = ctx.settings.sync.max_record_errors;
    if result.errors.len() > max {
        return Err(StageError::TooManyRecordErrors {
            count: result.errors.len(),
            max,
            result_key: key,
        });
    }
    Ok(StageOutput::new(Stage::Sync, Some(instance))
        .count("created", result.created.len())
        .count("updated", result.updated.len())
        .count("marked", result.marked.len())
        .count("errors", result.errors.len())
        .count("warnings", result.warnings.len())
        .with_artifact(key))
}

async fn apply(
    ctx: &StageContext,
    client: &ZendeskClient,
    instance: Instance,
    plan: &SyncPlan,
    decision: &GuardDecision,
    result: &mut SyncResult,
) -> Result<(), StageError> {
    let created = create_orgs(client, &plan.creates, result).await?;
    if instance == Instance::Global {
        associate_sold_tos(ctx, client, instance, &created, result).await?;
    }
    update_orgs(client, &plan.updates, result).await?;
    if decision.is_tripped() {
        tracing::warn!(%instance, marks = plan.marks.len(), ?decision, "deletion guard tripped: no org is marked");
    } else {
        mark_orgs(client, &plan.marks, result).await?;
    }
    Ok(())
}

impl SyncPlan {
    async fn load(
        ctx: &StageContext,
        keys: &RunKeys,
        instance: Instance,
    ) -> Result<SyncPlan, StageError> {
        let creates: ChangeSet<DesiredOrg> =
            read_set(ctx, keys, &artifacts::creates(instance), instance).await?;
        let updates: ChangeSet<OrgUpdate> =
            read_set(ctx, keys, &artifacts::updates(instance), instance).await?;
        let marks: ChangeSet<OrgMark> =
            read_set(ctx, keys, &artifacts::not_in_sync(instance), instance).await?;
        let gathered_name = artifacts::zendesk_orgs(instance);
        let gathered: ZendeskOrgs = read(ctx, keys, &gathered_name).await?;
        if gathered.instance != instance {
            return Err(mismatch(
                &keys.key(&gathered_name)?,
                "instance",
                format!("expected {instance}, found {}", gathered.instance),
            ));
        }
        let managed: BTreeMap<u64, SalesforceId> = gathered
            .orgs
            .iter()
            .filter_map(|org: &ZendeskOrg| org.managed_id().map(|id| (org.id, id)))
            .collect();
        let owned: BTreeSet<&str> = instance.field_keys().into_iter().collect();

        let key = keys.key(&artifacts::creates(instance))?;
        let existing: BTreeSet<&SalesforceId> = managed.values().collect();
        for (i, object) in creates.items.iter().enumerate() {
            if existing.contains(&object.salesforce_id) {
                return Err(mismatch(
                    &key,
                    &format!("items[{i}].salesforce_id"),
                    format!(
                        "{} already has an org; creating it again would duplicate it",
                        object.salesforce_id
                    ),
                ));
            }
            check_owned_fields(&key, i, &object.organization_fields, &owned)?;
        }
        let key = keys.key(&artifacts::updates(instance))?;
        for (i, update) in updates.items.iter().enumerate() {
            check_target(
                &key,
                i,
                update.id,
                &update.salesforce_id,
                &managed,
                &gathered_name,
            )?;
            check_owned_fields(&key, i, &update.organization_fields, &owned)?;
        }
        let key = keys.key(&artifacts::not_in_sync(instance))?;
        for (i, mark) in marks.items.iter().enumerate() {
            check_target(
                &key,
                i,
                mark.id,
                &mark.salesforce_id,
                &managed,
                &gathered_name,
            )?;
        }
        Ok(SyncPlan {
            held_back: creates
                .held_back
                .into_iter()
                .chain(updates.held_back)
                .collect(),
            creates: creates.items,
            updates: updates.items,
            marks: marks.items,
            managed: managed.len(),
        })
    }
}

async fn read_set<T: serde::de::DeserializeOwned>(
    ctx: &StageContext,
    keys: &RunKeys,
    name: &str,
    instance: Instance,
) -> Result<ChangeSet<T>, StageError> {
    let set: ChangeSet<T> = read(ctx, keys, name).await?;
    if set.instance != instance {
        return Err(mismatch(
            &keys.key(name)?,
            "instance",
            format!("expected {instance}, found {}", set.instance),
        ));
    }
    Ok(set)
}

/// An update or mark must name a managed org of this instance, with the same Salesforce id.
fn check_target(
    key: &str,
    index: usize,
    id: u64,
    salesforce_id: &SalesforceId,
    managed: &BTreeMap<u64, SalesforceId>,
    gathered: &str,
) -> Result<(), StageError> {
    match managed.get(&id) {
        Some(found) if found == salesforce_id => Ok(()),
        Some(found) => Err(mismatch(
            key,
            &format!("items[{index}].salesforce_id"),
            format!("org {id} belongs to {found} in {gathered}, not {salesforce_id}"),
        )),
        None => Err(mismatch(
            key,
            &format!("items[{index}].id"),
            format!("org {id} is not a managed org in {gathered}"),
        )),
    }
}

/// Only the keys the sync owns may be written (SPEC §6): never agent or deletion-job fields.
fn check_owned_fields(
    key: &str,
    index: usize,
    fields: &Map<String, Value>,
    owned: &BTreeSet<&str>,
) -> Result<(), StageError> {
    match fields.keys().find(|k| !owned.contains(k.as_str())) {
        Some(field) => Err(mismatch(
            key,
            &format!("items[{index}].organization_fields.{field}"),
            "the sync never writes this field".into(),
        )),
        None => Ok(()),
    }
}

/// Create Many Organizations. A create refused because the name is taken by an org with the
/// same Salesforce id is what a re-run of this stage sees: it counts as done.
async fn create_orgs<'a>(
    client: &ZendeskClient,
    creates: &'a [DesiredOrg],
    result: &mut SyncResult,
) -> Result<Vec<(&'a DesiredOrg, u64)>, StageError> {
    if creates.is_empty() {
        return Ok(Vec::new());
    }
    let items = creates
        .iter()
        .map(|o| json!({"name": o.name, "organization_fields": o.organization_fields}))
        .collect();
    let mut created = Vec::new();
    for outcome in client.create_organizations(items).await? {
        let object = &creates[outcome.index];
        let key = object.salesforce_id.to_string();
        let id = match outcome.result {
            Ok(id) => id,
            Err(e) if name_taken(&e) => match org_with_same_id(client, object).await? {
                Some(id) => Some(id),
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
        result.created.push(RecordOutcome { key, id });
        if let Some(id) = id {
            created.push((object, id));
        }
    }
    Ok(created)
}

fn name_taken(e: &ItemError) -> bool {
    let details = e.details.as_deref().unwrap_or_default().to_lowercase();
    e.error.contains("DuplicateValue")
        || details.contains("already been taken")
        || details.contains("duplicatevalue")
}

/// The org holding `object`'s name, if it is the same account.
async fn org_with_same_id(
    client: &ZendeskClient,
    object: &DesiredOrg,
) -> Result<Option<u64>, StageError> {
    let found = client
        .search_organizations_by_name(object.name.trim())
        .await?;
    Ok(found.into_iter().find_map(|raw| {
        let org = ZendeskOrg::from_api(raw).ok()?;
        (org.managed_id().as_ref() == Some(&object.salesforce_id)).then_some(org.id)
    }))
}

/// SPEC §8: for each new Global org and each sold-to email — no user: create an end-user in the
/// org; a user without an org: add a membership (never set `organization_id` on an existing
/// user, which would drop their other memberships); a user in another org: leave them. A new org
/// left with nobody gets a Slack notice.
async fn associate_sold_tos(
    ctx: &StageContext,
    client: &ZendeskClient,
    instance: Instance,
    created: &[(&DesiredOrg, u64)],
    result: &mut SyncResult,
) -> Result<(), StageError> {
    let mut attached: BTreeMap<u64, usize> = created.iter().map(|(_, id)| (*id, 0)).collect();
    let mut new_users = Vec::new();
    let mut new_user_orgs = Vec::new();
    for (object, org_id) in created {
        let key = object.salesforce_id.to_string();
        for sold_to in &object.sold_tos {
            let user = match client.search_user_by_email(&sold_to.email).await {
                Ok(user) => user,
                Err(e) if e.is_retryable() => return Err(e.into()),
                Err(e) => {
                    result.errors.push(RecordError {
                        key: key.clone(),
                        action: SyncAction::AssociateUser,
                        error: e.to_string(),
                        details: Some(sold_to.email.clone()),
                    });
                    continue;
                }
            };
            match user {
                None => {
                    new_users.push(json!({
                        "name": sold_to.name.clone().unwrap_or_else(|| sold_to.email.clone()),
                        "email": sold_to.email,
                        "role": "end-user",
                        "organization_id": org_id,
                    }));
                    new_user_orgs.push((key.clone(), *org_id, sold_to.email.clone()));
                }
                Some(user) => match (
                    user.get("id").and_then(Value::as_u64),
                    user.get("organization_id").and_then(Value::as_u64),
                ) {
                    (Some(user_id), None) => match client
                        .create_organization_membership(user_id, *org_id)
                        .await
                    {
                        Ok(()) => *attached.entry(*org_id).or_default() += 1,
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        Err(e) => result.errors.push(RecordError {
                            key: key.clone(),
                            action: SyncAction::AssociateUser,
                            error: e.to_string(),
                            details: Some(sold_to.email.clone()),
                        }),
                    },
                    (_, Some(existing)) if existing == *org_id => {
                        *attached.entry(*org_id).or_default() += 1
                    }
                    // In another organization already: leave them where they are.
                    _ => {}
                },
            }
        }
    }
    if !new_users.is_empty() {
        let bulk = client.create_users(new_users).await?;
        if bulk.fell_back_to_single_creates {
            result.warnings.push(format!(
                "{instance}: bulk user import is disabled; {} users were created one by one",
                new_user_orgs.len()
            ));
        }
        for outcome in bulk.outcomes {
            let (key, org_id, email) = &new_user_orgs[outcome.index];
            match outcome.result {
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
    for (object, org_id) in created {
        if attached.get(org_id).copied().unwrap_or(0) == 0 {
            notify_no_contacts(ctx, instance, object, *org_id, result).await;
        }
    }
    Ok(())
}

/// Slack is best effort: no webhook, or a failed post, is a warning in the result, never fatal.
async fn notify_no_contacts(
    ctx: &StageContext,
    instance: Instance,
    object: &DesiredOrg,
    org_id: u64,
    result: &mut SyncResult,
) {
    let emails: Vec<&str> = object.sold_tos.iter().map(|s| s.email.as_str()).collect();
    let text = format!(
        "New Zendesk {instance} organization \"{}\" (Salesforce {}, Zendesk org {org_id}) has no support contacts: {}. Please add its users.",
        object.name,
        object.salesforce_id,
        if emails.is_empty() {
            "Salesforce lists no sold-to contact".to_owned()
        } else {
            format!("none of {} could be added", emails.join(", "))
        }
    );
    match &ctx.slack {
        None => {
            tracing::warn!(%text, "Slack is not configured");
            result
                .warnings
                .push(format!("Slack not configured: {text}"));
        }
        Some(slack) => {
            if let Err(e) = slack.notify(&text).await {
                tracing::warn!(error = %e, "Slack notification failed");
                result
                    .warnings
                    .push(format!("Slack notification failed ({e}): {text}"));
            }
        }
    }
}

async fn update_orgs(
    client: &ZendeskClient,
    updates: &[OrgUpdate],
    result: &mut SyncResult,
) -> Result<(), StageError> {
    let targets = updates
        .iter()
        .map(|u| {
            let mut item = json!({"id": u.id});
            if let Some(name) = &u.name {
                item["name"] = json!(name);
            }
            if !u.organization_fields.is_empty() {
                item["organization_fields"] = Value::Object(u.organization_fields.clone());
            }
            (u.salesforce_id.to_string(), u.id, item)
        })
        .collect();
    update_many(client, targets, SyncAction::Update, result).await
}

async fn mark_orgs(
    client: &ZendeskClient,
    marks: &[OrgMark],
    result: &mut SyncResult,
) -> Result<(), StageError> {
    let targets = marks
        .iter()
        .map(|m| {
            let item = json!({"id": m.id, "organization_fields": {field::MARK_FOR_DELETION: true}});
            (m.salesforce_id.to_string(), m.id, item)
        })
        .collect();
    update_many(client, targets, SyncAction::Mark, result).await
}

/// Update Many Organizations for `(key, org id, payload)` targets; each outcome lands in the
/// result under `action`.
async fn update_many(
    client: &ZendeskClient,
    targets: Vec<(String, u64, Value)>,
    action: SyncAction,
    result: &mut SyncResult,
) -> Result<(), StageError> {
    if targets.is_empty() {
        return Ok(());
    }
    let items = targets.iter().map(|(_, _, item)| item.clone()).collect();
    for outcome in client.update_organizations(items).await? {
        let (key, id, _) = &targets[outcome.index];
        match outcome.result {
            Ok(_) => {
                let done = match action {
                    SyncAction::Mark => &mut result.marked,
                    _ => &mut result.updated,
                };
                done.push(RecordOutcome {
                    key: key.clone(),
                    id: Some(*id),
                });
            }
            Err(e) => result.errors.push(record_error(key, action, e)),
        }
    }
    Ok(())
}

fn name_taken_error(held: &HeldBack) -> RecordError {
    let holder = match held.holder_id {
        0 => "another account created in this run".to_owned(),
        id => format!("Zendesk org {id}"),
    };
    let holder_account = held
        .holder_salesforce_id
        .as_deref()
        .map(|id| format!(" (salesforce_id {id})"))
        .unwrap_or_default();
    RecordError {
        key: held.salesforce_id.to_string(),
        action: held.action,
        error: "DuplicateValue".into(),
        details: Some(format!(
            "the name {:?} is taken by {holder}{holder_account}; not sent to Zendesk. Rename one of the accounts or orgs.",
            held.name
        )),
    }
}

fn record_error(key: &str, action: SyncAction, e: ItemError) -> RecordError {
    RecordError {
        key: key.to_owned(),
        action,
        error: e.error,
        details: e.details,
    }
}
