//! Compare (SPEC §7): desired objects against Zendesk organizations, joined on `salesforce_id`.
//!
//! The output is deterministic (sorted) so artifacts of two runs can be diffed, and minimal
//! (an update carries only what changed) so Zendesk's audit log shows real changes only.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::equality::same_meaning;
use crate::model::instance::field;
use crate::model::{
    Conflict, ConflictingOrg, DesiredOrg, HeldBack, MarkForDeletion, OrgDiff, OrgMark, OrgUpdate,
    SalesforceId, SupportLevel, SyncAction, ZendeskOrg,
};

/// What differs between the compares of the Global org sync, the US Gov org sync and the
/// partner sync.
#[derive(Debug, Clone, Default)]
pub struct CompareRules {
    /// Ids whose orgs are never marked (config `protected_ids`).
    pub protected_ids: BTreeSet<SalesforceId>,
    /// Ids whose orgs are left exactly as they are (accounts rejected at gather).
    pub held_ids: BTreeSet<SalesforceId>,
    /// Global org sync: partner orgs belong to the partner sync, never mark them here.
    pub skip_partner_orgs: bool,
    /// Org syncs: an account that is already expired does not get a new org.
    pub skip_expired_creates: bool,
}

impl CompareRules {
    /// The Global customer-org compare.
    pub fn global_orgs() -> CompareRules {
        CompareRules {
            skip_partner_orgs: true,
            skip_expired_creates: true,
            ..CompareRules::default()
        }
    }

    /// The US Gov org compare.
    pub fn usgov_orgs() -> CompareRules {
        CompareRules {
            skip_expired_creates: true,
            ..CompareRules::default()
        }
    }

    /// The Global partner compare.
    pub fn partners() -> CompareRules {
        CompareRules::default()
    }

    pub fn with_protected(mut self, ids: impl IntoIterator<Item = SalesforceId>) -> Self {
        self.protected_ids.extend(ids);
        self
    }

    pub fn with_held(mut self, ids: impl IntoIterator<Item = SalesforceId>) -> Self {
        self.held_ids.extend(ids);
        self
    }
}

pub fn compare_orgs(
    desired: &[DesiredOrg],
    zendesk: &[ZendeskOrg],
    rules: &CompareRules,
) -> OrgDiff {
    // Managed orgs by canonical id. BTreeMap: output order follows the id, deterministically.
    let mut orgs_by_id: BTreeMap<SalesforceId, Vec<&ZendeskOrg>> = BTreeMap::new();
    for org in zendesk {
        if let Some(id) = org.managed_id() {
            orgs_by_id.entry(id).or_default().push(org);
        }
    }
    let desired_by_id: BTreeMap<&SalesforceId, &DesiredOrg> =
        desired.iter().map(|d| (&d.salesforce_id, d)).collect();

    let mut diff = OrgDiff::default();
    for (id, orgs) in &orgs_by_id {
        if orgs.len() > 1 {
            diff.conflicts
                .push(conflict(id, orgs, desired_by_id.get(id).copied()));
        }
    }
    let in_conflict: BTreeSet<&SalesforceId> =
        diff.conflicts.iter().map(|c| &c.salesforce_id).collect();

    let mut names = NameIndex::of(zendesk);
    for (id, object) in &desired_by_id {
        if rules.held_ids.contains(*id) || in_conflict.contains(id) {
            continue;
        }
        match orgs_by_id.get(*id).and_then(|orgs| orgs.first()) {
            Some(org) => {
                if let Some(mut update) = changes(object, org) {
                    if let Some(holder) = update
                        .name
                        .as_deref()
                        .and_then(|n| names.holder_other_than(n, org.id))
                    {
                        diff.held_back
                            .push(held_back(object, SyncAction::Update, holder));
                        update.name = None;
                    }
                    if update.name.is_some() || !update.organization_fields.is_empty() {
                        diff.updates.push(update);
                    }
                }
            }
            None if rules.skip_expired_creates && is_expired(object) => {}
            None => match names.holder(&object.name) {
                Some(holder) => diff
                    .held_back
                    .push(held_back(object, SyncAction::Create, holder)),
                None => {
                    names.claim(&object.name, object);
                    diff.creates.push((*object).clone());
                }
            },
        }
    }

    for (id, orgs) in &orgs_by_id {
        let [org] = orgs.as_slice() else { continue };
        let keep = desired_by_id.contains_key(id)
            || rules.held_ids.contains(id)
            || rules.protected_ids.contains(id)
            || (rules.skip_partner_orgs && org.is_partner())
            || is_marked(org);
        if !keep {
            diff.not_in_sync.push(OrgMark {
                id: org.id,
                salesforce_id: id.clone(),
                name: org.name.clone(),
                organization_fields: MarkForDeletion::MARK,
            });
        }
    }
    diff.updates.sort_by_key(|u| u.id);
    diff.not_in_sync.sort_by_key(|m| m.id);
    diff.held_back
        .sort_by(|a, b| a.salesforce_id.cmp(&b.salesforce_id));
    diff
}

/// The update that makes `org` match `object`, if anything differs: the name and the fields
/// whose meaning differs, nothing else.
pub fn changes(object: &DesiredOrg, org: &ZendeskOrg) -> Option<OrgUpdate> {
    let name = (object.name.trim() != org.name.trim()).then(|| object.name.trim().to_owned());
    let organization_fields: Map<String, Value> = object
        .organization_fields
        .iter()
        .filter(|(key, value)| !same_meaning(Some(value), org.organization_fields.get(*key)))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (name.is_some() || !organization_fields.is_empty()).then(|| OrgUpdate {
        id: org.id,
        salesforce_id: object.salesforce_id.clone(),
        name,
        organization_fields,
    })
}

/// Zendesk organization names are unique after trimming (and, as far as one can tell, case):
/// which org holds each name, including the ones this compare is about to create.
struct NameIndex {
    holders: BTreeMap<String, (u64, Option<String>)>,
}

impl NameIndex {
    fn of(zendesk: &[ZendeskOrg]) -> NameIndex {
        let mut holders = BTreeMap::new();
        for org in zendesk {
            holders
                .entry(name_key(&org.name))
                .or_insert((org.id, org.salesforce_id.clone()));
        }
        NameIndex { holders }
    }

    fn holder(&self, name: &str) -> Option<(u64, Option<String>)> {
        self.holders.get(&name_key(name)).cloned()
    }

    fn holder_other_than(&self, name: &str, org_id: u64) -> Option<(u64, Option<String>)> {
        self.holder(name).filter(|(id, _)| *id != org_id)
    }

    /// A create takes its name, so a second create of the same name is held back. Id 0: the
    /// org does not exist yet.
    fn claim(&mut self, name: &str, object: &DesiredOrg) {
        self.holders
            .insert(name_key(name), (0, Some(object.salesforce_id.to_string())));
    }
}

fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

fn held_back(
    object: &DesiredOrg,
    action: SyncAction,
    (holder_id, holder_salesforce_id): (u64, Option<String>),
) -> HeldBack {
    HeldBack {
        salesforce_id: object.salesforce_id.clone(),
        name: object.name.trim().to_owned(),
        action,
        holder_id,
        holder_salesforce_id,
    }
}

fn conflict(id: &SalesforceId, orgs: &[&ZendeskOrg], desired: Option<&DesiredOrg>) -> Conflict {
    let mut orgs: Vec<ConflictingOrg> = orgs
        .iter()
        .map(|o| ConflictingOrg {
            id: o.id,
            name: o.name.clone(),
        })
        .collect();
    orgs.sort_by_key(|o| o.id);
    Conflict {
        salesforce_id: id.clone(),
        orgs,
        desired_name: desired.map(|d| d.name.clone()),
    }
}

fn is_expired(object: &DesiredOrg) -> bool {
    object
        .organization_fields
        .get(field::SUPPORT_LEVEL)
        .and_then(Value::as_str)
        == Some(SupportLevel::Expired.as_str())
}

fn is_marked(org: &ZendeskOrg) -> bool {
    same_meaning(
        org.organization_fields.get(field::MARK_FOR_DELETION),
        Some(&Value::Bool(true)),
    )
}

#[cfg(test)]
mod tests;
