//! The Global org sync's step after a window of creates (SPEC §8): the new orgs' sold-to
//! contacts become their end-users, and the new orgs left with nobody are collected for the
//! run's one Slack digest. Generic over the sync's spec; only a spec that
//! [attaches sold-tos](SyncSpec::attaches_sold_tos) has it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Value, json};

use super::SyncRun;
use super::window::WindowEnd;
use crate::error::StageError;
use crate::model::{AssociatedUser, NewOrgWithoutContacts, RecordError, SyncAction, WindowStep};
use crate::syncs::{CreateOf, RecordWrites, SyncSpec, user_in_org};
use crate::zendesk::{BulkKind, BulkOptions, ZendeskClient, membership_items};

/// SPEC §8: for each new Global org of the window and each sold-to email — no user: create an
/// end-user in the org; a user with no organization: add a membership (never set
/// `organization_id` on an existing user, which would drop their other memberships); a user in
/// another org: leave them. One email on several new orgs gets its user once, in the first of
/// them by Salesforce id; for the others it is a user in another org — also across windows: the
/// users this sync put into a new org are part of its place, so an email met again in a later
/// window is in another org whatever search says. The new orgs left with nobody are collected
/// for the run's one Slack digest.
///
/// In as few calls as the documented API allows: every email is first *created* with Create
/// Many Users (100 per job), since a create is both the question "is there a user?" and, for
/// most new orgs, the answer; only the emails Zendesk refuses as taken are looked up (one
/// search each — search cannot be batched by email), and the users found without an org are
/// added with Create Many Memberships (100 per job). The create jobs are recorded in the
/// window's place as Zendesk accepts them, so a redo follows them instead of sending them again.
pub(super) async fn associate<S: SyncSpec>(
    run: &mut SyncRun<'_, S>,
    start: usize,
    len: usize,
) -> Result<WindowEnd, StageError> {
    let window = run.window_snapshot();
    let plan = run.plan;
    let objects: HashMap<String, &CreateOf<S>> = plan.creates[start..start + len]
        .iter()
        .map(|o| (S::Kind::create_key(o).to_string(), o))
        .collect();
    let mut created: Vec<NewRecord<'_, S::Kind>> = run
        .result
        .created
        .iter()
        .filter_map(|c| Some((*objects.get(&c.key)?, c.id?)))
        .collect();
    created.sort_by(|(a, _), (b, _)| S::Kind::create_key(a).cmp(S::Kind::create_key(b)));
    let known: HashMap<String, AssociatedUser> = run
        .progress()
        .users
        .iter()
        .map(|u| (u.email.clone(), u.clone()))
        .collect();
    let mut attached: BTreeMap<u64, usize> = created.iter().map(|(_, id)| (*id, 0)).collect();
    let mut associations: Vec<AssociatedUser> = Vec::new();
    // Emails this sync already put into a new org: in that org they count, elsewhere they are
    // a user in another org.
    let owners: Vec<SoldToOwner> = sold_to_owners::<S::Kind>(&created)
        .into_iter()
        .filter(|w| match known.get(&w.email.to_lowercase()) {
            Some(user) if user.organization_id == w.org_id => {
                *attached.entry(w.org_id).or_default() += 1;
                false
            }
            Some(_) => false,
            None => true,
        })
        .collect();
    let new_users = owners
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
    let bulk = run
        .bulk(
            &window,
            WindowStep::SoldToUsers,
            BulkKind::CreateUsers,
            new_users,
            Vec::new(),
        )
        .await?;
    if !bulk.open.is_empty() || !bulk.unsubmitted.is_empty() {
        // Every job of the step stays in the place, finished or not: the next go learns what
        // they did from their statuses and sends only the rest.
        return Ok(WindowEnd::Open);
    }
    if bulk.fell_back_to_single_creates {
        run.result
            .warn("global: bulk user import is disabled; sold-to users were created one by one");
    }
    let attempt = run.attempt;
    let association_error = |w: &SoldToOwner, error: String, details: String| RecordError {
        key: w.key.clone(),
        action: SyncAction::AssociateUser,
        error,
        details: Some(format!("{}: {details}", w.email)),
        attempt,
    };
    let mut errors = Vec::new();
    // Users who exist without an org: one membership each, in bulk.
    let mut joining: Vec<(&SoldToOwner, u64)> = Vec::new();
    for outcome in bulk.outcomes {
        let w = &owners[outcome.index];
        match outcome.result {
            Ok(id) => {
                *attached.entry(w.org_id).or_default() += 1;
                associations.push(w.associated(id));
            }
            Err(e) if e.is_taken() => {
                if run.past_deadline() {
                    // The step is redone next time: its create jobs answer "taken" again.
                    return Ok(WindowEnd::Open);
                }
                match known_user(run.client, w).await? {
                    KnownUser::InThisOrg(id) => {
                        *attached.entry(w.org_id).or_default() += 1;
                        associations.push(w.associated(id));
                    }
                    KnownUser::WithoutOrg(user_id) => joining.push((w, user_id)),
                    KnownUser::InAnotherOrg => {}
                    KnownUser::NotFound(why) => errors.push(association_error(
                        w,
                        e.error,
                        format!(
                            "{}; {why}",
                            e.details.as_deref().unwrap_or("the email is taken")
                        ),
                    )),
                }
            }
            Err(e) => errors.push(association_error(w, e.error, e.details.unwrap_or_default())),
        }
    }
    if !joining.is_empty() {
        let pairs: Vec<(u64, u64)> = joining.iter().map(|(w, user)| (*user, w.org_id)).collect();
        // Not recorded in the place: which users join depends on searches, so a redo works
        // it out again (and a membership sent twice answers "already a member").
        let options = BulkOptions {
            deadline: Some(run.deadline),
            ..BulkOptions::default()
        };
        let added = run
            .client
            .write_many(
                BulkKind::CreateMemberships,
                membership_items(&pairs),
                options,
            )
            .await?;
        run.result.lost_answers.add(&added.lost);
        if !added.open.is_empty() || !added.unsubmitted.is_empty() {
            // The step is redone: its user jobs are followed again, and memberships created
            // twice answer "already a member".
            return Ok(WindowEnd::Open);
        }
        for outcome in added.outcomes {
            let (w, user_id) = joining[outcome.index];
            match outcome.result {
                Ok(_) => {
                    *attached.entry(w.org_id).or_default() += 1;
                    associations.push(w.associated(Some(user_id)));
                }
                Err(e) => errors.push(association_error(w, e.error, e.details.unwrap_or_default())),
            }
        }
    }
    // The step's outcomes replace any of an earlier go at this window.
    let window_orgs: HashSet<u64> = created.iter().map(|(_, id)| *id).collect();
    let window_keys: HashSet<&str> = objects.keys().map(String::as_str).collect();
    let result = &mut run.result;
    result
        .errors
        .retain(|e| e.action != SyncAction::AssociateUser || !window_keys.contains(e.key.as_str()));
    result.errors.extend(errors);
    result
        .without_contacts
        .retain(|o| !window_orgs.contains(&o.id));
    result.without_contacts.extend(
        created
            .iter()
            .filter(|(_, org_id)| attached.get(org_id).copied().unwrap_or(0) == 0)
            .map(|(object, org_id)| NewOrgWithoutContacts {
                salesforce_id: S::Kind::create_account(object).clone(),
                name: S::Kind::create_name(object).to_owned(),
                id: *org_id,
                sold_to_emails: S::Kind::sold_tos(object)
                    .iter()
                    .map(|s| s.email.clone())
                    .collect(),
            }),
    );
    let users = &mut run.progress().users;
    let seen: BTreeSet<String> = users.iter().map(|u| u.email.clone()).collect();
    users.extend(
        associations
            .into_iter()
            .filter(|a| !seen.contains(&a.email)),
    );
    run.keep_open(Vec::new()).await;
    run.save().await?;
    Ok(WindowEnd::Settled)
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

impl SoldToOwner {
    fn associated(&self, id: Option<u64>) -> AssociatedUser {
        AssociatedUser {
            email: self.email.to_lowercase(),
            id,
            organization_id: self.org_id,
        }
    }
}

/// A create of the window that landed, with the id of its new record.
type NewRecord<'a, K> = (&'a <K as RecordWrites>::Create, u64);

/// Each distinct sold-to email once, with the first new org (by Salesforce id, `created` is
/// sorted) that names it; for the later orgs its user is "a user in another org".
fn sold_to_owners<K: RecordWrites>(created: &[NewRecord<'_, K>]) -> Vec<SoldToOwner> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut owners = Vec::new();
    for (object, org_id) in created {
        for sold_to in K::sold_tos(object) {
            if !seen.insert(sold_to.email.to_lowercase()) {
                continue;
            }
            owners.push(SoldToOwner {
                key: K::create_key(object).to_string(),
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
    InThisOrg(Option<u64>),
    WithoutOrg(u64),
    InAnotherOrg,
    NotFound(String),
}

/// The user behind a taken email. Search first (one call); a user search has not indexed yet —
/// one created moments ago by the attempt being redriven — is looked for among the new org's
/// users. A search answer can be stale: a user it shows without an org is read directly before
/// a membership is added (one may have been added since the index was made).
async fn known_user(client: &ZendeskClient, w: &SoldToOwner) -> Result<KnownUser, StageError> {
    if let Some(user) = client.search_user_by_email(&w.email).await? {
        let id = user.get("id").and_then(Value::as_u64);
        let org_of = |user: &serde_json::Map<String, Value>| {
            user.get("organization_id").and_then(Value::as_u64)
        };
        return Ok(match (id, org_of(&user)) {
            (_, Some(org)) if org == w.org_id => KnownUser::InThisOrg(id),
            (_, Some(_)) => KnownUser::InAnotherOrg,
            (None, None) => KnownUser::NotFound("the search answered a user without an id".into()),
            (Some(id), None) => match client.show_user(id).await?.as_ref().map(org_of) {
                Some(Some(org)) if org == w.org_id => KnownUser::InThisOrg(Some(id)),
                Some(Some(_)) => KnownUser::InAnotherOrg,
                Some(None) => KnownUser::WithoutOrg(id),
                None => KnownUser::NotFound(format!("user {id} is gone")),
            },
        });
    }
    // Not found by search (not indexed yet, or a secondary address): in the new org already?
    Ok(match user_in_org(client, &w.email, w.org_id).await? {
        Some(id) => KnownUser::InThisOrg(Some(id)),
        None => KnownUser::NotFound("no user with it is found yet".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DesiredOrg, SalesforceId};
    use crate::rules::compare::Orgs;

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
        let owners = sold_to_owners::<Orgs>(&[(&a, 1), (&b, 2)]);
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
}
