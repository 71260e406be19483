//! Gather accounts from Salesforce, page by page:
//! - customer accounts (SPEC §3, no `sync` in the input): the account query with both
//!   subscription relationships → `salesforce_accounts.json`;
//! - partner accounts (`{"sync": "partners"}`, SPEC §9): the partner query, the alliance account
//!   from `sync.alliance_partner_id` → `partner/salesforce_accounts.json`.

use std::ops::Range;

use chrono::NaiveDate;
use serde_json::Value;

use super::artifacts;
use super::context::StageContext;
use super::input::{RunInput, StageOutput};
use super::io::write;
use super::salesforce_feeds::AccountFeed;
use super::snapshots;
use super::table::Stage;
use crate::error::StageError;
use crate::model::{
    Account, RejectedRecord, SalesforceAccountsHead, SalesforceAccountsTail, SalesforceId, SyncKind,
};
use crate::rules::RunDates;
use crate::rules::account_mapping::{map_account, occurrences, shared_id};
use crate::rules::deletion_guard::too_many_rejected;
use crate::rules::partners::map_partners;
use crate::salesforce::soql::keep_rows_in_term;
use crate::snapshot::{RecordJson, Source};
use crate::store::{StoreError, StreamedArtifact, write_encoded};

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
    let key = keys.key(artifacts::SALESFORCE_ACCOUNTS)?;
    let dates = RunDates::new(input.as_of);
    let feed = AccountFeed::customers(ctx, dates.three_years_out);
    let (snapshot, note) = snapshots::current(ctx, &feed, input.gather_request()).await?;
    // One stored record parsed at a time and let go once mapped, each account encoded as it is
    // mapped: the stage holds the records' text and the artifact's bytes, never every mapped
    // account as well (at 200 000 accounts those took more memory than the two together).
    let unencodable = |e: serde_json::Error| {
        StageError::from(StoreError::Unencodable {
            key: key.clone(),
            message: e.to_string(),
        })
    };
    // The artifact is about three fifths of the records' text (162 of 286 MB at 200 000
    // accounts): a buffer that size at once, not one doubled on the way.
    let mut artifact =
        AccountsArtifact::begin(input.as_of, snapshot.text_bytes() * 3 / 5).map_err(unencodable)?;
    for (id, record) in snapshot.records {
        let mut record: Value = parse_stored(Source::SalesforceAccounts, &id, &record)?;
        keep_rows_in_term(&mut record, dates.three_years_out);
        artifact.add(map_account(&record)).map_err(unencodable)?;
    }
    let records = artifact.records;
    nonempty(records, "account query")?;
    let (body, accounts, rejected) = artifact.finish().map_err(unencodable)?;
    write_encoded(ctx.store.as_ref(), &key, body).await?;
    check_rejected(ctx, &rejected, records, &key)?;
    Ok(StageOutput::new(Stage::GatherAccounts, None)
        .count("records", records)
        .count("accounts", accounts)
        .count("rejected", rejected.len())
        .with_gather(note)
        .with_artifact(key))
}

/// `salesforce_accounts.json` written an account at a time as the records are mapped: the
/// bytes `collect_accounts`'s artifact encodes to, without holding its accounts.
struct AccountsArtifact {
    artifact: StreamedArtifact,
    /// Each account written, in order.
    written: Vec<Written>,
    /// Each record rejected, by its place among the records.
    rejected: Vec<(usize, RejectedRecord)>,
    records: usize,
}

/// An account in the artifact: its id, where its bytes are, and its record's place.
struct Written {
    id: SalesforceId,
    at: Range<usize>,
    place: usize,
}

impl AccountsArtifact {
    fn begin(as_of: NaiveDate, bytes: usize) -> Result<Self, serde_json::Error> {
        Ok(AccountsArtifact {
            artifact: StreamedArtifact::begin_sized(
                &SalesforceAccountsHead { as_of },
                "accounts",
                bytes,
            )?,
            written: Vec::new(),
            rejected: Vec::new(),
            records: 0,
        })
    }

    fn add(&mut self, mapped: Result<Account, RejectedRecord>) -> Result<(), serde_json::Error> {
        match mapped {
            Ok(account) => {
                let at = self.artifact.push(&account)?;
                self.written.push(Written {
                    id: account.salesforce_id,
                    at,
                    place: self.records,
                });
            }
            Err(rejection) => self.rejected.push((self.records, rejection)),
        }
        self.records += 1;
        Ok(())
    }

    /// The artifact's bytes, how many accounts it holds, and the records it rejects. Accounts
    /// sharing an `Account_ID_18__c` (rare) are taken out again and rejected, as
    /// `collect_accounts` rejects them; the rejections are in the records' order.
    fn finish(mut self) -> Result<(Vec<u8>, usize, Vec<RejectedRecord>), serde_json::Error> {
        let occurrences = occurrences(self.written.iter().map(|w| &w.id));
        let shared: Vec<usize> = (0..self.written.len())
            .filter(|&index| occurrences[&self.written[index].id] > 1)
            .collect();
        for &index in &shared {
            let written = &self.written[index];
            let account: Account = serde_json::from_slice(self.artifact.item(written.at.clone()))?;
            let rejection = shared_id(&written.id, account.name, occurrences[&written.id]);
            self.rejected.push((written.place, rejection));
        }
        if !shared.is_empty() {
            let ranges: Vec<Range<usize>> = self.written.iter().map(|w| w.at.clone()).collect();
            self.artifact
                .retain(&ranges, |index| shared.binary_search(&index).is_err());
        }
        self.rejected.sort_by_key(|(place, _)| *place);
        let rejected: Vec<RejectedRecord> = self.rejected.into_iter().map(|(_, r)| r).collect();
        let accounts = self.artifact.items();
        let body = self.artifact.finish(&SalesforceAccountsTail {
            rejected: &rejected,
        })?;
        Ok((body, accounts, rejected))
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::account_mapping::collect_accounts;

    fn record(id: &str, name: &str) -> Value {
        json!({"Account_ID_18__c": id, "Name": name, "Type": "Customer",
            "Ultimate_Parent_Sales_Segment_Employees__c": "SMB",
            "Zuora__Subscriptions__r": null, "Zuora__R00N40000001lGjTEAU__r": null})
    }

    #[test]
    fn the_streamed_artifact_is_byte_for_byte_what_collect_accounts_encodes_to() {
        let as_of = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let worlds = [
            vec![record("0011U00000V0tkDQAR", "Acme")],
            vec![
                record("0011U00000V0tkDQAR", "Acme"),
                json!({"Name": "no id"}),
                record("0011U00000V0tkEQAR", "Beta"),
                record("0011U00000V0tkDQAR", "Acme again"),
                json!("not a record"),
                record("0011U00000V0tkFQAR", "Gamma"),
                record("0011U00000V0tkEQAR", "Beta twice"),
                record("0011U00000V0tkEQAR", "Beta thrice"),
            ],
            vec![
                record("0011U00000V0tkDQAR", "Acme"),
                record("0011U00000V0tkDQAR", "Acme again"),
            ],
        ];
        for records in worlds {
            let whole = collect_accounts(records.iter().map(map_account).collect(), as_of);
            let mut streamed = AccountsArtifact::begin(as_of, 0).unwrap();
            for record in &records {
                streamed.add(map_account(record)).unwrap();
            }
            let (body, accounts, rejected) = streamed.finish().unwrap();
            assert_eq!(
                String::from_utf8(body).unwrap(),
                serde_json::to_string(&whole).unwrap()
            );
            assert_eq!(accounts, whole.accounts.len());
            assert_eq!(rejected, whole.rejected);
        }
    }
}
