//! Gather organizations (SPEC §4), for one sync:
//! - an org sync (`{"instance": …}`): every org of the instance, managed or not →
//!   `zendesk_{instance}.json`;
//! - the partner sync (`{"sync": "partners"}`), after the Global org sync: Global's partner orgs,
//!   the others only by id, name and Salesforce id → `partner/zendesk_orgs.json`;
//! - the user sync (`{"sync": "users"}`), after the US Gov org sync, so orgs created by it have
//!   their ids: every US Gov org → `users/zendesk_orgs.json`.
//!
//! All of them read the instance's organizations through its snapshot (`snapshots.rs`, SPEC
//! §12): only what changed since the last gather, or every org when the reconcile policy says
//! so. The artifact is the same either way.

use super::artifacts;
use super::context::StageContext;
use super::input::{RunInput, StageOutput};
use super::snapshots;
use super::table::Stage;
use crate::error::StageError;
use crate::model::{ForeignRecord, OrgFacts, SyncKind, ZendeskOrgsHead, ZendeskOrgsTail};
use crate::snapshot::Source;
use crate::store::{StoreError, StreamedArtifact, write_streamed};
use crate::syncs::{PartnerOrgs, SyncSpec};

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let sync = input.sync(Stage::GatherOrgs)?;
    let instance = sync.instance();
    let name = match sync {
        SyncKind::Global | SyncKind::Usgov => artifacts::zendesk_orgs(instance),
        SyncKind::Partners => artifacts::PARTNER_ORGS.to_owned(),
        SyncKind::Users => artifacts::USER_ORGS.to_owned(),
    };
    let key = keys.key(&name)?;
    let source = Source::ZendeskOrgs(instance);
    let feed = snapshots::ZendeskFeed { ctx, source };
    let (snapshot, note) = snapshots::current(ctx, &feed, input.gather_request()).await?;
    let mut others: Vec<ForeignRecord> = Vec::new();
    // Which stored orgs the artifact keeps whole, in the snapshot's order.
    let mut whole = Vec::with_capacity(snapshot.records.len());
    let (mut managed, mut partners) = (0, 0);
    let total = snapshot.records.len();
    for record in snapshot.records.values() {
        // One org parsed at a time, for what the artifact's counts and split need of it (its
        // key, partner type and name; the rest of its fields skipped unbuilt).
        let org: OrgFacts = record.parse().map_err(|e| {
            StageError::from(StoreError::InvalidArtifact {
                key: source.key(),
                path: "records".into(),
                message: e.to_string(),
            })
        })?;
        managed += usize::from(org.key.managed_id().is_some());
        partners += usize::from(org.key.partner);
        // The partner sync keeps its own orgs whole and the others only by id, name and key;
        // the org syncs and the user sync keep every org.
        let keep = sync != SyncKind::Partners || PartnerOrgs.owns(&org.key);
        if !keep {
            others.push(org.foreign());
        }
        whole.push(keep);
    }
    let records = snapshot.records;
    // Written from the stored text as it is encoded: the stage holds the snapshot's records
    // and the compressed artifact, never the artifact's bytes beside its records.
    write_streamed(ctx.store.as_ref(), &key, move |out| {
        let mut artifact =
            StreamedArtifact::begin_into(out, &ZendeskOrgsHead { instance }, "orgs")?;
        for (record, _) in records.values().zip(&whole).filter(|(_, keep)| **keep) {
            artifact.push_json(record.text())?;
        }
        artifact.finish(&ZendeskOrgsTail { others: &others })?;
        Ok(())
    })
    .await?;
    Ok(StageOutput::new(Stage::GatherOrgs, Some(instance))
        .count("orgs", total)
        .count("managed", managed)
        .count("unmanaged", total - managed)
        .count("partners", partners)
        .with_gather(note)
        .with_artifact(key))
}
