//! Compare (SPEC §7): desired objects against Zendesk organizations, joined on `salesforce_id`.
//!
//! The output is deterministic (sorted) so artifacts of two runs can be diffed, and minimal
//! (an update carries only what changed) so Zendesk's audit log shows real changes only.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::equality::same_meaning;
use crate::model::instance::field;
use crate::model::{
    Conflict, ConflictingOrg, DesiredOrg, MarkForDeletion, OrgDiff, OrgMark, OrgUpdate,
    SalesforceId, SupportLevel, ZendeskOrg,
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

    for (id, object) in &desired_by_id {
        if rules.held_ids.contains(*id) || in_conflict.contains(id) {
            continue;
        }
        match orgs_by_id.get(*id).and_then(|orgs| orgs.first()) {
            Some(org) => diff.updates.extend(changes(object, org)),
            None if rules.skip_expired_creates && is_expired(object) => {}
            None => diff.creates.push((*object).clone()),
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
