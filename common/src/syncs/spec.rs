//! The description a sync is: [`SyncSpec`], and what the drivers derive from it the same way
//! for every sync — its compare input ([`CompareInput`]) and the records it may write
//! ([`Managed`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use super::records::{AsForeign, Gathered, GatheredRecord, RecordWrites};
use crate::config::SyncSettings;
use crate::model::{Diff, ForeignRecord, Instance, SyncKind};
use crate::rules::compare::{CompareRules, RecordKind, compare};

/// The key of a spec's records (a Salesforce id, an email).
pub type KeyOf<S> = <<S as SyncSpec>::Kind as RecordKind>::Key;
/// A spec's desired object as compare reads it.
pub type DesiredOf<S> = <<S as SyncSpec>::Kind as RecordKind>::Desired;
/// A spec's create, update and mark as the sync stage reads and sends them.
pub type CreateOf<S> = <<S as SyncSpec>::Kind as RecordWrites>::Create;
pub type UpdateOf<S> = <<S as SyncSpec>::Kind as RecordKind>::Update;
pub type MarkOf<S> = <<S as SyncSpec>::Kind as RecordKind>::Mark;

/// Everything that makes one sync what it is. Implementations are small values (the org sync
/// carries its instance); the drivers are generic over them.
pub trait SyncSpec: Copy + Send + Sync + 'static {
    /// The records it compares and writes.
    type Kind: RecordWrites;
    /// Its desired side, as the run's artifact has it.
    type Desired: DeserializeOwned + Send + Sync;
    /// Its Zendesk side, as its gather wrote it: whole (compare, explain) …
    type Records: Gathered<Record = <Self::Kind as RecordKind>::Zendesk>
        + DeserializeOwned
        + Send
        + Sync;
    /// … and the same artifact as ids and keys only (the sync stage checks its targets against
    /// them without building every record).
    type RecordKeys: Gathered<Record: GatheredRecord<Key = KeyOf<Self>>>
        + DeserializeOwned
        + Send
        + Sync;

    /// Which sync this is: its name in inputs, artifacts, allowances and results.
    fn sync(self) -> SyncKind;

    // ----- artifacts

    /// The artifact of its desired side.
    fn desired_artifact(self) -> String;
    /// The artifact of its gathered Zendesk records.
    fn records_artifact(self) -> String;
    /// Where its own artifacts (change sets, result, place) are named: `global_` +
    /// `creates.json`, `partner/` + `creates.json`.
    fn outputs(self) -> &'static str;
    /// The gathered artifacts its plan rests on; the plan is as old as the oldest.
    fn plan_sources(self) -> Vec<String>;

    // ----- compare

    /// The instance its desired artifact says it is for, when it says one (checked against the
    /// sync's).
    fn desired_instance(desired: &Self::Desired) -> Option<Instance> {
        let _ = desired;
        None
    }
    /// Its desired objects.
    fn desired(self, desired: &Self::Desired) -> Cow<'_, [DesiredOf<Self>]>;
    /// Its compare rules: the keys never marked and the keys left as they are.
    fn rules(self, desired: &Self::Desired, settings: &SyncSettings) -> CompareRules<KeyOf<Self>>;
    /// What the compare stage reports of the desired side beside the change sets.
    fn desired_counts(self, desired: &Self::Desired) -> Vec<(&'static str, usize)> {
        let _ = desired;
        Vec::new()
    }

    // ----- ownership

    /// Whether the sync owns a gathered record of its instance, i.e. may update or mark it.
    fn owns<R: GatheredRecord>(self, record: &R) -> bool;

    // ----- writes

    /// The fields of [`RecordWrites::FIELDS`] it writes; no other key ever leaves it.
    fn owned_fields(self) -> Vec<&'static str>;
    /// Whether a window of creates is followed by attaching the new records' sold-to
    /// contacts (SPEC §8, Global orgs).
    fn attaches_sold_tos(self) -> bool {
        false
    }
    /// Whether it sends the run's one Slack digest of new orgs left without contacts.
    fn sends_digest(self) -> bool {
        false
    }

    // ----- provided: the same derivations for every sync

    /// The instance it writes to.
    fn instance(self) -> Instance {
        self.sync().instance()
    }

    /// Its compare input: the desired objects, the gathered records it owns, every other record
    /// of the instance as a foreign one (whose names and keys a create must not take), and its
    /// rules.
    fn compare_input<'a>(
        self,
        desired: &'a Self::Desired,
        records: &'a Self::Records,
        settings: &SyncSettings,
    ) -> CompareInput<'a, Self::Kind> {
        let (owned, foreign) = self.split(records.records(), records.others());
        CompareInput {
            desired: self.desired(desired),
            owned,
            foreign,
            rules: self.rules(desired, settings),
            counts: self.desired_counts(desired),
        }
    }

    /// The gathered records it owns, and every other record of the instance as a foreign one.
    fn split<'a, R: GatheredRecord + AsForeign>(
        self,
        records: &'a [R],
        others: &[ForeignRecord],
    ) -> (Vec<&'a R>, Vec<ForeignRecord>) {
        let (owned, not_owned): (Vec<&R>, Vec<&R>) = records.iter().partition(|r| self.owns(*r));
        let foreign = not_owned
            .into_iter()
            .map(AsForeign::foreign)
            .chain(others.iter().cloned())
            .collect();
        (owned, foreign)
    }

    /// The records it may write (id → key), and every key in use on the instance: the sync
    /// stage's check that an update or mark names its own record and a create duplicates none.
    fn managed(self, gathered: &Self::RecordKeys) -> Managed {
        let records = gathered.records();
        Managed {
            owned: records
                .iter()
                .filter(|r| self.owns(*r))
                .filter_map(|r| Some((r.id(), r.key()?.to_string())))
                .collect(),
            keys: records
                .iter()
                .filter_map(|r| r.key())
                .chain(
                    gathered
                        .others()
                        .iter()
                        .filter_map(|o| o.key.as_deref().and_then(Self::Kind::parse_key)),
                )
                .map(|key| key.to_string())
                .collect(),
        }
    }
}

/// What one sync's compare works on.
pub struct CompareInput<'a, K: RecordKind> {
    pub desired: Cow<'a, [K::Desired]>,
    /// The gathered records the sync owns and may update or mark.
    pub owned: Vec<&'a K::Zendesk>,
    /// The instance's other records, which it never writes.
    pub foreign: Vec<ForeignRecord>,
    pub rules: CompareRules<K::Key>,
    /// Counts of the desired side for the stage's output (ambiguous emails).
    pub counts: Vec<(&'static str, usize)>,
}

impl<K: RecordKind> CompareInput<'_, K> {
    /// The one compare (SPEC §7) of this input.
    pub fn diff(&self) -> Diff<K::Desired, K::Update, K::Mark> {
        compare::<K>(
            &self.desired,
            self.owned.iter().copied(),
            &self.foreign,
            &self.rules,
        )
    }
}

/// The records a sync may write, from its gathered artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Managed {
    /// Zendesk id → key of every record the sync owns and may update or mark.
    pub owned: BTreeMap<u64, String>,
    /// Every key in use on the instance (owned or not): a create of one would duplicate it.
    pub keys: BTreeSet<String>,
}
