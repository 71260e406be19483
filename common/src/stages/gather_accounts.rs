//! Gather accounts from Salesforce, page by page:
//! - customer accounts (SPEC §3, no `sync` in the input): the account query with both
//!   subscription relationships → `salesforce_accounts.json`;
//! - partner accounts (`{"sync": "partners"}`, SPEC §9): the partner query, the alliance account
//!   from `sync.alliance_partner_id` → `partner/salesforce_accounts.json`.

use serde_json::Value;

use super::artifacts;
use super::context::StageContext;
use super::input::{RunInput, StageOutput};
use super::io::write;
use super::salesforce_feeds::AccountFeed;
use super::snapshots;
use super::table::Stage;
use crate::error::StageError;
use crate::model::{RejectedRecord, SyncKind};
use crate::rules::RunDates;
use crate::rules::account_mapping::{collect_accounts, map_account};
use crate::rules::deletion_guard::too_many_rejected;
use crate::rules::partners::map_partners;
use crate::salesforce::soql::keep_rows_in_term;
use crate::snapshot::{RecordJson, Source};
use crate::store::StoreError;

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    match input.sync {
        None => customer_accounts(ctx, input).await,
        Some(SyncKind::Partners) => partner_accounts(ctx, input).await,
        Some(other) => Err(StageError::InvalidConfig(format!(
            "stage input: the gather-accounts stage gathers customer accounts (no \"sync\") or partner accounts (\"sync\": \"partners\"), not {other}"
        ))),
    }
}

async fn customer_accounts(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let dates = RunDates::new(input.as_of);
    let feed = AccountFeed::customers(ctx, dates.three_years_out);
    let (snapshot, note) = snapshots::current(ctx, &feed, input.gather_request()).await?;
    // One stored record parsed at a time, and let go once mapped: the records (with their
    // child rows) are larger than the accounts, and the stage holds one or the other, not both.
    let mut mapped = Vec::with_capacity(snapshot.records.len());
    for (id, record) in snapshot.records {
        let mut record: Value = parse_stored(Source::SalesforceAccounts, &id, &record)?;
        keep_rows_in_term(&mut record, dates.three_years_out);
        mapped.push(map_account(&record));
    }
    let records = mapped.len();
    nonempty(records, "account query")?;
    let gathered = collect_accounts(mapped, input.as_of);
    let key = write(ctx, &keys, artifacts::SALESFORCE_ACCOUNTS, &gathered).await?;
    check_rejected(ctx, &gathered.rejected, records, &key)?;
    Ok(StageOutput::new(Stage::GatherAccounts, None)
        .count("records", records)
        .count("accounts", gathered.accounts.len())
        .count("rejected", gathered.rejected.len())
        .with_gather(note)
        .with_artifact(key))
}

async fn partner_accounts(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let alliance = ctx.settings.sync.alliance_partner()?;
    let feed = AccountFeed::partners(ctx, &alliance);
    let (snapshot, note) = snapshots::current(ctx, &feed, input.gather_request()).await?;
    let records: Vec<Value> = snapshot
        .records
        .into_iter()
        .map(|(id, record)| parse_stored(Source::SalesforcePartners, &id, &record))
        .collect::<Result<_, _>>()?;
    nonempty(records.len(), "partner query")?;
    let gathered = map_partners(&records, &alliance);
    let key = write(ctx, &keys, artifacts::PARTNER_ACCOUNTS, &gathered).await?;
    check_rejected(ctx, &gathered.rejected, records.len(), &key)?;
    Ok(
        StageOutput::new(Stage::GatherAccounts, Some(SyncKind::Partners.instance()))
            .count("records", records.len())
            .count("partners", gathered.accounts.len())
            .count("rejected", gathered.rejected.len())
            .with_gather(note)
            .with_artifact(key),
    )
}

/// A record of a Salesforce snapshot, as the query returned it.
pub(super) fn parse_stored<T: serde::de::DeserializeOwned>(
    source: Source,
    id: &str,
    record: &RecordJson,
) -> Result<T, StageError> {
    record.parse().map_err(|e| {
        StageError::from(StoreError::InvalidArtifact {
            key: source.key(),
            path: format!("records.{id}"),
            message: e.to_string(),
        })
    })
}

/// Zero records means a broken query or permissions, never "every customer (or partner) left":
/// going on would mark every org for deletion.
fn nonempty(records: usize, query: &str) -> Result<(), StageError> {
    if records == 0 {
        return Err(StageError::EmptySource(format!(
            "the Salesforce {query} returned no records; nothing was written"
        )));
    }
    Ok(())
}

/// SPEC §10: more than `max_rejected_ratio` of the records fails the stage — after the artifact
/// is written, so an admin can read every reason.
pub(super) fn check_rejected(
    ctx: &StageContext,
    rejected: &[RejectedRecord],
    records: usize,
    key: &str,
) -> Result<(), StageError> {
    for record in rejected {
        tracing::warn!(salesforce_id = ?record.salesforce_id, reason = %record.reason, "record rejected");
    }
    let max_ratio = ctx.settings.sync.max_rejected_ratio;
    if too_many_rejected(rejected.len(), records, max_ratio) {
        return Err(StageError::TooManyRecordErrors {
            count: rejected.len(),
            max: (max_ratio * records as f64).floor() as usize,
            result_key: key.to_owned(),
        });
    }
    Ok(())
}
