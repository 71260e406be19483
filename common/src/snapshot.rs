//! Snapshots (SPEC §12): the last complete picture of a source the sync pages through, kept in
//! the artifact store under `state/` (not under `runs/`: it outlives runs), with its watermark.
//!
//! A snapshot and its watermark are one object, written with one `put`: the store shows either
//! the old or the new one, never a new picture with an old watermark, whatever fails — a crash
//! mid-write included. A dry run reads snapshots and never writes them.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::Instance;
use crate::rules::freshness::{Found, SnapshotAge};
use crate::store::{
    ArtifactStore, StoreError, decode_json, read_artifact, read_json_opt, write_json_compressed,
};

/// The folder snapshots live in.
pub const STATE_PREFIX: &str = "state/";

/// The format of a snapshot; one of another version is read as no snapshot (a full gather
/// writes a new one).
const VERSION: u32 = 1;

/// Which source a snapshot is of (its key and the name it carries, so a file copied under the
/// wrong key is not taken for another source's picture).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Every organization of a Zendesk instance.
    ZendeskOrgs(Instance),
    /// Every user of a Zendesk instance (the US Gov user sync's).
    ZendeskUsers(Instance),
    /// The customer account query's records (with their subscription and charge rows).
    SalesforceAccounts,
    /// The partner query's records.
    SalesforcePartners,
    /// The contact query's records, by the account they belong to.
    SalesforceContacts,
}

impl Source {
    pub fn name(self) -> String {
        match self {
            Source::ZendeskOrgs(instance) => format!("zendesk_{instance}_orgs"),
            Source::ZendeskUsers(instance) => format!("zendesk_{instance}_users"),
            Source::SalesforceAccounts => "salesforce_accounts".to_owned(),
            Source::SalesforcePartners => "salesforce_partners".to_owned(),
            Source::SalesforceContacts => "salesforce_contacts".to_owned(),
        }
    }

    /// The Zendesk instance a Zendesk source is read from (`None` for Salesforce's).
    pub fn instance(self) -> Option<Instance> {
        match self {
            Source::ZendeskOrgs(instance) | Source::ZendeskUsers(instance) => Some(instance),
            Source::SalesforceAccounts
            | Source::SalesforcePartners
            | Source::SalesforceContacts => None,
        }
    }

    /// Where the snapshot is: gzip-compressed JSON (the Global organizations of 200 000
    /// accounts are over 250 MB of JSON, about a tenth of that compressed).
    pub fn key(self) -> String {
        format!("{STATE_PREFIX}{}.json.gz", self.name())
    }

    /// Where a [`Mark`] moving the snapshot's watermark is kept.
    pub fn mark_key(self) -> String {
        format!("{STATE_PREFIX}{}.mark.json", self.name())
    }
}

/// A watermark moved without a change to the records: a delta that found nothing new (the
/// feed showed again what the snapshot holds) but read the feed further. Writing it costs a
/// few hundred bytes where saving the snapshot again would cost the whole picture's. It names
/// the snapshot revision it extends, so it is never applied to another picture: a snapshot and
/// the watermark it is read with still change together or not at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub source: String,
    pub origin: String,
    /// The [`Snapshot::revision`] whose records are complete up to `watermark`.
    pub revision: String,
    pub watermark: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// The last complete picture of a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot<T, K: Ord = u64> {
    pub version: u32,
    pub source: String,
    /// Where the source is (a Zendesk's `https://acme.zendesk.com`): a store that later serves
    /// another Zendesk must not start from this picture.
    #[serde(default)]
    pub origin: String,
    /// How far the changes it includes reach: the next delta asks the feed from here.
    pub watermark: DateTime<Utc>,
    /// A cursor-based feed's place (the user export's `after_cursor`): the next delta goes on
    /// from it rather than from the watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// When the full read it descends from started (the daily reconcile counts from it).
    pub full_at: DateTime<Utc>,
    /// Its records, by id.
    pub records: BTreeMap<K, T>,
    /// A sync wrote records it could not read back into it: the next gather reads in full.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    /// Which save of the snapshot this is (a new one each time it is saved whole); a [`Mark`]
    /// names it.
    #[serde(default)]
    pub revision: String,
}

impl<T, K: Ord> Snapshot<T, K> {
    pub fn new(
        source: Source,
        origin: String,
        watermark: DateTime<Utc>,
        full_at: DateTime<Utc>,
        records: BTreeMap<K, T>,
    ) -> Self {
        Snapshot {
            version: VERSION,
            source: source.name(),
            origin,
            watermark,
            cursor: None,
            full_at,
            records,
            incomplete: false,
            revision: String::new(),
        }
    }

    /// The same snapshot with each record made into another form.
    pub fn map_records<U>(self, to: impl Fn(T) -> U) -> Snapshot<U, K> {
        Snapshot {
            version: self.version,
            source: self.source,
            origin: self.origin,
            watermark: self.watermark,
            cursor: self.cursor,
            full_at: self.full_at,
            records: self
                .records
                .into_iter()
                .map(|(id, r)| (id, to(r)))
                .collect(),
            incomplete: self.incomplete,
            revision: self.revision,
        }
    }

    pub fn age(&self) -> SnapshotAge {
        SnapshotAge {
            watermark: self.watermark,
            full_at: self.full_at,
        }
    }

    /// Replaces or adds records by id (a feed may repeat a record: the later answer wins);
    /// answers how many were new or different.
    pub fn apply(&mut self, changed: impl IntoIterator<Item = (K, T)>) -> usize
    where
        T: PartialEq,
    {
        let mut different = 0;
        for (id, record) in changed {
            if self.records.get(&id) != Some(&record) {
                self.records.insert(id, record);
                different += 1;
            }
        }
        different
    }
}

/// A snapshot as the store holds it.
#[derive(Debug)]
pub enum Stored<T, K: Ord = u64> {
    Found(Snapshot<T, K>),
    Missing,
    /// There is an object, but not a readable snapshot of this source: why.
    Unreadable(String),
}

impl<T, K: Ord> Stored<T, K> {
    /// What the reconcile policy needs to know about it.
    pub fn found(&self) -> Found {
        match self {
            Stored::Found(snapshot) if snapshot.incomplete => Found::Incomplete,
            Stored::Found(snapshot) => Found::Snapshot(snapshot.age()),
            Stored::Missing => Found::Nothing,
            Stored::Unreadable(_) => Found::Unreadable,
        }
    }

    pub fn into_snapshot(self) -> Option<Snapshot<T, K>> {
        match self {
            Stored::Found(snapshot) => Some(snapshot),
            Stored::Missing | Stored::Unreadable(_) => None,
        }
    }
}

/// Reads the snapshot of `source` at `origin`. A corrupt one, one of another format, of another
/// source or of another origin is `Unreadable` (a full gather replaces it), not an error: the
/// sources are still there to read. A store that cannot be reached is an error.
///
/// The records stay text in the one buffer the stored object is inflated into (each record a
/// view of it, [`RecordJson`]): a 263 MB picture takes 263 MB, not that and a copy of every
/// record besides.
pub async fn load<K: Ord + serde::de::DeserializeOwned>(
    store: &dyn ArtifactStore,
    source: Source,
    origin: &str,
) -> Result<Stored<RecordJson, K>, StoreError> {
    let key = source.key();
    let bytes = match read_artifact(store, &key).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(Stored::Missing),
        Err(e @ StoreError::InvalidArtifact { .. }) => {
            return Ok(Stored::Unreadable(e.to_string()));
        }
        Err(e) => return Err(e),
    };
    let snapshot: Snapshot<&RawValue, K> = match decode_json(&key, &bytes) {
        Ok(snapshot) => snapshot,
        Err(e) => return Ok(Stored::Unreadable(e.to_string())),
    };
    if snapshot.version != VERSION {
        return Ok(Stored::Unreadable(format!(
            "{key} is of format {}, this version reads {VERSION}",
            snapshot.version
        )));
    }
    if snapshot.source != source.name() {
        return Ok(Stored::Unreadable(format!(
            "{key} holds a snapshot of {}",
            snapshot.source
        )));
    }
    if snapshot.origin != origin {
        return Ok(Stored::Unreadable(format!(
            "{key} is a picture of {}, not of {origin}",
            snapshot.origin
        )));
    }
    let mut snapshot = snapshot.map_records(|text| RecordJson::within(&bytes, text));
    // A mark of another revision, source or origin, or one that cannot be read, is left alone:
    // the snapshot's own watermark is true, only older.
    if let Ok(Some(mark)) = read_json_opt::<Mark>(store, &source.mark_key()).await
        && mark.source == snapshot.source
        && mark.origin == snapshot.origin
        && !snapshot.revision.is_empty()
        && mark.revision == snapshot.revision
        && mark.watermark >= snapshot.watermark
    {
        snapshot.watermark = mark.watermark;
        snapshot.cursor = mark.cursor.or(snapshot.cursor);
    }
    Ok(Stored::Found(snapshot))
}

/// Records that the records of `snapshot` (as saved, unchanged) are complete up to its
/// watermark and cursor now.
pub async fn mark<T, K: Ord>(
    store: &dyn ArtifactStore,
    source: Source,
    snapshot: &Snapshot<T, K>,
) -> Result<(), StoreError> {
    let mark = Mark {
        source: snapshot.source.clone(),
        origin: snapshot.origin.clone(),
        revision: snapshot.revision.clone(),
        watermark: snapshot.watermark,
        cursor: snapshot.cursor.clone(),
    };
    crate::store::write_json(store, &source.mark_key(), &mark).await
}

/// Writes a snapshot, picture and watermark in one object.
pub async fn save<K: Ord + Serialize>(
    store: &dyn ArtifactStore,
    source: Source,
    snapshot: &mut Snapshot<RecordJson, K>,
) -> Result<(), StoreError> {
    snapshot.revision = new_revision();
    // Compressed as it is encoded: the stage holds the records and a tenth of their bytes
    // again, not a second copy of them.
    let bytes = snapshot.text_bytes();
    write_json_compressed(store, &source.key(), snapshot, bytes).await
}

impl<K: Ord> Snapshot<RecordJson, K> {
    /// About how many bytes it takes as JSON: its records' text and their keys.
    pub fn text_bytes(&self) -> usize {
        self.records
            .values()
            .map(|record| record.text().len() + 24)
            .sum()
    }
}

/// A revision name no earlier save has: the save's time to the nanosecond and the process.
fn new_revision() -> String {
    format!(
        "{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.9fZ"),
        std::process::id()
    )
}

/// What [`rewrite`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewritten {
    /// Written again, with this many records new or different (0: only marked).
    Changed(usize),
    /// Nothing differed: not written.
    Unchanged,
    /// No readable snapshot of this source and origin: nothing to change.
    NoSnapshot,
}

/// Replaces records of the stored snapshot of `source` at `origin` by `changed` (by id) and,
/// with `incomplete`, marks it for a full read; writes it again only when that changes it. The
/// watermark stays.
pub async fn rewrite(
    store: &dyn ArtifactStore,
    source: Source,
    origin: &str,
    changed: &[(u64, RecordJson)],
    incomplete: bool,
) -> Result<Rewritten, StoreError> {
    let key = source.key();
    let bytes = match read_artifact(store, &key).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) | Err(StoreError::InvalidArtifact { .. }) => return Ok(Rewritten::NoSnapshot),
        Err(e) => return Err(e),
    };
    // The records stay text inside the stored bytes (a sync folding 40 writes into 200 000
    // orgs holds the bytes once, not a copy of every record besides).
    let Ok(mut snapshot) = serde_json::from_slice::<Snapshot<&RawValue>>(&bytes) else {
        return Ok(Rewritten::NoSnapshot);
    };
    if snapshot.version != VERSION || snapshot.source != source.name() || snapshot.origin != origin
    {
        return Ok(Rewritten::NoSnapshot);
    }
    let mut different = 0;
    for (id, record) in changed {
        let text = record.raw();
        if snapshot.records.get(id).map(|r| r.get()) != Some(text.get()) {
            snapshot.records.insert(*id, text);
            different += 1;
        }
    }
    if different == 0 && (!incomplete || snapshot.incomplete) {
        return Ok(Rewritten::Unchanged);
    }
    snapshot.incomplete |= incomplete;
    write_json_compressed(store, &key, &snapshot, bytes.len()).await?;
    Ok(Rewritten::Changed(different))
}

/// One record of a snapshot as JSON text, as the gather's artifact has it: a snapshot of
/// 200 000 organizations held as text takes a fraction of the memory of parsed records, and
/// the artifact is written from it without encoding each record again. A record read from the
/// store is a view of the buffer the stored snapshot was inflated into ([`load`]); one read
/// from a source owns its text.
#[derive(Debug, Clone)]
pub struct RecordJson(Bytes);

impl RecordJson {
    pub fn of(record: &impl Serialize) -> Result<RecordJson, serde_json::Error> {
        // Shrunk to its length where the allocator gives the rest back (serde grows the buffer
        // by doubling; mimalloc keeps a block that is at least half used as it is).
        serde_json::to_vec(record).map(|json| RecordJson(Bytes::from(json.into_boxed_slice())))
    }

    /// The record whose text `text` is, within `bytes` (which it was parsed from).
    fn within(bytes: &Bytes, text: &RawValue) -> RecordJson {
        RecordJson(bytes.slice_ref(text.get().as_bytes()))
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }

    /// The record's JSON text.
    pub fn text(&self) -> &str {
        // Made only from serde_json's output or a `RawValue` of it: always UTF-8.
        std::str::from_utf8(&self.0).expect("a record's JSON text is UTF-8")
    }

    /// The record's text as a JSON value written as it is.
    fn raw(&self) -> &RawValue {
        // Made only from a complete JSON value: it reads back as one.
        serde_json::from_str(self.text()).expect("a record's JSON text is one JSON value")
    }
}

impl Serialize for RecordJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RecordJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(RecordJson(Bytes::from(
            Box::<str>::from(raw).into_boxed_bytes(),
        )))
    }
}

impl PartialEq for RecordJson {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

/// The organizations of a Zendesk instance, as its gathers map them ([`crate::model::ZendeskOrg`]).
pub type OrgSnapshot = Snapshot<RecordJson>;

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::model::ZendeskOrg;
    use crate::store::DirStore;

    const ORIGIN: &str = "https://acme.zendesk.com";

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// The snapshot of `source` at [`ORIGIN`], which must be there.
    async fn stored_snapshot<K: Ord + serde::de::DeserializeOwned>(
        store: &DirStore,
        source: Source,
    ) -> Snapshot<RecordJson, K> {
        load::<K>(store, source, ORIGIN)
            .await
            .unwrap()
            .into_snapshot()
            .unwrap()
    }

    fn gz(json: &[u8]) -> Bytes {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(json).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    /// A picture of Global's organizations at [`ORIGIN`], read in full at 00:05, complete up to
    /// 10:00.
    fn global_picture(records: BTreeMap<u64, RecordJson>) -> Snapshot<RecordJson> {
        Snapshot::new(
            Source::ZendeskOrgs(Instance::Global),
            ORIGIN.into(),
            at("2026-12-06T10:00:00Z"),
            at("2026-12-06T00:05:00Z"),
            records,
        )
    }

    fn org(id: u64, name: &str) -> RecordJson {
        let org = ZendeskOrg::from_api(
            serde_json::json!({"id": id, "name": name})
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap();
        RecordJson::of(&org).unwrap()
    }

    #[tokio::test]
    async fn a_snapshot_reads_back_as_written_and_others_are_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let global = Source::ZendeskOrgs(Instance::Global);
        assert!(matches!(
            load::<u64>(&store, global, ORIGIN).await.unwrap(),
            Stored::Missing
        ));
        let mut snapshot = global_picture(BTreeMap::from([(1, org(1, "A")), (2, org(2, "B"))]));
        let changed =
            snapshot.apply([(1, org(1, "A")), (2, org(2, "B renamed")), (3, org(3, "C"))]);
        assert_eq!(changed, 2, "the same record again is no change");
        save(&store, global, &mut snapshot).await.unwrap();
        let back = stored_snapshot::<u64>(&store, global).await;
        assert_eq!(back, snapshot);
        assert_eq!(
            back.records[&2].parse::<ZendeskOrg>().unwrap().name,
            "B renamed"
        );
        let stored = std::fs::read(dir.path().join(global.key())).unwrap();
        assert_eq!(global.key(), "state/zendesk_global_orgs.json.gz");
        assert_eq!(
            crate::store::blob::decompress(&stored).unwrap(),
            serde_json::to_vec(&snapshot).unwrap(),
            "stored as gzip-compressed JSON"
        );

        // The US Gov key holding Global's picture, a corrupt file, another format.
        let usgov = Source::ZendeskOrgs(Instance::Usgov);
        let body = serde_json::to_vec(&snapshot).unwrap();
        store.put(&usgov.key(), gz(&body)).await.unwrap();
        let Stored::Unreadable(why) = load::<u64>(&store, usgov, ORIGIN).await.unwrap() else {
            panic!("another source's snapshot was taken");
        };
        assert!(why.contains("zendesk_global_orgs"), "{why}");
        for corrupt in [gz(b"{\"version\": 1, \"sour"), Bytes::from(body.clone())] {
            store.put(&usgov.key(), corrupt).await.unwrap();
            assert!(matches!(
                load::<u64>(&store, usgov, ORIGIN).await.unwrap(),
                Stored::Unreadable(_)
            ));
        }
        let mut other = serde_json::to_value(Snapshot::new(
            usgov,
            ORIGIN.into(),
            snapshot.watermark,
            snapshot.full_at,
            snapshot.records.clone(),
        ))
        .unwrap();
        other["version"] = 99.into();
        store
            .put(&usgov.key(), gz(other.to_string().as_bytes()))
            .await
            .unwrap();
        let Stored::Unreadable(why) = load::<u64>(&store, usgov, ORIGIN).await.unwrap() else {
            panic!("a snapshot of another format was taken");
        };
        assert!(why.contains("format 99"), "{why}");

        // Global's picture read for another Zendesk.
        let Stored::Unreadable(why) = load::<u64>(&store, global, "https://other.zendesk.com")
            .await
            .unwrap()
        else {
            panic!("another Zendesk's snapshot was taken");
        };
        assert!(why.contains("https://acme.zendesk.com"), "{why}");
    }

    /// A loaded picture's records are views of the buffer it was inflated into, each where
    /// the stored JSON has it (between them only the next record's key), not copies of it.
    #[tokio::test]
    async fn a_loaded_snapshots_records_are_views_of_the_one_buffer_it_was_read_into() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let global = Source::ZendeskOrgs(Instance::Global);
        let mut snapshot = global_picture(BTreeMap::from([
            (1, org(1, "A")),
            (2, org(2, "B")),
            (30, org(30, "C")),
        ]));
        save(&store, global, &mut snapshot).await.unwrap();
        let loaded = stored_snapshot::<u64>(&store, global).await;
        assert_eq!(loaded.records, snapshot.records);
        let texts: Vec<(u64, &str)> = loaded
            .records
            .iter()
            .map(|(id, r)| (*id, r.text()))
            .collect();
        for pair in texts.windows(2) {
            let ((_, before), (id, after)) = (pair[0], pair[1]);
            let end = before.as_ptr() as usize + before.len();
            let between = format!(",\"{id}\":");
            assert_eq!(
                after.as_ptr() as usize - end,
                between.len(),
                "before record {id}"
            );
        }
    }

    #[tokio::test]
    async fn a_rewrite_changes_only_the_records_given_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let global = Source::ZendeskOrgs(Instance::Global);
        assert_eq!(
            rewrite(&store, global, ORIGIN, &[(1, org(1, "A"))], false)
                .await
                .unwrap(),
            Rewritten::NoSnapshot
        );
        let mut snapshot = global_picture(BTreeMap::from([(1, org(1, "A")), (2, org(2, "B"))]));
        save(&store, global, &mut snapshot).await.unwrap();
        let changed = [(1, org(1, "A")), (2, org(2, "B2")), (3, org(3, "C"))];
        assert_eq!(
            rewrite(&store, global, ORIGIN, &changed, false)
                .await
                .unwrap(),
            Rewritten::Changed(2)
        );
        let back = stored_snapshot::<u64>(&store, global).await;
        assert_eq!(back.watermark, snapshot.watermark);
        let names: Vec<String> = back
            .records
            .values()
            .map(|r| r.parse::<ZendeskOrg>().unwrap().name)
            .collect();
        assert_eq!(names, ["A", "B2", "C"]);
        assert_eq!(
            rewrite(&store, global, ORIGIN, &changed, false)
                .await
                .unwrap(),
            Rewritten::Unchanged
        );
        assert_eq!(
            rewrite(&store, global, "https://other.zendesk.com", &changed, true)
                .await
                .unwrap(),
            Rewritten::NoSnapshot
        );
        // Marked for a full read: the next gather does not start from it.
        assert_eq!(
            rewrite(&store, global, ORIGIN, &[], true).await.unwrap(),
            Rewritten::Changed(0)
        );
        let stored = load::<u64>(&store, global, ORIGIN).await.unwrap();
        assert_eq!(stored.found(), Found::Incomplete);
    }

    /// What a process killed while writing a snapshot leaves: the old snapshot, and beside it
    /// the temporary file the write had begun (the store renames a temporary file over the key
    /// only once it is complete). The next gather reads the old snapshot, whole, and a write
    /// after it replaces it.
    #[tokio::test]
    async fn a_crash_while_a_snapshot_is_written_leaves_the_old_one_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let accounts = Source::SalesforceAccounts;
        let record = |name: &str| RecordJson::of(&serde_json::json!({"Name": name})).unwrap();
        let mut old = Snapshot::new(
            accounts,
            ORIGIN.into(),
            at("2026-12-06T10:00:00Z"),
            at("2026-12-06T00:05:00Z"),
            BTreeMap::from([("0014M00001sDiGEQA0".to_owned(), record("Old"))]),
        );
        save(&store, accounts, &mut old).await.unwrap();
        let mut new = old.clone();
        new.apply([("0014M00001sDiGEQA0".to_owned(), record("New"))]);
        new.watermark = at("2026-12-06T11:00:00Z");
        let body = serde_json::to_vec(&new).unwrap();
        std::fs::write(
            dir.path().join("state/.tmp-killed.part"),
            &body[..body.len() / 2],
        )
        .unwrap();

        let stored = stored_snapshot::<String>(&store, accounts).await;
        assert_eq!(stored, old, "the old picture with the old watermark");
        save(&store, accounts, &mut new).await.unwrap();
        let stored = stored_snapshot::<String>(&store, accounts).await;
        assert_eq!(stored, new);
    }

    /// A delta that only moved the watermark writes a mark, which the next load applies to the
    /// revision it names and to no other.
    #[tokio::test]
    async fn a_mark_moves_the_watermark_of_its_revision_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let global = Source::ZendeskOrgs(Instance::Global);
        let mut snapshot = global_picture(BTreeMap::from([(1, org(1, "A"))]));
        save(&store, global, &mut snapshot).await.unwrap();
        let saved = snapshot.clone();
        snapshot.watermark = at("2026-12-06T11:00:00Z");
        mark(&store, global, &snapshot).await.unwrap();
        let loaded = stored_snapshot::<u64>(&store, global).await;
        assert_eq!(loaded.watermark, at("2026-12-06T11:00:00Z"));
        assert_eq!(loaded.records, saved.records);
        assert!(
            std::fs::metadata(dir.path().join(global.mark_key()))
                .unwrap()
                .len()
                < 1_000,
            "a mark is small"
        );
        // A new picture (another revision) is read with its own watermark.
        let mut replaced = saved.clone();
        replaced.watermark = at("2026-12-06T10:30:00Z");
        save(&store, global, &mut replaced).await.unwrap();
        let loaded = stored_snapshot::<u64>(&store, global).await;
        assert_eq!(loaded.watermark, at("2026-12-06T10:30:00Z"));
    }
}
