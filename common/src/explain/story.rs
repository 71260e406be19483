//! The pieces of an explanation, each built by a small pure function from what the rules
//! returned and what the run wrote.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;

use crate::model::{
    Account, ChangeSet, Charge, ForeignRecord, Instance, PartnerAccount, RejectedRecord,
    SalesforceContacts, SkipReason, SupportLevel, SyncKind, SyncResult,
};
use crate::rules::RunDates;
use crate::rules::compare::{RecordKind, name_key};
use crate::rules::processor::{AccountTrace, OverrideUse};
use crate::syncs::CompareInput;

/// A Salesforce record as its gather mapped it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Gathered {
    Mapped {
        name: String,
        /// `Support_Instance__c` is `federal-support`.
        federal_support_exception: bool,
        subscriptions: usize,
        charges: usize,
        sold_to_emails: Vec<String>,
    },
    /// The record could not be mapped: its org is left as it is.
    Rejected {
        name: Option<String>,
        reason: String,
    },
    /// The account query did not return it (no subscription in the last three years, or not
    /// a customer account).
    NotGathered,
}

pub(crate) fn gathered(account: Option<&Account>, rejected: Option<&RejectedRecord>) -> Gathered {
    match (account, rejected) {
        (Some(a), _) => Gathered::Mapped {
            name: a.name.clone(),
            federal_support_exception: a.exception,
            subscriptions: a.subs.len(),
            charges: a.charges.len(),
            sold_to_emails: a.sold_tos.iter().map(|s| s.email.clone()).collect(),
        },
        (None, Some(r)) => Gathered::Rejected {
            name: r.name.clone(),
            reason: r.reason.clone(),
        },
        (None, None) => Gathered::NotGathered,
    }
}

/// The processor's steps for one account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessStory {
    /// Why the account got no object at all.
    pub skipped: Option<String>,
    pub charges: Vec<ChargeStory>,
    pub instances: Vec<InstanceStory>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChargeStory {
    /// The charge as the gather mapped it.
    #[serde(flatten)]
    pub charge: Charge,
    /// The tier of `plans.yaml`; `None`: unmapped (the charge is ignored).
    pub tier: Option<String>,
    pub support_level: Option<SupportLevel>,
    pub flag: Option<String>,
    pub instance: Option<Instance>,
    /// Why that instance.
    pub route: Option<&'static str>,
    /// Active (ends on or after the grace date) or expired.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceStory {
    pub instance: Instance,
    pub flags: Vec<String>,
    pub support_level: SupportLevel,
    pub expiration_date: NaiveDate,
    pub seats: Option<f64>,
    /// Step 5, in words.
    #[serde(rename = "override")]
    pub override_use: String,
    /// Step 6: the post-rules that set something, in words.
    pub post_rules: Vec<String>,
    /// The desired object; `None` when it was dropped.
    pub desired: Option<crate::model::DesiredOrg>,
    pub dropped: Option<String>,
    /// Whether the run's `{instance}_accounts.json` holds this very object.
    pub same_as_run: Option<bool>,
}

pub fn skip_reason(reason: SkipReason) -> &'static str {
    match reason {
        SkipReason::Partner => {
            "a partner organization has this Salesforce id: the partner sync owns it, no customer org is made"
        }
        SkipReason::NoSubscriptions => "no subscription within the last three years",
        SkipReason::NoMappedCharges => "no charge name that plans.yaml knows",
        SkipReason::ExpiredOverThreeYears => "expired more than three years ago",
        SkipReason::DuplicateSalesforceId => "the Salesforce id appeared twice in one gather",
        SkipReason::Rejected => "the gather could not map the record",
    }
}

pub(crate) fn process_story(trace: &AccountTrace, dates: &RunDates) -> ProcessStory {
    ProcessStory {
        skipped: trace.skipped.map(|r| skip_reason(r).to_owned()),
        charges: trace
            .charges
            .iter()
            .map(|c| ChargeStory {
                charge: c.charge.clone(),
                tier: c.tier.map(|t| t.name.clone()),
                support_level: c.tier.map(|t| t.support_level),
                flag: c.tier.and_then(|t| t.flag.clone()),
                instance: c.route.map(|r| r.instance()),
                route: c.route.map(|r| r.describe()),
                active: c.active,
            })
            .collect(),
        instances: trace
            .instances
            .iter()
            .map(|i| InstanceStory {
                instance: i.instance,
                flags: i.entitlement.flags.iter().cloned().collect(),
                support_level: i.entitlement.support_level,
                expiration_date: i.entitlement.expiration_date,
                seats: i.entitlement.seats,
                override_use: override_words(&i.override_use, dates.as_of),
                post_rules: i.post_rules.iter().map(|r| r.describe()).collect(),
                desired: i.object.clone(),
                dropped: i.dropped.clone(),
                same_as_run: None,
            })
            .collect(),
    }
}

fn override_words(use_: &OverrideUse, as_of: NaiveDate) -> String {
    match use_ {
        OverrideUse::None => "none".into(),
        OverrideUse::Applied {
            reason,
            expires,
            keys,
        } => format!(
            "applied ({reason}; {}): {}",
            expires.map_or("no expiry".to_owned(), |d| format!("until {d}")),
            keys.join(", ")
        ),
        OverrideUse::Expired { reason, expires } => format!(
            "ignored: expired on {expires}, before {as_of} ({reason}); remove it from the overrides"
        ),
        OverrideUse::NotForInstance => {
            "ignored here: overrides apply to Global objects only".into()
        }
    }
}

/// The account as the partner gather saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PartnerStory {
    Mapped {
        name: String,
        account_type: String,
    },
    Rejected {
        name: Option<String>,
        reason: String,
    },
}

pub(crate) fn partner_story(
    account: Option<&PartnerAccount>,
    rejected: Option<&RejectedRecord>,
) -> Option<PartnerStory> {
    match (account, rejected) {
        (Some(a), _) => Some(PartnerStory::Mapped {
            name: a.name.clone(),
            account_type: a.account_type.as_str().to_owned(),
        }),
        (None, Some(r)) => Some(PartnerStory::Rejected {
            name: r.name.clone(),
            reason: r.reason.clone(),
        }),
        (None, None) => None,
    }
}

/// The email among the contacts of US Gov accounts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ContactStory {
    /// One contact: its user belongs in this org.
    Contact {
        name: String,
        salesforce_id: String,
        organization_id: u64,
    },
    /// Several contacts share it: its user is neither created, moved nor marked.
    Ambiguous { salesforce_ids: Vec<String> },
    /// Left as it is for another reason.
    Held {
        salesforce_id: Option<String>,
        reason: String,
    },
    /// A staff domain or a listed email: the sync never touches it.
    Protected,
    /// No contact has it.
    NotAContact,
}

impl ContactStory {
    pub(crate) fn held_why(&self) -> Option<String> {
        match self {
            ContactStory::Ambiguous { salesforce_ids } => Some(format!(
                "ambiguous: {} contacts share this email (accounts {}); its user is neither created, moved nor marked",
                salesforce_ids.len(),
                salesforce_ids.join(", ")
            )),
            ContactStory::Held { reason, .. } => Some(format!("held: {reason}")),
            _ => None,
        }
    }
}

pub(crate) fn contact_story(
    contacts: &SalesforceContacts,
    email: &str,
    protected: bool,
) -> ContactStory {
    if let Some(c) = contacts.contacts.iter().find(|c| c.email == email) {
        return ContactStory::Contact {
            name: c.name.clone(),
            salesforce_id: c.salesforce_id.to_string(),
            organization_id: c.organization_id,
        };
    }
    if let Some(a) = contacts.ambiguous_emails.iter().find(|a| a.email == email) {
        return ContactStory::Ambiguous {
            salesforce_ids: a.salesforce_ids.iter().map(|id| id.to_string()).collect(),
        };
    }
    if let Some(h) = contacts.held.iter().find(|h| h.email == email) {
        return ContactStory::Held {
            salesforce_id: h.salesforce_id.as_ref().map(|id| id.to_string()),
            reason: h.reason.clone(),
        };
    }
    if protected {
        ContactStory::Protected
    } else {
        ContactStory::NotAContact
    }
}

/// A Zendesk record the story is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordMatch {
    pub id: u64,
    pub name: String,
    pub role: RecordRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordRole {
    /// This sync's record with this key (marked: already marked).
    Owned { marked: bool },
    /// Has this key but is another sync's, or no sync's, to write.
    OwnedElsewhere,
    /// No (valid) key: the sync never writes it.
    Unmanaged,
}

/// Compare's decision for the key, as the run's change sets hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Create,
    /// Only what differs.
    Update {
        changes: Value,
    },
    Mark,
    /// The record matches the desired object: nothing to write.
    InSync,
    HeldBack {
        why: String,
    },
    Conflict {
        why: String,
    },
    NotCreated {
        why: String,
    },
    /// A record nothing desires, which compare leaves alone.
    Left {
        why: String,
    },
    /// No record and none desired.
    Nothing,
    /// The run has no change sets for this sync (it stopped before compare).
    NotCompared,
}

impl Decision {
    fn writes(&self) -> bool {
        matches!(
            self,
            Decision::Create | Decision::Update { .. } | Decision::Mark
        )
    }
}

/// What the sync did, from its result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Created { id: Option<u64>, already: bool },
    Updated { id: Option<u64> },
    Marked { id: Option<u64> },
    Error { what: String },
    HeldByGuard { decision: String },
    LeftForNextRun,
    NotWritten { why: String },
}

/// One sync's part of the story.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStory {
    pub sync: SyncKind,
    pub key: String,
    /// The object the sync wants (`None`: none is wanted).
    pub desired: Option<Value>,
    /// Why the key is held (left exactly as it is).
    pub held: Option<String>,
    /// Config `protected_ids`: never marked.
    pub protected: bool,
    /// Zendesk records with this key.
    pub records: Vec<RecordMatch>,
    /// Other records with the desired object's name (Zendesk names are unique).
    pub name_taken_by: Vec<RecordMatch>,
    pub compare: Vec<Decision>,
    pub sync_did: Vec<Outcome>,
}

impl SyncStory {
    /// One of the records with this key is this sync's.
    pub fn owns_a_record(&self) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r.role, RecordRole::Owned { .. }))
    }

    /// Worth showing: something is desired, exists or was decided.
    pub fn says_something(&self) -> bool {
        self.desired.is_some()
            || !self.records.is_empty()
            || self
                .compare
                .iter()
                .any(|d| !matches!(d, Decision::Nothing | Decision::NotCompared))
    }
}

/// A sync's three change sets as the run wrote them.
pub(crate) struct ChangeSets<K: RecordKind> {
    pub creates: ChangeSet<K::Desired>,
    pub updates: ChangeSet<K::Update>,
    pub marks: ChangeSet<K::Mark>,
}

/// What one sync's story is told from: compare's inputs (as compare saw them) and outputs.
pub(crate) struct CompareView<'a, K: RecordKind> {
    pub sync: SyncKind,
    pub desired: Option<&'a K::Desired>,
    /// The sync's compare input, as its spec builds it for the compare stage.
    pub input: CompareInput<'a, K>,
    pub held_why: Option<String>,
    pub sets: Option<ChangeSets<K>>,
    pub result: Option<SyncResult>,
}

/// The story of `key` in one sync, for any record kind: the same [`RecordKind`] functions the
/// compare keyed, named and matched records with.
pub(crate) fn sync_story<K: RecordKind>(key: &K::Key, view: &CompareView<K>) -> SyncStory
where
    K::Desired: Serialize,
    K::Update: Serialize,
{
    let key_text = key.to_string();
    let mine: Vec<&K::Zendesk> = view
        .input
        .owned
        .iter()
        .copied()
        .filter(|r| K::key(r).as_ref() == Some(key))
        .collect();
    let elsewhere: Vec<&ForeignRecord> = view
        .input
        .foreign
        .iter()
        .filter(|f| f.key.as_deref().and_then(K::parse_key).as_ref() == Some(key))
        .collect();
    let mut records: Vec<RecordMatch> = mine
        .iter()
        .map(|r| RecordMatch {
            id: K::id(r),
            name: K::name(r).to_owned(),
            role: RecordRole::Owned {
                marked: K::is_marked(r),
            },
        })
        .chain(elsewhere.iter().map(|f| RecordMatch {
            id: f.id,
            name: f.name.clone(),
            role: RecordRole::OwnedElsewhere,
        }))
        .collect();
    records.sort_by_key(|r| r.id);
    let ids: BTreeSet<u64> = records.iter().map(|r| r.id).collect();
    let name_taken_by = match view.desired {
        Some(desired) if K::UNIQUE_NAMES => same_name::<K>(
            K::desired_name(desired),
            &ids,
            &view.input.owned,
            &view.input.foreign,
        ),
        _ => Vec::new(),
    };
    let compare = decisions::<K>(key, &key_text, view, &mine);
    let sync_did = outcomes(&key_text, &compare, view.result.as_ref());
    SyncStory {
        sync: view.sync,
        key: key_text,
        desired: view
            .desired
            .map(|d| serde_json::to_value(d).expect("a desired object serialises")),
        held: view.held_why.clone(),
        protected: view.input.rules.protected.contains(key),
        records,
        name_taken_by,
        compare,
        sync_did,
    }
}

/// The records other than `ids` whose name Zendesk would consider the same as `name`.
fn same_name<K: RecordKind>(
    name: &str,
    ids: &BTreeSet<u64>,
    owned: &[&K::Zendesk],
    foreign: &[ForeignRecord],
) -> Vec<RecordMatch> {
    let wanted = name_key(name);
    let owned = owned
        .iter()
        .filter(|r| !ids.contains(&K::id(r)) && name_key(K::name(r)) == wanted)
        .map(|r| RecordMatch {
            id: K::id(r),
            name: K::name(r).to_owned(),
            role: match K::key(r) {
                Some(_) => RecordRole::Owned {
                    marked: K::is_marked(r),
                },
                None => RecordRole::Unmanaged,
            },
        });
    let foreign = foreign
        .iter()
        .filter(|f| !ids.contains(&f.id) && name_key(&f.name) == wanted)
        .map(|f| RecordMatch {
            id: f.id,
            name: f.name.clone(),
            role: match f.key.as_deref().and_then(K::parse_key) {
                Some(_) => RecordRole::OwnedElsewhere,
                None => RecordRole::Unmanaged,
            },
        });
    let mut all: Vec<RecordMatch> = owned.chain(foreign).collect();
    all.sort_by_key(|r| r.id);
    all
}

fn decisions<K: RecordKind>(
    key: &K::Key,
    key_text: &str,
    view: &CompareView<K>,
    mine: &[&K::Zendesk],
) -> Vec<Decision>
where
    K::Update: Serialize,
{
    let Some(sets) = &view.sets else {
        return vec![Decision::NotCompared];
    };
    let ids: BTreeSet<u64> = mine.iter().map(|r| K::id(r)).collect();
    let mut out = Vec::new();
    if sets.creates.items.iter().any(|d| K::desired_key(d) == key) {
        out.push(Decision::Create);
    }
    out.extend(
        sets.updates
            .items
            .iter()
            .filter(|u| ids.contains(&K::update_id(u)))
            .map(|u| Decision::Update {
                changes: serde_json::to_value(u).expect("an update serialises"),
            }),
    );
    if sets
        .marks
        .items
        .iter()
        .any(|m| ids.contains(&K::mark_id(m)))
    {
        out.push(Decision::Mark);
    }
    out.extend(
        sets.creates
            .held_back
            .iter()
            .chain(&sets.updates.held_back)
            .filter(|h| h.key == key_text)
            .map(|h| Decision::HeldBack { why: h.describe() }),
    );
    out.extend(
        sets.creates
            .conflicts
            .iter()
            .filter(|c| c.key == key_text)
            .map(|c| Decision::Conflict {
                why: format!(
                    "{}; none of them is written until a person merges or re-keys them",
                    c.describe()
                ),
            }),
    );
    if !out.is_empty() {
        return out;
    }
    let decision = if let Some(why) = view
        .held_why
        .clone()
        .filter(|_| view.input.rules.held.contains(key))
    {
        Decision::Left { why }
    } else {
        match (view.desired, mine) {
            (Some(_), [_]) => Decision::InSync,
            (Some(desired), []) if !K::creatable(desired) => Decision::NotCreated {
                why: "its support level is expired: no org is created for an expired account"
                    .into(),
            },
            (Some(_), _) => Decision::NotCreated {
                why: "compare neither created nor held it back in this run".into(),
            },
            (None, [record]) if view.input.rules.protected.contains(key) => Decision::Left {
                why: format!(
                    "nothing in Salesforce wants record {} any more, but its key is protected (protected_ids): never marked",
                    K::id(record)
                ),
            },
            (None, [record]) if K::is_marked(record) => Decision::Left {
                why: format!(
                    "record {} is marked already: not marked again",
                    K::id(record)
                ),
            },
            (None, []) => Decision::Nothing,
            (None, _) => Decision::NotCreated {
                why: "several records have this key".into(),
            },
        }
    };
    vec![decision]
}

pub(crate) fn outcomes(
    key: &str,
    decisions: &[Decision],
    result: Option<&SyncResult>,
) -> Vec<Outcome> {
    let writes = decisions.iter().any(Decision::writes);
    let Some(result) = result else {
        return if writes {
            vec![Outcome::NotWritten {
                why: "this run has no result of this sync: a dry run, or the run stopped before it"
                    .into(),
            }]
        } else {
            Vec::new()
        };
    };
    let mut out: Vec<Outcome> = Vec::new();
    out.extend(
        result
            .created
            .iter()
            .filter(|r| r.key == key)
            .map(|r| Outcome::Created {
                id: r.id,
                already: r.already,
            }),
    );
    out.extend(
        result
            .updated
            .iter()
            .filter(|r| r.key == key)
            .map(|r| Outcome::Updated { id: r.id }),
    );
    out.extend(
        result
            .marked
            .iter()
            .filter(|r| r.key == key)
            .map(|r| Outcome::Marked { id: r.id }),
    );
    out.extend(
        result
            .errors
            .iter()
            .filter(|e| e.key == key)
            .map(|e| Outcome::Error { what: e.describe() }),
    );
    let marked = out.iter().any(|o| matches!(o, Outcome::Marked { .. }));
    let tripped = result.deletion_guard.as_ref().filter(|d| d.is_tripped());
    if let Some(decision) = tripped.filter(|_| decisions.contains(&Decision::Mark) && !marked) {
        out.push(Outcome::HeldByGuard {
            decision: decision.describe(result.sync.map_or("records", SyncKind::records)),
        });
    }
    if writes
        && out.is_empty()
        && (!result.left_for_next_run.is_empty() || result.progress.is_some())
    {
        out.push(Outcome::LeftForNextRun);
    }
    out
}
