//! A Zendesk instance's organizations as its gathers see them (SPEC §12): the snapshot in the
//! state store brought up to date by the Incremental Organization Export, or a full listing when
//! the reconcile policy says so; and a sync's own writes folded into the snapshot, since the
//! export shows them only a minute later.
//!
//! Every gather of an instance's orgs goes through here — the org sync's, and the partner and
//! user syncs' that follow a sync — so the ones after a sync start from the snapshot the sync
//! folded its writes into, and only ask the feed for what others changed since.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::context::StageContext;
use super::io::zendesk_records;
use crate::error::StageError;
use crate::model::{GatherKind, GatherNote, Instance, ZendeskOrg};
use crate::rules::freshness::{FullReason, GatherMode, Reconcile, gather_mode};
use crate::snapshot::{self, OrgSnapshot, RecordJson, Snapshot, Source, Stored};

/// How far before a full listing's start its watermark is set: the next delta asks the feed
/// from there, so a change made while the listing paged (which the listing may or may not have
/// seen) is read again, and a Zendesk clock a little behind ours loses nothing. Reading a change
/// twice costs nothing: changes are applied by id.
const LISTING_OVERLAP_SECS: i64 = 300;

/// How a gather was asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatherRequest {
    /// The execution asked for a full read.
    pub full: bool,
    /// Read the snapshot, never write it.
    pub dry_run: bool,
}

/// Every organization of `instance` now, as a snapshot (saved unless a dry run), and what it
/// took.
pub(super) async fn current_orgs(
    ctx: &StageContext,
    instance: Instance,
    request: GatherRequest,
) -> Result<(OrgSnapshot, GatherNote), StageError> {
    let source = Source::ZendeskOrgs(instance);
    let stored: Stored<RecordJson> = snapshot::load(ctx.store.as_ref(), source).await?;
    if let Stored::Unreadable(why) = &stored {
        tracing::warn!(%instance, "the organization snapshot cannot be read ({why}); reading every organization");
    }
    let now = Utc::now();
    let policy = Reconcile {
        requested: request.full,
        every_hours: ctx.settings.sync.full_every_hours,
    };
    let mode = gather_mode(stored.found(), now, policy);
    let (snapshot, read, reason, changed) = match (mode, stored.into_snapshot()) {
        (GatherMode::Delta { since }, Some(mut snapshot)) => {
            let (read, different) = apply_changes(ctx, instance, &mut snapshot, since).await?;
            // A quiet delta leaves the stored snapshot as it is: writing it again would cost a
            // whole snapshot's bytes for nothing. (The feed's start is inclusive, so the last
            // change before the watermark is read again every time.)
            let changed = different > 0 || snapshot.watermark != since;
            (snapshot, read, None, changed)
        }
        (GatherMode::Full(reason), _) => {
            let snapshot = list_all(ctx, instance, source, now).await?;
            let read = snapshot.records.len();
            (snapshot, read, Some(reason), true)
        }
        (GatherMode::Delta { .. }, None) => unreachable!("a delta is only chosen from a snapshot"),
    };
    if changed && !request.dry_run {
        snapshot::save(ctx.store.as_ref(), source, &snapshot).await?;
    }
    let note = note(source, reason, read, &snapshot, request);
    tracing::info!(%instance, mode = ?note.mode, reason = ?note.reason, read, watermark = %note.watermark, "organizations gathered");
    Ok((snapshot, note))
}

/// What a gather of `source` did.
fn note(
    source: Source,
    reason: Option<FullReason>,
    read: usize,
    snapshot: &OrgSnapshot,
    request: GatherRequest,
) -> GatherNote {
    GatherNote {
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
    }
}

/// Every organization, listed page by page.
async fn list_all(
    ctx: &StageContext,
    instance: Instance,
    source: Source,
    started: DateTime<Utc>,
) -> Result<OrgSnapshot, StageError> {
    let mut records = BTreeMap::new();
    ctx.zendesk(instance)?
        .for_each_organization_page(|page| {
            for org in zendesk_records(instance, "an organization", page, ZendeskOrg::from_api)? {
                records.insert(org.id, as_json(&org)?);
            }
            Ok::<(), StageError>(())
        })
        .await?;
    Ok(Snapshot::new(
        source,
        started - Duration::seconds(LISTING_OVERLAP_SECS),
        started,
        records,
    ))
}

/// Applies what the export shows changed since `since` onto `snapshot`; answers how many
/// records it read, and how many of them were new or different.
async fn apply_changes(
    ctx: &StageContext,
    instance: Instance,
    snapshot: &mut OrgSnapshot,
    since: DateTime<Utc>,
) -> Result<(usize, usize), StageError> {
    let (mut read, mut different) = (0, 0);
    let reached = ctx
        .zendesk(instance)?
        .for_each_organization_change(since.timestamp(), |page| {
            let orgs = zendesk_records(instance, "an organization", page, ZendeskOrg::from_api)?;
            read += orgs.len();
            different += snapshot.apply(keyed(orgs)?);
            Ok::<(), StageError>(())
        })
        .await?;
    if let Some(reached) = DateTime::from_timestamp(reached, 0) {
        snapshot.watermark = snapshot.watermark.max(reached);
    }
    Ok((read, different))
}

/// Folds the records a sync wrote (`ids`) into the snapshot of `source`, as Zendesk holds
/// them now: the export would show them only a minute later, and the gathers after the sync,
/// and a run that starts right after this one, must neither redo nor miss them. The watermark
/// stays: the feed will show these records again, which changes nothing.
pub(super) async fn fold_writes(
    ctx: &StageContext,
    source: Source,
    ids: Vec<u64>,
) -> Result<(), StageError> {
    let Source::ZendeskOrgs(instance) = source;
    if ids.is_empty() {
        return Ok(());
    }
    let Some(mut snapshot) = snapshot::load::<RecordJson>(ctx.store.as_ref(), source)
        .await?
        .into_snapshot()
    else {
        // Nothing to fold into: the next gather reads every organization anyway.
        return Ok(());
    };
    let raw = ctx.zendesk(instance)?.show_organizations(&ids).await?;
    let orgs = zendesk_records(instance, "an organization", raw, ZendeskOrg::from_api)?;
    tracing::info!(%instance, written = ids.len(), read = orgs.len(), "the sync's writes folded into the organization snapshot");
    if snapshot.apply(keyed(orgs)?) > 0 {
        snapshot::save(ctx.store.as_ref(), source, &snapshot).await?;
    }
    Ok(())
}

/// Marks the snapshot of `source` as missing a sync's writes, so the next gather reads in full
/// rather than start from it. Best effort: when even that fails, the feed still shows the
/// writes to any gather a minute later.
pub(super) async fn distrust(ctx: &StageContext, source: Source) {
    let marked = async {
        if let Some(mut snapshot) = snapshot::load::<RecordJson>(ctx.store.as_ref(), source)
            .await?
            .into_snapshot()
        {
            snapshot.incomplete = true;
            snapshot::save(ctx.store.as_ref(), source, &snapshot).await?;
        }
        Ok::<(), StageError>(())
    };
    if let Err(e) = marked.await {
        tracing::warn!(source = %source.name(), "the snapshot could not be marked for a full read ({e})");
    }
}

/// An org as its snapshot keeps it.
fn as_json(org: &ZendeskOrg) -> Result<RecordJson, StageError> {
    RecordJson::of(org).map_err(|e| {
        StageError::InvalidConfig(format!(
            "organization {} cannot be encoded again: {e}",
            org.id
        ))
    })
}

/// Orgs by id, as their snapshot keeps them.
fn keyed(orgs: Vec<ZendeskOrg>) -> Result<Vec<(u64, RecordJson)>, StageError> {
    orgs.iter().map(|org| Ok((org.id, as_json(org)?))).collect()
}
