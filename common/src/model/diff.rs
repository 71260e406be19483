//! What compare decides (SPEC §7): `{instance}_creates.json`, `_updates.json`,
//! `_not_in_sync.json` (and the partner sync's equivalents).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{DesiredOrg, Instance, SalesforceId};

/// Creates, updates and marks for one instance, plus the conflicts that held records back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgDiff {
    pub creates: Vec<DesiredOrg>,
    pub updates: Vec<OrgUpdate>,
    pub not_in_sync: Vec<OrgMark>,
    pub conflicts: Vec<Conflict>,
    /// Creates and renames Zendesk would refuse because another org has the name.
    pub held_back: Vec<HeldBack>,
}

impl OrgDiff {
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty()
            && self.updates.is_empty()
            && self.not_in_sync.is_empty()
            && self.conflicts.is_empty()
            && self.held_back.is_empty()
    }
}

/// A create, or an update's new name, that compare did not send because another Zendesk org
/// already has the name (names are unique after trimming). The sync reports it as a record
/// error each run, without a write that is certain to fail, until a person renames one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBack {
    pub salesforce_id: SalesforceId,
    pub name: String,
    pub action: crate::model::SyncAction,
    /// The Zendesk org holding the name.
    pub holder_id: u64,
    pub holder_salesforce_id: Option<String>,
}

/// The artifact form of one of the three compare sets. Each carries the instance (checked by
/// the sync stage) and the run's conflicts, so whoever opens any of the files sees which
/// records were held back and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet<T> {
    pub instance: Instance,
    pub items: Vec<T>,
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    /// Creates (in the creates set) and renames (in the updates set) held back by compare.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<HeldBack>,
}

/// An update of a matched org: its Zendesk id and only what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgUpdate {
    pub id: u64,
    /// For the result and for people reading the artifact; not sent to Zendesk.
    pub salesforce_id: SalesforceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub organization_fields: Map<String, Value>,
}

/// A managed org with no desired object: it gets `mark_for_deletion: true` (the separate
/// deletion process reads the mark; the sync itself never deletes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgMark {
    pub id: u64,
    pub salesforce_id: SalesforceId,
    pub name: String,
    pub organization_fields: MarkForDeletion,
}

/// The one field a mark writes. Deserialising rejects anything but `true`, so a tampered or
/// corrupt artifact cannot turn a mark into some other write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkForDeletion {
    #[serde(deserialize_with = "must_be_true")]
    pub mark_for_deletion: bool,
}

impl MarkForDeletion {
    pub const MARK: MarkForDeletion = MarkForDeletion {
        mark_for_deletion: true,
    };
}

fn must_be_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match bool::deserialize(d)? {
        true => Ok(true),
        false => Err(serde::de::Error::custom(
            "a mark must set mark_for_deletion to true",
        )),
    }
}

/// Several Zendesk orgs claim the same Salesforce id. None of them is written and the account
/// is neither created nor applied until a person merges or fixes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub salesforce_id: SalesforceId,
    pub orgs: Vec<ConflictingOrg>,
    /// The name of the desired object the conflict held back, if there is one.
    pub desired_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictingOrg {
    pub id: u64,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mark_artifact_can_only_mark() {
        let good = json!({"instance": "global", "items": [
            {"id": 7, "salesforce_id": "0011U00000V0tkDQAR", "name": "Gone", "organization_fields": {"mark_for_deletion": true}}
        ]});
        let set: ChangeSet<OrgMark> = serde_json::from_value(good.clone()).unwrap();
        assert_eq!(set.items[0].organization_fields, MarkForDeletion::MARK);
        assert!(set.conflicts.is_empty());

        let mut unmark = good.clone();
        unmark["items"][0]["organization_fields"]["mark_for_deletion"] = json!(false);
        let err = serde_json::from_value::<ChangeSet<OrgMark>>(unmark).unwrap_err();
        assert!(
            err.to_string().contains("mark_for_deletion to true"),
            "{err}"
        );

        let mut smuggled = good;
        smuggled["items"][0]["organization_fields"]["support_level"] = json!("ultimate");
        assert!(serde_json::from_value::<ChangeSet<OrgMark>>(smuggled).is_err());
    }

    #[test]
    fn an_update_artifact_validates_its_salesforce_ids() {
        let bad = json!({"instance": "usgov", "items": [{"id": 7, "salesforce_id": "0011U' OR '1'='1", "name": "x"}]});
        assert!(serde_json::from_value::<ChangeSet<OrgUpdate>>(bad).is_err());
        let bad_instance = json!({"instance": "emea", "items": []});
        assert!(serde_json::from_value::<ChangeSet<OrgUpdate>>(bad_instance).is_err());
    }
}
