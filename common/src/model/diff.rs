//! What compare decides (SPEC §7): `{instance}_creates.json`, `_updates.json`,
//! `_not_in_sync.json`, and the partner and user syncs' `creates.json`, `updates.json`,
//! `not_in_sync.json`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{DesiredUser, RawDesiredOrg, SalesforceId, SyncKind, UserMark, UserUpdate};

/// What one compare decided: creates, updates and marks, plus what it held back and why. `D` is
/// the desired object, `U` the update and `M` the mark of the sync's record kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff<D, U, M> {
    pub creates: Vec<D>,
    pub updates: Vec<U>,
    pub not_in_sync: Vec<M>,
    pub conflicts: Vec<Conflict>,
    /// Creates and renames not sent because Zendesk would refuse them or another sync owns the
    /// record: reported each run, never written.
    pub held_back: Vec<HeldBack>,
}

impl<D, U, M> Default for Diff<D, U, M> {
    fn default() -> Self {
        Diff {
            creates: Vec::new(),
            updates: Vec::new(),
            not_in_sync: Vec::new(),
            conflicts: Vec::new(),
            held_back: Vec::new(),
        }
    }
}

impl<D, U, M> Diff<D, U, M> {
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty()
            && self.updates.is_empty()
            && self.not_in_sync.is_empty()
            && self.conflicts.is_empty()
            && self.held_back.is_empty()
    }
}

/// The org syncs' and the partner sync's compare result.
pub type OrgDiff = Diff<RawDesiredOrg, OrgUpdate, OrgMark>;
/// The user sync's compare result.
pub type UserDiff = Diff<DesiredUser, UserUpdate, UserMark>;

/// A create, or an update's new name, that compare did not send. The sync reports it (not as a
/// record error) every run until a person resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBack {
    /// The join key: the Salesforce id, or the lower-cased email of a user.
    pub key: String,
    pub name: String,
    pub action: crate::model::SyncAction,
    pub reason: HoldReason,
    /// The Zendesk record in the way; `None` for a record this run is about to create.
    pub holder_id: Option<u64>,
    /// The holder's own key (its Salesforce id or email), if it has one.
    pub holder_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// Zendesk names are unique: another org has (or this run gives another org) the name.
    NameTaken,
    /// A Zendesk record with this key exists but belongs to another sync or to nobody the sync
    /// may write: a customer org for a partner account, an agent or protected user for a
    /// contact. Creating a second one would duplicate it.
    OwnedElsewhere,
}

impl HeldBack {
    /// One line for people: what was held back and what is in the way.
    pub fn describe(&self) -> String {
        let holder = match self.holder_id {
            None => "another record created in this run".to_owned(),
            Some(id) => format!("Zendesk record {id}"),
        };
        let holder_key = self
            .holder_key
            .as_deref()
            .map(|key| format!(" ({key})"))
            .unwrap_or_default();
        match self.reason {
            HoldReason::NameTaken => format!(
                "the name {:?} is taken by {holder}{holder_key}; not sent to Zendesk. Rename one of them.",
                self.name
            ),
            HoldReason::OwnedElsewhere => format!(
                "{holder}{holder_key} already has this key but is not this sync's to write; nothing was created"
            ),
        }
    }
}

/// The artifact form of one of the three compare sets. Each carries its sync (checked by the
/// sync stage) and the run's conflicts, so whoever opens any of the files sees which records
/// were held back and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet<T> {
    pub sync: SyncKind,
    pub items: Vec<T>,
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    /// Creates (in the creates set) and renames (in the updates set) held back by compare.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<HeldBack>,
}

impl<T> ChangeSet<T> {
    pub fn new(
        sync: SyncKind,
        items: Vec<T>,
        conflicts: &[Conflict],
        held_back: Vec<HeldBack>,
    ) -> ChangeSet<T> {
        ChangeSet {
            sync,
            items,
            conflicts: conflicts.to_vec(),
            held_back,
        }
    }
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

pub(crate) fn must_be_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match bool::deserialize(d)? {
        true => Ok(true),
        false => Err(serde::de::Error::custom(
            "a mark must set its field to true",
        )),
    }
}

/// Several Zendesk records claim the same key (Salesforce id or email). None of them is written
/// and the matching desired object is neither created nor applied until a person merges or
/// fixes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub key: String,
    pub records: Vec<ConflictingRecord>,
    /// The name of the desired object the conflict held back, if there is one.
    pub desired_name: Option<String>,
}

impl Conflict {
    /// One line for people: `0011… is on Zendesk records 12 ("Acme"), 13 ("Acme Inc")`.
    pub fn describe(&self) -> String {
        let records: Vec<String> = self
            .records
            .iter()
            .map(|r| format!("{} ({:?})", r.id, r.name))
            .collect();
        format!("{} is on Zendesk records {}", self.key, records.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictingRecord {
    pub id: u64,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mark_artifact_can_only_mark() {
        let good = json!({"sync": "global", "items": [
            {"id": 7, "salesforce_id": "0011U00000V0tkDQAR", "name": "Gone", "organization_fields": {"mark_for_deletion": true}}
        ]});
        let set: ChangeSet<OrgMark> = serde_json::from_value(good.clone()).unwrap();
        assert_eq!(set.items[0].organization_fields, MarkForDeletion::MARK);
        assert!(set.conflicts.is_empty());

        let mut unmark = good.clone();
        unmark["items"][0]["organization_fields"]["mark_for_deletion"] = json!(false);
        let err = serde_json::from_value::<ChangeSet<OrgMark>>(unmark).unwrap_err();
        assert!(
            err.to_string().contains("must set its field to true"),
            "{err}"
        );

        let mut smuggled = good;
        smuggled["items"][0]["organization_fields"]["support_level"] = json!("ultimate");
        assert!(serde_json::from_value::<ChangeSet<OrgMark>>(smuggled).is_err());
    }

    #[test]
    fn an_update_artifact_validates_its_salesforce_ids() {
        let bad = json!({"sync": "usgov", "items": [{"id": 7, "salesforce_id": "0011U' OR '1'='1", "name": "x"}]});
        assert!(serde_json::from_value::<ChangeSet<OrgUpdate>>(bad).is_err());
        let bad_instance = json!({"sync": "emea", "items": []});
        assert!(serde_json::from_value::<ChangeSet<OrgUpdate>>(bad_instance).is_err());
    }
}
