//! Writing organizations: the Global and US Gov org syncs and the partner sync. Creates with
//! Create Many Organizations, updates and marks with Update Many Organizations; a new Global org
//! then gets its sold-to contacts (SPEC §8).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Managed, Unwritable, Writes, record_error, taken, unwritable, user_in_org};
use crate::error::StageError;
use crate::model::instance::{PARTNER_FIELD_KEYS, field};
use crate::model::{
    DesiredOrg, Instance, NewOrgWithoutContacts, OrgKey, OrgMark, OrgUpdate, RecordError,
    RecordOutcome, SalesforceId, SyncAction, SyncKind, SyncResult, ZendeskOrg, ZendeskOrgKeys,
};
use crate::stages::{StageContext, artifacts};
use crate::store::RunKeys;
use crate::zendesk::{ItemOutcome, ZendeskClient, ZendeskError};

/// New orgs without contacts named in the Slack digest; the sync result lists all of them.
const DIGEST_NAMED: usize = 50;

pub(in crate::stages) struct OrgWrites;

impl Writes for OrgWrites {
    type Create = DesiredOrg;
    type Update = OrgUpdate;
    type Mark = OrgMark;

    /// Only ids and keys: the sync checks its targets against the gather, it does not read the
    /// orgs' fields (at 200 000 accounts the whole artifact as maps was 1.3 GB).
    type Gathered = ZendeskOrgKeys;

    fn instance_of(gathered: &ZendeskOrgKeys) -> Instance {
        gathered.instance
    }

    fn managed(sync: SyncKind, gathered: &ZendeskOrgKeys) -> Managed {
        let owned = gathered
            .orgs
            .iter()
            .filter(|org| sync.owns(org.partner))
            .filter_map(|org| org.managed_id().map(|id| (org.id, id.to_string())))
            .collect();
        let in_use = gathered
            .orgs
            .iter()
            .filter_map(OrgKey::managed_id)
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
        sync: SyncKind,
        creates: &[DesiredOrg],
        result: &mut SyncResult,
    ) -> Result<(), StageError> {
        let client = ctx.zendesk(sync.instance())?;
        let created = create_orgs(client, sync, creates, result).await?;
        if sync == SyncKind::Global && !created.is_empty() {
            associate_sold_tos(client, &created, result).await?;
        }
        Ok(())
    }

    /// The Global sync's one Slack digest of the run's new orgs left without contacts.
    async fn finish(ctx: &StageContext, run: &RunKeys, sync: SyncKind, result: &mut SyncResult) {
        if sync == SyncKind::Global && !result.without_contacts.is_empty() {
            let text = digest(
                run,
                Instance::Global,
                &result.without_contacts,
                &ctx.store.describe(),
            );
            notify(ctx, &text, result).await;
        }
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
/// it is a user in another org. The new orgs left with nobody are collected for the run's one Slack digest.
///
/// In as few calls as the documented API allows: every email is first *created* with Create
/// Many Users (100 per job), since a create is both the question "is there a user?" and, for
/// most new orgs, the answer; only the emails Zendesk refuses as taken are looked up (one
/// search each — search cannot be batched by email), and the users found without an org are
/// added with Create Many Memberships (100 per job). A first run's new orgs thus cost about
/// 1/100 of a job each plus one search per already-known email, instead of a search per email.
async fn associate_sold_tos(
    client: &ZendeskClient,
    created: &[(&DesiredOrg, u64)],
    result: &mut SyncResult,
) -> Result<(), StageError> {
    let mut created = created.to_vec();
    created.sort_by(|(a, _), (b, _)| a.salesforce_id.cmp(&b.salesforce_id));
    let mut attached: BTreeMap<u64, usize> = created.iter().map(|(_, id)| (*id, 0)).collect();
    let wanted = sold_to_owners(&created);
    let new_users = wanted
        .iter()
        .map(|w| {
            json!({
                "name": w.name,
                "email": w.email,
                "role": "end-user",
                "organization_id": w.org_id,
            })
        })
        .collect();
    let bulk = client.create_users(new_users).await?;
    if bulk.fell_back_to_single_creates {
        result.warn("global: bulk user import is disabled; sold-to users were created one by one");
    }
    let association_error = |w: &SoldToOwner, error: String, details: String| RecordError {
        key: w.key.clone(),
        action: SyncAction::AssociateUser,
        error,
        details: Some(format!("{}: {details}", w.email)),
    };
    // Users who exist without an org: one membership each, in bulk.
    let mut joining: Vec<&SoldToOwner> = Vec::new();
    let mut pairs = Vec::new();
    for outcome in bulk.outcomes {
        let w = &wanted[outcome.index];
        match outcome.result {
            Ok(_) => *attached.entry(w.org_id).or_default() += 1,
            Err(e) if taken(&e) => match known_user(client, w).await? {
                KnownUser::InThisOrg => *attached.entry(w.org_id).or_default() += 1,
                KnownUser::WithoutOrg(user_id) => {
                    joining.push(w);
                    pairs.push((user_id, w.org_id));
                }
                KnownUser::InAnotherOrg => {}
                KnownUser::NotFound(why) => result.errors.push(association_error(
                    w,
                    e.error,
                    format!(
                        "{}; {why}",
                        e.details.as_deref().unwrap_or("the email is taken")
                    ),
                )),
            },
            Err(e) => {
                result
                    .errors
                    .push(association_error(w, e.error, e.details.unwrap_or_default()))
            }
        }
    }
    if !pairs.is_empty() {
        for outcome in client.create_organization_memberships(&pairs).await? {
            let w = joining[outcome.index];
            match outcome.result {
                Ok(_) => *attached.entry(w.org_id).or_default() += 1,
                Err(e) => {
                    result
                        .errors
                        .push(association_error(w, e.error, e.details.unwrap_or_default()))
                }
            }
        }
    }
    // A slice redone after a crash names its orgs again: each is listed once.
    let listed: BTreeSet<u64> = result.without_contacts.iter().map(|o| o.id).collect();
    let nobody = created
        .iter()
        .filter(|(_, org_id)| attached.get(org_id).copied().unwrap_or(0) == 0)
        .filter(|(_, org_id)| !listed.contains(org_id))
        .map(|(object, org_id)| NewOrgWithoutContacts {
            salesforce_id: object.salesforce_id.clone(),
            name: object.name.clone(),
            id: *org_id,
            sold_to_emails: object.sold_tos.iter().map(|s| s.email.clone()).collect(),
        })
        .collect::<Vec<_>>();
    result.without_contacts.extend(nobody);
    Ok(())
}

/// A sold-to email and the new org its user belongs in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SoldToOwner {
    /// The new org's Salesforce id (the key its errors are reported under).
    key: String,
    org_id: u64,
    email: String,
    name: String,
}

/// Each distinct sold-to email once, with the first new org (by Salesforce id, `created` is
/// sorted) that names it; for the later orgs its user is "a user in another org".
fn sold_to_owners(created: &[(&DesiredOrg, u64)]) -> Vec<SoldToOwner> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut owners = Vec::new();
    for (object, org_id) in created {
        for sold_to in &object.sold_tos {
            if !seen.insert(sold_to.email.to_lowercase()) {
                continue;
            }
            owners.push(SoldToOwner {
                key: object.salesforce_id.to_string(),
                org_id: *org_id,
                email: sold_to.email.clone(),
                name: sold_to
                    .name
                    .clone()
                    .unwrap_or_else(|| sold_to.email.clone()),
            });
        }
    }
    owners
}

/// Where the user holding a taken sold-to email is.
enum KnownUser {
    /// Already in the new org: a create that landed before (a lost answer, a redrive).
    InThisOrg,
    WithoutOrg(u64),
    InAnotherOrg,
    NotFound(String),
}

/// The user behind a taken email. Search first (one call); a user search has not indexed yet —
/// one created moments ago by the attempt being redriven — is looked for among the new org's
/// users.
async fn known_user(client: &ZendeskClient, w: &SoldToOwner) -> Result<KnownUser, StageError> {
    if let Some(user) = client.search_user_by_email(&w.email).await? {
        let id = user.get("id").and_then(Value::as_u64);
        return Ok(
            match (id, user.get("organization_id").and_then(Value::as_u64)) {
                (_, Some(org)) if org == w.org_id => KnownUser::InThisOrg,
                (Some(id), None) => KnownUser::WithoutOrg(id),
                (_, Some(_)) => KnownUser::InAnotherOrg,
                (None, None) => {
                    KnownUser::NotFound("the search answered a user without an id".into())
                }
            },
        );
    }
    // Not found by search (not indexed yet, or a secondary address): in the new org already?
    Ok(match user_in_org(client, &w.email, w.org_id).await? {
        Some(_) => KnownUser::InThisOrg,
        None => KnownUser::NotFound("no user with it is found yet".into()),
    })
}

/// One Slack message per sync run (SPEC §8): the first [`DIGEST_NAMED`] new orgs without
/// contacts and a count of the rest; the sync result keeps the full list, and the run's report
/// (in `store_url`, written when the run ends) shows the rest of the run.
pub(crate) fn digest(
    run: &RunKeys,
    instance: Instance,
    orgs: &[NewOrgWithoutContacts],
    store_url: &str,
) -> String {
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
    text.push_str(&format!(
        "\nThe run's report will be at {}/{}{} when the run ends.",
        store_url.trim_end_matches('/'),
        run.prefix(),
        artifacts::REPORT
    ));
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

    fn new_org(id: &str, emails: &[&str]) -> DesiredOrg {
        DesiredOrg {
            salesforce_id: SalesforceId::parse(id).unwrap(),
            name: format!("Org {id}"),
            organization_fields: serde_json::Map::new(),
            sold_tos: emails
                .iter()
                .map(|e| crate::model::SoldTo {
                    name: None,
                    email: e.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn each_sold_to_email_belongs_to_the_first_new_org_naming_it() {
        let a = new_org("0011U00000V0tkA", &["pat@x.example", "kim@x.example"]);
        let b = new_org("0011U00000V0tkB", &["PAT@x.example", "lee@x.example"]);
        // `created` is sorted by Salesforce id: a before b.
        let owners = sold_to_owners(&[(&a, 1), (&b, 2)]);
        let owned: Vec<(&str, u64)> = owners
            .iter()
            .map(|o| (o.email.as_str(), o.org_id))
            .collect();
        assert_eq!(
            owned,
            [
                ("pat@x.example", 1),
                ("kim@x.example", 1),
                ("lee@x.example", 2)
            ]
        );
        assert_eq!(
            owners[0].name, "pat@x.example",
            "no name: the email is the name"
        );
        assert_eq!(owners[2].key, b.salesforce_id.to_string());
    }

    #[test]
    fn the_digest_names_the_first_fifty_and_counts_the_rest() {
        let run = RunKeys::new("r1").unwrap();
        let store = "s3://zdsync-artifacts/";
        let one = digest(&run, Instance::Global, &[org(1)], store);
        assert!(
            one.contains("1 new Zendesk global organization is without"),
            "{one}"
        );
        assert!(one.contains("Org 1 (Salesforce 0011U00000V0tkDQAR, Zendesk org 1): none of a@b.example could be added"));
        let many: Vec<_> = (0..73).map(org).collect();
        assert!(
            one.ends_with(
                "\nThe run's report will be at s3://zdsync-artifacts/runs/r1/report.md when the run ends."
            ),
            "{one}"
        );
        let text = digest(&run, Instance::Global, &many, store);
        assert_eq!(text.lines().count(), 1 + 50 + 1 + 1, "{text}");
        assert!(text.contains("Org 49 ") && !text.contains("Org 50 "));
        assert!(
            text.contains("\n… and 23 more: see runs/r1/global_sync_result.json\n"),
            "{text}"
        );
        assert!(text.contains("Org 0 (Salesforce 0011U00000V0tkDQAR, Zendesk org 0): Salesforce lists no sold-to contact"));
    }
}
