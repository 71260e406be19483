//! A source as its gathers see it (SPEC §12): the snapshot in the state store brought up to date
//! by the source's change feed, or a full read when the reconcile policy says so; and a sync's
//! own writes folded into the snapshot, since the feed shows them only a minute later.
//!
//! One mechanism for every snapshot source: a Zendesk instance's organizations (the
//! Incremental Organization Export, time-based) and the US Gov users (the Incremental User
//! Export, cursor-based). Every gather of a source goes through here — for organizations the
//! org sync's, and the partner and user syncs' that follow a sync — so the gathers after a sync
//! start from the snapshot the sync folded its writes into, and only ask the feed for what
//! others changed since.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use super::context::StageContext;
use super::io::zendesk_records;
use super::page_worker::{PageWorker, finished};
use crate::error::StageError;
use crate::model::{GatherKind, GatherNote, ZendeskOrg, ZendeskUser};
use crate::rules::freshness::{FullReason, GatherMode, Reconcile, gather_mode};
use crate::salesforce::SalesforceError;
use crate::snapshot::{self, RecordJson, Snapshot, Source, Stored};
use crate::zendesk::{ExportStart, ZendeskClient, ZendeskError};

/// How far before a full listing's start its watermark is set: the next delta asks the feed
/// from there, so a change made while the listing paged (which the listing may or may not have
/// seen) is read again, and a Zendesk clock a little behind ours loses nothing. Reading a change
/// twice costs nothing: changes are applied by id.
const LISTING_OVERLAP_SECS: i64 = 300;

/// Zendesk's exports leave out what changed in the minute before a request: an export that
/// reached its end is complete up to then.
const EXPORT_HOLDS_BACK_SECS: i64 = 60;

/// A snapshot's records: each as the gather's artifact has it (or, for Salesforce, as the query
/// returned it), by id.
pub(super) type Records<K = u64> = Snapshot<RecordJson, K>;

/// How a gather was asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatherRequest {
    /// The execution asked for a full read.
    pub full: bool,
    /// Read the snapshot, never write it.
    pub dry_run: bool,
    /// When the execution started, for a gather that is told (those after a sync).
    pub run_started: Option<DateTime<Utc>>,
}

/// A source a full read pages through, and its change feed: what differs between the sources is
/// only how they are read in full and how their changes are found.
pub(super) trait Feed {
    /// What records are known by: Zendesk's numeric ids, Salesforce's record ids.
    type Key: Ord + Clone + serde::Serialize + serde::de::DeserializeOwned;

    fn source(&self) -> Source;

    /// Which account (or org) the snapshot is a picture of.
    fn origin(&self) -> Result<String, StageError>;

    /// Every record, read page by page.
    async fn read_all(&self) -> Result<BTreeMap<Self::Key, RecordJson>, StageError>;

    /// Applies what changed since `since` (or since the snapshot's cursor) onto `snapshot`,
    /// moving its watermark (and cursor) as far as the changes read reach; answers how many
    /// records it read and how many of them were new, different or gone.
    async fn apply_changes(
        &self,
        snapshot: &mut Records<Self::Key>,
        since: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<(usize, usize), FeedError>;
}

/// Every record of the feed's source now, as a snapshot (saved unless a dry run or nothing
/// changed), and what it took.
pub(super) async fn current<F: Feed>(
    ctx: &StageContext,
    feed: &F,
    request: GatherRequest,
) -> Result<(Records<F::Key>, GatherNote), StageError> {
    let source = feed.source();
    let origin = feed.origin()?;
    // A full read asked for, which no full read earlier in this execution can stand in for,
    // needs nothing of the stored picture: it is not even read (a reconcile at 200 000
    // accounts would hold the old picture while its read begins).
    let stored: Stored<RecordJson, F::Key> = if request.full && request.run_started.is_none() {
        Stored::Missing
    } else {
        snapshot::load(ctx.store.as_ref(), source, &origin).await?
    };
    if let Stored::Unreadable(why) = &stored {
        tracing::warn!(source = %source.name(), "the snapshot cannot be read ({why}); reading in full");
    }
    let now = Utc::now();
    let policy = Reconcile {
        requested: request.full,
        run_started: request.run_started,
        every_hours: ctx.settings.sync.full_every_hours,
    };
    let mode = gather_mode(stored.found(), now, policy);
    // The stored picture is let go before any full read: the stage holds one picture, not two.
    let delta = match (mode, stored.into_snapshot()) {
        (GatherMode::Delta { since }, Some(snapshot)) => Some((since, snapshot)),
        _ => None,
    };
    let mut reason = match mode {
        GatherMode::Full(reason) => Some(reason),
        GatherMode::Delta { .. } => None,
    };
    let mut brought_up = None;
    if let Some((since, mut snapshot)) = delta {
        let before = (snapshot.watermark, snapshot.cursor.clone());
        match feed.apply_changes(&mut snapshot, since, now).await {
            Ok((read, different)) => {
                let moved = before != (snapshot.watermark, snapshot.cursor.clone());
                brought_up = Some((snapshot, read, different, moved));
            }
            Err(FeedError::Unavailable(e)) => {
                tracing::warn!(source = %source.name(), "the change feed is not available ({e}); reading in full");
                reason = Some(FullReason::FeedUnavailable);
            }
            Err(FeedError::ManyChanges(changed)) => {
                tracing::info!(source = %source.name(), changed, "so many records changed that the gather reads in full");
                reason = Some(FullReason::ManyChanges);
            }
            Err(FeedError::Failed(e)) => return Err(e),
        }
    }
    let (snapshot, read) = match brought_up {
        Some((mut snapshot, read, different, moved)) => {
            if !request.dry_run {
                if different > 0 {
                    snapshot::save(ctx.store.as_ref(), source, &mut snapshot).await?;
                } else if moved {
                    // Only the watermark moved (the feed showed again what the snapshot holds,
                    // e.g. the last run's own writes): a mark of a few hundred bytes, not the
                    // whole picture again. A quiet delta writes nothing at all.
                    snapshot::mark(ctx.store.as_ref(), source, &snapshot).await?;
                }
            }
            (snapshot, read)
        }
        None => {
            let records = feed.read_all().await?;
            let mut snapshot = Snapshot::new(
                source,
                origin.clone(),
                now - Duration::seconds(LISTING_OVERLAP_SECS),
                now,
                records,
            );
            if !request.dry_run {
                snapshot::save(ctx.store.as_ref(), source, &mut snapshot).await?;
            }
            let read = snapshot.records.len();
            (snapshot, read)
        }
    };
    let note = GatherNote {
        source: source.name(),
        mode: if reason.is_some() {
            GatherKind::Full
        } else {
            GatherKind::Delta
        },
        reason: reason.map(|r| r.to_string()),
        read,
        watermark: snapshot.watermark,
        dry_run: request.dry_run,
        calls: None,
    };
    tracing::info!(source = %note.source, mode = ?note.mode, reason = ?note.reason, read, watermark = %note.watermark, "gathered");
    Ok((snapshot, note))
}

/// A Zendesk instance's organizations or users: the Incremental Organization Export
/// (time-based) or the Incremental User Export (cursor-based).
pub(super) struct ZendeskFeed<'a> {
    pub ctx: &'a StageContext,
    pub source: Source,
}

impl Feed for ZendeskFeed<'_> {
    type Key = u64;

    fn source(&self) -> Source {
        self.source
    }

    fn origin(&self) -> Result<String, StageError> {
        Ok(client(self.ctx, self.source)?.origin())
    }

    async fn read_all(&self) -> Result<BTreeMap<u64, RecordJson>, StageError> {
        let source = self.source;
        let client = client(self.ctx, source)?;
        // Each page is mapped and encoded while the next is fetched.
        let worker = PageWorker::start(
            BTreeMap::new(),
            move |records: &mut BTreeMap<_, _>, page| {
                records.extend(keyed(source, page)?);
                Ok(())
            },
        );
        let hand_over = |page: Vec<Map<String, Value>>| worker.hand_over(page);
        let read = match source {
            // Every role, not `role=end-user`: agents' and admins' emails must be known so that
            // no contact is created over them.
            Source::ZendeskUsers(_) => client.for_each_user_page(hand_over).await,
            _ => client.for_each_organization_page(hand_over).await,
        };
        finished(worker, read).await
    }

    async fn apply_changes(
        &self,
        snapshot: &mut Records,
        since: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<(usize, usize), FeedError> {
        let source = self.source;
        let client = client(self.ctx, source)?;
        let user_start = match snapshot.cursor.clone() {
            Some(cursor) => ExportStart::Cursor(cursor),
            None => ExportStart::Time(since.timestamp()),
        };
        let mut watermark = snapshot.watermark;
        let mut cursor = snapshot.cursor.clone();
        let (mut read, mut different) = (0, 0);
        let mut apply = |page: Vec<Map<String, Value>>| {
            read += page.len();
            let (gone, present): (Vec<_>, Vec<_>) = page.into_iter().partition(is_deleted);
            different += gone
                .iter()
                .filter_map(|record| record.get("id").and_then(Value::as_u64))
                .filter(|id| snapshot.records.remove(id).is_some())
                .count();
            different += snapshot.apply(keyed(source, present)?);
            Ok::<(), FeedError>(())
        };
        match source {
            Source::ZendeskUsers(_) => {
                let reached = Some(client.for_each_user_change(user_start, &mut apply).await?);
                // The export reached its end: every change up to a minute before it is in. A
                // quiet export (the same cursor back) leaves the snapshot as it was, so that
                // nothing is written; the daily full read renews it anyway.
                if reached != cursor {
                    watermark = watermark.max(started - Duration::seconds(EXPORT_HOLDS_BACK_SECS));
                    cursor = reached;
                }
            }
            _ => {
                let reached = client
                    .for_each_organization_change(since.timestamp(), &mut apply)
                    .await?;
                if let Some(reached) = DateTime::from_timestamp(reached, 0) {
                    watermark = watermark.max(reached);
                }
            }
        }
        snapshot.watermark = watermark;
        snapshot.cursor = cursor;
        Ok((read, different))
    }
}

/// Folds the records a sync wrote (`ids`) into the snapshot of `source`, as Zendesk holds
/// them now: the export would show them only a minute later, and the gathers after the sync,
/// and a run that starts right after this one, must neither redo nor miss them. The watermark
/// stays: the feed will show these records again, which changes nothing. The stored snapshot
/// is changed in place (its other records stay text in its bytes).
pub(super) async fn fold_writes(
    ctx: &StageContext,
    source: Source,
    ids: Vec<u64>,
) -> Result<(), StageError> {
    if ids.is_empty() {
        return Ok(());
    }
    let client = client(ctx, source)?;
    let raw = show(client, source, &ids).await?;
    let read = raw.len();
    let changed = keyed(source, raw)?;
    let rewritten = snapshot::rewrite(
        ctx.store.as_ref(),
        source,
        &client.origin(),
        &changed,
        false,
    )
    .await?;
    tracing::info!(source = %source.name(), written = ids.len(), read, ?rewritten, "the sync's writes folded into the snapshot");
    Ok(())
}

/// Marks the snapshot of `source` as missing a sync's writes, so the next gather reads in full
/// rather than start from it. Best effort: when even that fails, the feed still shows the
/// writes to any gather a minute later.
pub(super) async fn distrust(ctx: &StageContext, source: Source) {
    let marked = async {
        let origin = client(ctx, source)?.origin();
        snapshot::rewrite(ctx.store.as_ref(), source, &origin, &[], true).await?;
        Ok::<(), StageError>(())
    };
    if let Err(e) = marked.await {
        tracing::warn!(source = %source.name(), "the snapshot could not be marked for a full read ({e})");
    }
}

fn client(ctx: &StageContext, source: Source) -> Result<&ZendeskClient, StageError> {
    let instance = source.instance().ok_or_else(|| {
        StageError::InvalidConfig(format!("{} is not a Zendesk source", source.name()))
    })?;
    ctx.zendesk(instance)
}

/// Why a delta could not be read.
pub(super) enum FeedError {
    /// The feed is not there for this API user (403, 404): a full read does without it.
    Unavailable(String),
    /// The feed named this many changed records: more than reading them by id is worth.
    ManyChanges(usize),
    Failed(StageError),
}

impl From<ZendeskError> for FeedError {
    fn from(e: ZendeskError) -> Self {
        match e {
            ZendeskError::Forbidden { .. } | ZendeskError::NotFound { .. } => {
                FeedError::Unavailable(e.to_string())
            }
            other => FeedError::Failed(other.into()),
        }
    }
}

impl From<SalesforceError> for FeedError {
    fn from(e: SalesforceError) -> Self {
        FeedError::Failed(e.into())
    }
}

impl From<StageError> for FeedError {
    fn from(e: StageError) -> Self {
        FeedError::Failed(e)
    }
}

/// A record a user export shows as deleted (Zendesk keeps deleted users in its exports, with
/// `active: false`; a list no longer shows them).
fn is_deleted(record: &Map<String, Value>) -> bool {
    record.get("active") == Some(&Value::Bool(false))
}

/// The records of `source` with these ids, as Zendesk holds them now.
async fn show(
    client: &ZendeskClient,
    source: Source,
    ids: &[u64],
) -> Result<Vec<Map<String, Value>>, StageError> {
    Ok(match source {
        Source::ZendeskUsers(_) => client.show_users(ids).await?,
        _ => client.show_organizations(ids).await?,
    })
}

/// Records of `source` by id, mapped as its gather maps them and kept as their JSON text.
fn keyed(
    source: Source,
    page: Vec<Map<String, Value>>,
) -> Result<Vec<(u64, RecordJson)>, StageError> {
    let instance = source.instance().unwrap_or(crate::model::Instance::Global);
    let encoded = |id: u64, record: Result<RecordJson, serde_json::Error>| {
        record.map(|json| (id, json)).map_err(|e| {
            StageError::InvalidConfig(format!(
                "Zendesk {instance}'s record {id} cannot be encoded again: {e}"
            ))
        })
    };
    match source {
        Source::ZendeskUsers(_) => {
            zendesk_records(instance, "a user", page, ZendeskUser::from_api)?
                .into_iter()
                .map(|user| encoded(user.id, RecordJson::of(&user)))
                .collect()
        }
        _ => zendesk_records(instance, "an organization", page, ZendeskOrg::from_api)?
            .into_iter()
            .map(|org| encoded(org.id, RecordJson::of(&org)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_the_api_user_may_not_read_is_read_around_and_other_failures_fail() {
        let forbidden = ZendeskError::Forbidden {
            message: "admins only".into(),
        };
        assert!(matches!(
            FeedError::from(forbidden),
            FeedError::Unavailable(_)
        ));
        let missing = ZendeskError::NotFound {
            message: "no such endpoint".into(),
        };
        assert!(matches!(
            FeedError::from(missing),
            FeedError::Unavailable(_)
        ));
        let down = ZendeskError::Transient {
            message: "503".into(),
        };
        assert!(matches!(FeedError::from(down), FeedError::Failed(_)));
    }
}
