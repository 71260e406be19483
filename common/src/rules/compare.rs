//! Compare (SPEC §7): desired objects against Zendesk records, joined on a key. One algorithm
//! serves every sync; what differs between organizations and users is described by a
//! [`RecordKind`], and what differs between the four syncs by [`CompareRules`] and by which
//! gathered records the sync owns (its spec's, `crate::syncs`).
//!
//! The output is deterministic (sorted by key and id) so artifacts of two runs can be diffed,
//! and minimal (an update carries only what changed) so Zendesk's audit log shows real changes
//! only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use serde_json::{Map, Value};

use super::equality::same_meaning;
use crate::model::instance::field;
use crate::model::{
    Conflict, ConflictingRecord, DesiredUser, Diff, ForeignRecord, HeldBack, HoldReason,
    MarkForDeletion, NotInSfdc, OrgMark, OrgUpdate, RawDesiredOrg, RawZendeskOrg, SalesforceId,
    SupportLevel, SyncAction, UserDiff, UserMark, UserUpdate, ZendeskUser, email_key,
};

/// What compare needs to know about one kind of record: how desired objects and Zendesk records
/// are keyed and named, how an update and a mark are built, and what Zendesk keeps unique.
pub trait RecordKind {
    type Key: Ord + Clone + Display;
    type Desired: Clone;
    type Zendesk;
    type Update;
    type Mark;

    /// Zendesk refuses two records of this kind with one name (after trimming).
    const UNIQUE_NAMES: bool;

    fn desired_key(desired: &Self::Desired) -> &Self::Key;
    fn desired_name(desired: &Self::Desired) -> &str;
    /// Whether a desired object without a Zendesk record should be created.
    fn creatable(desired: &Self::Desired) -> bool;

    fn id(record: &Self::Zendesk) -> u64;
    /// The record's key; `None` for an unmanaged record, which is never written.
    fn key(record: &Self::Zendesk) -> Option<Self::Key>;
    fn name(record: &Self::Zendesk) -> &str;
    /// The key of a record known only by its raw key (another sync's record).
    fn parse_key(raw: &str) -> Option<Self::Key>;
    /// Already marked: not marked again.
    fn is_marked(record: &Self::Zendesk) -> bool;

    /// The update that makes `record` match `desired`, if anything differs.
    fn changes(desired: &Self::Desired, record: &Self::Zendesk) -> Option<Self::Update>;
    /// The update's new name, which compare withdraws when the name is taken.
    fn new_name(update: &mut Self::Update) -> &mut Option<String>;
    /// Nothing left to send (after a withdrawn rename).
    fn is_empty(update: &Self::Update) -> bool;
    fn update_id(update: &Self::Update) -> u64;
    /// The key of the record an update or a mark is for.
    fn update_key(update: &Self::Update) -> &Self::Key;
    fn mark(record: &Self::Zendesk, key: &Self::Key) -> Self::Mark;
    fn mark_id(mark: &Self::Mark) -> u64;
    fn mark_key(mark: &Self::Mark) -> &Self::Key;
}

/// What differs between the compares of the four syncs beyond the record kind.
#[derive(Debug, Clone)]
pub struct CompareRules<K> {
    /// Keys whose records are never marked (config `protected_ids`).
    pub protected: BTreeSet<K>,
    /// Keys whose records are left exactly as they are: neither created, updated nor marked
    /// (records rejected at gather, ambiguous emails).
    pub held: BTreeSet<K>,
}

impl<K: Ord> Default for CompareRules<K> {
    fn default() -> Self {
        CompareRules {
            protected: BTreeSet::new(),
            held: BTreeSet::new(),
        }
    }
}

impl<K: Ord> CompareRules<K> {
    pub fn with_protected(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.protected.extend(keys);
        self
    }

    pub fn with_held(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.held.extend(keys);
        self
    }
}

/// A Zendesk record that has a key: one the sync owns, or one it must leave alone.
enum Holder<'a, R> {
    Owned(&'a R),
    Foreign(&'a ForeignRecord),
}

impl<R> Holder<'_, R> {
    fn id_and_name<K: RecordKind<Zendesk = R>>(&self) -> (u64, &str) {
        match self {
            Holder::Owned(r) => (K::id(r), K::name(r)),
            Holder::Foreign(f) => (f.id, f.name.as_str()),
        }
    }
}

/// The one compare (SPEC §7). `owned` are the Zendesk records this sync may update and mark;
/// `foreign` are the instance's other records, which it never writes but whose names and keys
/// a create must not take.
pub fn compare<'a, K: RecordKind>(
    desired: &[K::Desired],
    owned: impl IntoIterator<Item = &'a K::Zendesk>,
    foreign: &[ForeignRecord],
    rules: &CompareRules<K::Key>,
) -> Diff<K::Desired, K::Update, K::Mark>
where
    K::Zendesk: 'a,
{
    let owned: Vec<&K::Zendesk> = owned.into_iter().collect();
    // Every record with a key, by key (BTreeMap: output order follows the key).
    let mut by_key: BTreeMap<K::Key, Vec<Holder<'_, K::Zendesk>>> = BTreeMap::new();
    for record in &owned {
        if let Some(key) = K::key(record) {
            by_key.entry(key).or_default().push(Holder::Owned(record));
        }
    }
    for record in foreign {
        if let Some(key) = record.key.as_deref().and_then(K::parse_key) {
            by_key.entry(key).or_default().push(Holder::Foreign(record));
        }
    }
    let desired_by_key: BTreeMap<&K::Key, &K::Desired> =
        desired.iter().map(|d| (K::desired_key(d), d)).collect();

    let mut diff = Diff::default();
    for (key, holders) in &by_key {
        // Only this sync's conflicts: a key shared by records it owns, or wanted by one of its
        // desired objects. Two records of another sync sharing a key are that sync's report.
        let ours = holders.iter().any(|h| matches!(h, Holder::Owned(_)))
            || desired_by_key.contains_key(key);
        if holders.len() > 1 && ours {
            diff.conflicts.push(conflict::<K>(
                key,
                holders,
                desired_by_key.get(key).map(|d| K::desired_name(d)),
            ));
        }
    }
    let in_conflict = |key: &K::Key| by_key.get(key).is_some_and(|h| h.len() > 1);

    let mut names = NameIndex::new(K::UNIQUE_NAMES);
    for record in &owned {
        names.add(K::name(record), K::id(record), K::key(record));
    }
    for record in foreign {
        names.add(&record.name, record.id, record.key.clone());
    }

    // Matched records first, so an existing record keeps or takes its name before a create of
    // the same run can claim it (SPEC §7: the existing org wins; the create is held back).
    let mut unmatched = Vec::new();
    for (key, object) in &desired_by_key {
        if rules.held.contains(*key) || in_conflict(key) {
            continue;
        }
        match by_key.get(*key).map(Vec::as_slice) {
            Some([Holder::Owned(record)]) => {
                let Some(mut update) = K::changes(object, record) else {
                    continue;
                };
                if let Some(new_name) = K::new_name(&mut update).clone() {
                    let id = K::id(record);
                    match names.holder_other_than(&new_name, id) {
                        Some(holder) => {
                            diff.held_back.push(held_back::<K>(
                                object,
                                SyncAction::Update,
                                HoldReason::NameTaken,
                                holder,
                            ));
                            *K::new_name(&mut update) = None;
                        }
                        None => names.claim(&new_name, Some(id), Some(key.to_string())),
                    }
                }
                if !K::is_empty(&update) {
                    diff.updates.push(update);
                }
            }
            Some([Holder::Foreign(record)]) => diff.held_back.push(held_back::<K>(
                object,
                SyncAction::Create,
                HoldReason::OwnedElsewhere,
                Holding {
                    id: Some(record.id),
                    key: record.key.clone(),
                },
            )),
            _ => unmatched.push(*object),
        }
    }
    for object in unmatched {
        if !K::creatable(object) {
            continue;
        }
        let name = K::desired_name(object);
        match names.holder(name) {
            Some(holder) => diff.held_back.push(held_back::<K>(
                object,
                SyncAction::Create,
                HoldReason::NameTaken,
                holder,
            )),
            None => {
                names.claim(name, None, Some(K::desired_key(object).to_string()));
                diff.creates.push(object.clone());
            }
        }
    }

    for (key, holders) in &by_key {
        let [Holder::Owned(record)] = holders.as_slice() else {
            continue;
        };
        let keep = desired_by_key.contains_key(key)
            || rules.held.contains(key)
            || rules.protected.contains(key)
            || K::is_marked(record);
        if !keep {
            diff.not_in_sync.push(K::mark(record, key));
        }
    }
    diff.updates.sort_by_key(K::update_id);
    diff.not_in_sync.sort_by_key(K::mark_id);
    diff.held_back.sort_by(|a, b| a.key.cmp(&b.key));
    diff
}

/// Which record holds a name (or a key): an existing one (`id`) or one this run creates.
#[derive(Debug, Clone)]
struct Holding {
    id: Option<u64>,
    key: Option<String>,
}

/// Zendesk organization names are unique after trimming (and, as far as one can tell, case):
/// which record holds each name, including the ones this compare is about to create or rename.
/// For kinds without unique names it holds nothing.
struct NameIndex {
    unique: bool,
    holders: BTreeMap<String, Holding>,
}

impl NameIndex {
    fn new(unique: bool) -> NameIndex {
        NameIndex {
            unique,
            holders: BTreeMap::new(),
        }
    }

    fn add(&mut self, name: &str, id: u64, key: Option<impl Display>) {
        if !self.unique {
            return;
        }
        let holding = Holding {
            id: Some(id),
            key: key.map(|k| k.to_string()),
        };
        // Two existing records whose names Zendesk would call the same (it should not let them
        // exist; a name differing only in case slips through): the lowest id is named as the
        // holder, so the report does not depend on the order Zendesk listed them in.
        match self.holders.entry(name_key(name)) {
            std::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(holding);
            }
            std::collections::btree_map::Entry::Occupied(mut entry) => {
                if entry.get().id.is_some_and(|held| id < held) {
                    entry.insert(holding);
                }
            }
        }
    }

    fn holder(&self, name: &str) -> Option<Holding> {
        self.holders.get(&name_key(name)).cloned()
    }

    fn holder_other_than(&self, name: &str, id: u64) -> Option<Holding> {
        self.holder(name).filter(|h| h.id != Some(id))
    }

    /// A create or a rename takes its name, so a later create of the same name is held back.
    fn claim(&mut self, name: &str, id: Option<u64>, key: Option<String>) {
        if self.unique {
            self.holders.insert(name_key(name), Holding { id, key });
        }
    }
}

/// The form in which Zendesk compares organization names.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

fn held_back<K: RecordKind>(
    object: &K::Desired,
    action: SyncAction,
    reason: HoldReason,
    holder: Holding,
) -> HeldBack {
    HeldBack {
        key: K::desired_key(object).to_string(),
        name: K::desired_name(object).trim().to_owned(),
        action,
        reason,
        holder_id: holder.id,
        holder_key: holder.key,
    }
}

fn conflict<K: RecordKind>(
    key: &K::Key,
    holders: &[Holder<'_, K::Zendesk>],
    desired_name: Option<&str>,
) -> Conflict {
    let mut records: Vec<ConflictingRecord> = holders
        .iter()
        .map(|h| {
            let (id, name) = h.id_and_name::<K>();
            ConflictingRecord {
                id,
                name: name.to_owned(),
            }
        })
        .collect();
    records.sort_by_key(|r| r.id);
    Conflict {
        key: key.to_string(),
        records,
        desired_name: desired_name.map(str::to_owned),
    }
}

/// The fields of `desired` whose meaning differs in `current`; nothing else.
fn changed_fields(
    desired: &Map<String, Value>,
    current: &Map<String, Value>,
) -> Map<String, Value> {
    desired
        .iter()
        .filter(|(key, value)| !same_meaning(Some(value), current.get(*key)))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// The desired name, when it differs from the current one beyond surrounding blanks.
fn changed_name(desired: &str, current: &str) -> Option<String> {
    (desired.trim() != current.trim()).then(|| desired.trim().to_owned())
}

// ----- organizations (Global, US Gov and partner orgs) ----------------------------------------

/// Organizations, keyed by Salesforce id. Both sides keep their fields as JSON text
/// ([`RawDesiredOrg`], [`RawZendeskOrg`]): a pair's fields are parsed only when it is compared.
pub struct Orgs;

/// The one field `creatable` reads of a desired org.
#[derive(Default, serde::Deserialize)]
struct LevelOnly {
    #[serde(default)]
    support_level: Option<Value>,
}

impl RecordKind for Orgs {
    type Key = SalesforceId;
    type Desired = RawDesiredOrg;
    type Zendesk = RawZendeskOrg;
    type Update = OrgUpdate;
    type Mark = OrgMark;
    const UNIQUE_NAMES: bool = true;

    fn desired_key(desired: &RawDesiredOrg) -> &SalesforceId {
        &desired.salesforce_id
    }
    fn desired_name(desired: &RawDesiredOrg) -> &str {
        &desired.name
    }
    /// SPEC §7: an org sync does not create an org for an account that is already expired.
    /// (Partner objects have no support level, so every one of them is creatable.)
    fn creatable(desired: &RawDesiredOrg) -> bool {
        let level: LevelOnly = desired.organization_fields.pick();
        level.support_level.as_ref().and_then(Value::as_str) != Some(SupportLevel::Expired.as_str())
    }
    fn id(org: &RawZendeskOrg) -> u64 {
        org.id
    }
    fn key(org: &RawZendeskOrg) -> Option<SalesforceId> {
        org.managed_id()
    }
    fn name(org: &RawZendeskOrg) -> &str {
        &org.name
    }
    fn parse_key(raw: &str) -> Option<SalesforceId> {
        SalesforceId::parse(raw.trim()).ok()
    }
    fn is_marked(org: &RawZendeskOrg) -> bool {
        same_meaning(org.mark_for_deletion.as_ref(), Some(&Value::Bool(true)))
    }
    fn changes(object: &RawDesiredOrg, org: &RawZendeskOrg) -> Option<OrgUpdate> {
        let name = changed_name(&object.name, &org.name);
        let organization_fields = changed_fields(
            &object.organization_fields.parse(),
            &org.organization_fields.parse(),
        );
        (name.is_some() || !organization_fields.is_empty()).then(|| OrgUpdate {
            id: org.id,
            salesforce_id: object.salesforce_id.clone(),
            name,
            organization_fields,
        })
    }
    fn new_name(update: &mut OrgUpdate) -> &mut Option<String> {
        &mut update.name
    }
    fn is_empty(update: &OrgUpdate) -> bool {
        update.name.is_none() && update.organization_fields.is_empty()
    }
    fn update_id(update: &OrgUpdate) -> u64 {
        update.id
    }
    fn update_key(update: &OrgUpdate) -> &SalesforceId {
        &update.salesforce_id
    }
    fn mark(org: &RawZendeskOrg, key: &SalesforceId) -> OrgMark {
        OrgMark {
            id: org.id,
            salesforce_id: key.clone(),
            name: org.name.clone(),
            organization_fields: MarkForDeletion::MARK,
        }
    }
    fn mark_id(mark: &OrgMark) -> u64 {
        mark.id
    }
    fn mark_key(mark: &OrgMark) -> &SalesforceId {
        &mark.salesforce_id
    }
}

// ----- US Gov end-users -------------------------------------------------------------------

/// End-users, keyed by lower-cased email. Names are not unique in Zendesk.
pub struct Users;

impl RecordKind for Users {
    type Key = String;
    type Desired = DesiredUser;
    type Zendesk = ZendeskUser;
    type Update = UserUpdate;
    type Mark = UserMark;
    const UNIQUE_NAMES: bool = false;

    fn desired_key(desired: &DesiredUser) -> &String {
        &desired.email
    }
    fn desired_name(desired: &DesiredUser) -> &str {
        &desired.name
    }
    fn creatable(_: &DesiredUser) -> bool {
        true
    }
    fn id(user: &ZendeskUser) -> u64 {
        user.id
    }
    fn key(user: &ZendeskUser) -> Option<String> {
        user.email_key()
    }
    fn name(user: &ZendeskUser) -> &str {
        &user.name
    }
    fn parse_key(raw: &str) -> Option<String> {
        email_key(raw)
    }
    fn is_marked(user: &ZendeskUser) -> bool {
        same_meaning(
            user.user_fields.get(field::NOT_IN_SFDC),
            Some(&Value::Bool(true)),
        )
    }
    fn changes(desired: &DesiredUser, user: &ZendeskUser) -> Option<UserUpdate> {
        let name = changed_name(&desired.name, &user.name);
        let organization_id = (user.organization_id != Some(desired.organization_id))
            .then_some(desired.organization_id);
        let user_fields = changed_fields(&desired.user_fields, &user.user_fields);
        (name.is_some() || organization_id.is_some() || !user_fields.is_empty()).then(|| {
            UserUpdate {
                id: user.id,
                email: desired.email.clone(),
                name,
                organization_id,
                user_fields,
            }
        })
    }
    fn new_name(update: &mut UserUpdate) -> &mut Option<String> {
        &mut update.name
    }
    fn is_empty(update: &UserUpdate) -> bool {
        update.name.is_none() && update.organization_id.is_none() && update.user_fields.is_empty()
    }
    fn update_id(update: &UserUpdate) -> u64 {
        update.id
    }
    fn update_key(update: &UserUpdate) -> &String {
        &update.email
    }
    fn mark(user: &ZendeskUser, key: &String) -> UserMark {
        UserMark {
            id: user.id,
            email: key.clone(),
            user_fields: NotInSfdc::MARK,
        }
    }
    fn mark_id(mark: &UserMark) -> u64 {
        mark.id
    }
    fn mark_key(mark: &UserMark) -> &String {
        &mark.email
    }
}

/// The user sync's compare: the end-users it owns against the contacts' desired users; `foreign`
/// are the agents and protected users, whose emails no contact may be created over.
pub fn compare_users(
    desired: &[DesiredUser],
    users: &[ZendeskUser],
    foreign: &[ForeignRecord],
    rules: &CompareRules<String>,
) -> UserDiff {
    compare::<Users>(desired, users, foreign, rules)
}

#[cfg(test)]
mod tests;
