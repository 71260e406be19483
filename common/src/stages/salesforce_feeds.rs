//! Salesforce's sources as snapshots (SPEC §12): the customer account query (with its
//! subscription and charge rows), the partner query and the US Gov contact query, each kept as
//! the records the query returned, by record id, and brought up to date from `SystemModstamp`.
//!
//! A delta asks each object a record is made of which of its records changed since the
//! watermark — through `queryAll`, so deleted and merged records show too — maps child rows to
//! their accounts, and re-reads exactly those records with the full read's own query restricted
//! to their ids. A record the restricted query no longer returns (deleted, merged away, no
//! longer a customer or partner) leaves the snapshot. What no `SystemModstamp` shows (formula
//! and lookup fields that read other records) waits for the daily full read.

use std::collections::{BTreeMap, BTreeSet};

use aho_corasick::AhoCorasick;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::Value;

use super::context::StageContext;
use super::page_worker::{PageWorker, finished};
use super::snapshots::{Feed, FeedError, Records};
use crate::error::StageError;
use crate::model::{ApiName, SalesforceId};
use crate::salesforce::SalesforceClient;
use crate::salesforce::soql::{
    accounts_query, changed_query, contacts_queries, partners_query, restricted_queries,
};
use crate::snapshot::{RecordJson, Source};

/// How far before a read's start the next delta asks for changes: a change committed while the
/// read ran (its `SystemModstamp` a little earlier than the commit), and a Salesforce clock a
/// little behind ours, are read again rather than missed. Reading a record twice changes nothing.
const OVERLAP_SECS: i64 = 300;

/// Records read again by id costs a query per ~550 ids, each a search of the org; past this share
/// of the snapshot (and this many records) the full read, a query per 2 000 records in order, is
/// cheaper — and a bulk update or an automation that touched every record is read that way.
const MOST_CHANGED_SHARE: f64 = 0.2;
const MOST_CHANGED_FLOOR: usize = 2_000;

/// Whether `changed` records are too many to read again by id in a snapshot of `held`.
fn too_many(changed: usize, held: usize) -> bool {
    changed > MOST_CHANGED_FLOOR && changed as f64 > MOST_CHANGED_SHARE * held as f64
}

/// An account query's records: the customer account query (with its subscription and charge
/// rows) or the partner query. Both are brought up to date the same way; only the customer
/// records have child rows whose changes are asked for too.
pub(super) struct AccountFeed<'a> {
    ctx: &'a StageContext,
    source: Source,
    /// The full read's query, restricted to the changed ids for a delta.
    query: String,
    /// Whether the records carry the subscription and charge rows.
    with_rows: bool,
}

impl<'a> AccountFeed<'a> {
    /// The customer accounts; `end_date` is SPEC §2's `three_years_out`, the query's condition on
    /// the rows' end dates.
    pub fn customers(ctx: &'a StageContext, end_date: NaiveDate) -> Self {
        AccountFeed {
            ctx,
            source: Source::SalesforceAccounts,
            query: accounts_query(end_date),
            with_rows: true,
        }
    }

    /// The partner accounts and the alliance partner's.
    pub fn partners(ctx: &'a StageContext, alliance: &SalesforceId) -> Self {
        AccountFeed {
            ctx,
            source: Source::SalesforcePartners,
            query: partners_query(alliance),
            with_rows: false,
        }
    }
}

/// The contact query's records for the accounts of the US Gov organizations, by account: one
/// entry per account (an empty list when it has no such contacts), the contacts sorted by id.
pub(super) struct ContactFeed<'a> {
    pub ctx: &'a StageContext,
    pub accounts: BTreeSet<SalesforceId>,
}

impl Feed for AccountFeed<'_> {
    type Key = String;

    fn source(&self) -> Source {
        self.source
    }

    fn origin(&self) -> Result<String, StageError> {
        Ok(self.ctx.salesforce()?.origin())
    }

    async fn read_all(&self) -> Result<BTreeMap<String, RecordJson>, StageError> {
        let mut pages = self.ctx.salesforce()?.query_pages(&self.query);
        // Each page is kept (encoded) while the next is fetched.
        let worker = PageWorker::start(BTreeMap::new(), keep_records);
        let read = async {
            while let Some(page) = pages.next_page().await? {
                worker.hand_over(page.records)?;
            }
            Ok(())
        }
        .await;
        finished(worker, read).await
    }

    async fn apply_changes(
        &self,
        snapshot: &mut Records<String>,
        since: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<(usize, usize), FeedError> {
        let salesforce = self.ctx.salesforce()?;
        let mut changes = Changes::default();
        let accounts = changed_query(&standard("Account")?, None, since);
        changes.add_records(&salesforce.query_all(&accounts).await?);
        if self.with_rows {
            let objects = self
                .ctx
                .settings
                .salesforce
                .child_objects()
                .map_err(StageError::from)?;
            for child in [&objects.subscription, &objects.charge] {
                let rows = salesforce
                    .query_all(&changed_query(child, Some(&objects.account_lookup), since))
                    .await?;
                changes.add_rows(&rows, &objects.account_lookup.to_string());
            }
            // A row moved to another account (outside a merge, which deletes the account it
            // left) still shows under the old one in the snapshot: that account is read again.
            changes.add_holders(snapshot);
        }
        if too_many(changes.records.len(), snapshot.records.len()) {
            return Err(FeedError::ManyChanges(changes.records.len()));
        }
        let different = reread(salesforce, &self.query, &changes.records, snapshot).await?;
        Ok((
            changes.read + changes.records.len(),
            advance(snapshot, different, started),
        ))
    }
}

impl Feed for ContactFeed<'_> {
    type Key = String;

    fn source(&self) -> Source {
        Source::SalesforceContacts
    }

    fn origin(&self) -> Result<String, StageError> {
        Ok(self.ctx.salesforce()?.origin())
    }

    async fn read_all(&self) -> Result<BTreeMap<String, RecordJson>, StageError> {
        let accounts: Vec<SalesforceId> = self.accounts.iter().cloned().collect();
        read_contacts(self.ctx.salesforce()?, &accounts).await
    }

    async fn apply_changes(
        &self,
        snapshot: &mut Records<String>,
        since: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<(usize, usize), FeedError> {
        let salesforce = self.ctx.salesforce()?;
        let contacts = changed_query(&standard("Contact")?, Some(&standard("AccountId")?), since);
        let rows = salesforce.query_all(&contacts).await?;
        let mut changes = Changes::default();
        changes.add_rows(&rows, "AccountId");
        changes.add_holders(snapshot);
        let wanted: BTreeSet<String> = self.accounts.iter().map(ToString::to_string).collect();
        // Accounts whose US Gov organization is new to the snapshot are read in full; accounts
        // no longer of the US Gov organizations leave it.
        let before = snapshot.records.len();
        snapshot
            .records
            .retain(|account, _| wanted.contains(account));
        let mut different = before - snapshot.records.len();
        let affected: Vec<SalesforceId> = wanted
            .iter()
            .filter(|account| {
                changes.records.contains(*account) || !snapshot.records.contains_key(*account)
            })
            .filter_map(|account| SalesforceId::parse(account).ok())
            .collect();
        if too_many(affected.len(), snapshot.records.len()) {
            return Err(FeedError::ManyChanges(affected.len()));
        }
        let read = read_contacts(salesforce, &affected).await?;
        different += snapshot.apply(read);
        Ok((
            changes.read + affected.len(),
            advance(snapshot, different, started),
        ))
    }
}

/// What a change feed named: the ids of the records (accounts, or the accounts contacts belong
/// to) to read again, and the changed child rows not yet mapped to where the snapshot holds them.
#[derive(Default)]
struct Changes {
    records: BTreeSet<String>,
    children: Vec<String>,
    /// Change rows read.
    read: usize,
}

impl Changes {
    /// Changed records of the snapshot's own object: their `Id`s.
    fn add_records(&mut self, rows: &[Value]) {
        self.read += rows.len();
        self.records
            .extend(rows.iter().filter_map(|row| canonical(row.get("Id"))));
    }

    /// Changed child rows: the account each names now, and the row's own id (to find the account
    /// the snapshot has it under).
    fn add_rows(&mut self, rows: &[Value], account_lookup: &str) {
        self.read += rows.len();
        for row in rows {
            self.records.extend(canonical(row.get(account_lookup)));
            if let Some(Value::String(id)) = row.get("Id") {
                self.children.push(id.clone());
            }
        }
    }

    /// The snapshot's records holding any changed child row: one pass over the snapshot's text
    /// for all of them at once, only when a child row changed.
    fn add_holders(&mut self, snapshot: &Records<String>) {
        if self.children.is_empty() {
            return;
        }
        let Ok(ids) = AhoCorasick::new(self.children.iter().map(|id| format!("\"{id}\""))) else {
            return;
        };
        for (key, record) in &snapshot.records {
            if !self.records.contains(key) && ids.is_match(record.text()) {
                self.records.insert(key.clone());
            }
        }
    }
}

/// A standard object's or field's name.
fn standard(name: &str) -> Result<ApiName, StageError> {
    ApiName::parse(name).map_err(StageError::InvalidConfig)
}

/// A valid Salesforce id in its 18-character form; anything else never reaches a query.
fn canonical(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(id)) => SalesforceId::parse(id).ok().map(|id| id.to_string()),
        _ => None,
    }
}

/// Re-reads `ids` with `query` restricted to them; each record returned replaces the
/// snapshot's, each id not returned leaves it. Answers how many records differ.
async fn reread(
    salesforce: &SalesforceClient,
    query: &str,
    ids: &BTreeSet<String>,
    snapshot: &mut Records<String>,
) -> Result<usize, FeedError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let valid: Vec<SalesforceId> = ids
        .iter()
        .filter_map(|id| SalesforceId::parse(id).ok())
        .collect();
    let endpoint = salesforce.query_endpoint().await?;
    let mut read = BTreeMap::new();
    for soql in restricted_queries(query, &valid, &endpoint) {
        keep_records(&mut read, salesforce.query(&soql).await?)?;
    }
    let mut different = 0;
    for id in ids {
        if !read.contains_key(id) && snapshot.records.remove(id).is_some() {
            different += 1;
        }
    }
    Ok(different + snapshot.apply(read))
}

/// A delta that changed the snapshot moves its watermark to this read's start (less the
/// overlap); a quiet one leaves snapshot and watermark as they are, so nothing is written.
fn advance(snapshot: &mut Records<String>, different: usize, started: DateTime<Utc>) -> usize {
    if different > 0 {
        snapshot.watermark = snapshot
            .watermark
            .max(started - Duration::seconds(OVERLAP_SECS));
    }
    different
}

/// Query records by their `Id`, without the `attributes` Salesforce adds to each (a type and
/// URL the mapping never reads). A record without a readable `Id`, or with one already read
/// (which Salesforce never sends), is kept under a key of its own, so it is mapped — and
/// rejected — as in any read.
fn keep_records(
    kept: &mut BTreeMap<String, RecordJson>,
    records: Vec<Value>,
) -> Result<(), StageError> {
    for mut record in records {
        strip_attributes(&mut record);
        let key = canonical(record.get("Id"))
            .filter(|id| !kept.contains_key(id))
            .unwrap_or_else(|| format!("~{:08}", kept.len()));
        kept.insert(key, encoded(&record)?);
    }
    Ok(())
}

fn encoded(record: &impl serde::Serialize) -> Result<RecordJson, StageError> {
    RecordJson::of(record).map_err(|e| {
        StageError::InvalidConfig(format!("a Salesforce record cannot be encoded again: {e}"))
    })
}

fn strip_attributes(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.remove("attributes");
            fields.values_mut().for_each(strip_attributes);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_attributes),
        _ => {}
    }
}

/// The contact query's records for `accounts`, by account (every account present, its contacts
/// sorted by id).
async fn read_contacts(
    salesforce: &SalesforceClient,
    accounts: &[SalesforceId],
) -> Result<BTreeMap<String, RecordJson>, StageError> {
    let mut by_account: BTreeMap<String, Vec<Value>> = accounts
        .iter()
        .map(|account| (account.to_string(), Vec::new()))
        .collect();
    if !accounts.is_empty() {
        let endpoint = salesforce.query_endpoint().await?;
        for soql in contacts_queries(accounts, &endpoint) {
            for mut contact in salesforce.query(&soql).await? {
                strip_attributes(&mut contact);
                let account = canonical(contact.pointer("/Account/Account_ID_18__c"));
                // The query asked for these accounts' contacts only; one it cannot place is
                // kept under the first, to be mapped (and rejected) as in any read.
                let key = account.unwrap_or_else(|| accounts[0].to_string());
                by_account.entry(key).or_default().push(contact);
            }
        }
    }
    by_account
        .into_iter()
        .map(|(account, mut contacts)| {
            contacts.sort_by(|a, b| id_text(a).cmp(id_text(b)));
            Ok((account, encoded(&contacts)?))
        })
        .collect()
}

fn id_text(record: &Value) -> &str {
    record.get("Id").and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn attributes_are_dropped_at_every_depth() {
        let mut record = json!({"attributes": {"type": "Account"}, "Id": "x",
            "Zuora__Subscriptions__r": {"totalSize": 1, "done": true,
                "records": [{"attributes": {"type": "Zuora__Subscription__c"}, "Id": "y"}]}});
        strip_attributes(&mut record);
        assert_eq!(
            record,
            json!({"Id": "x", "Zuora__Subscriptions__r": {"totalSize": 1, "done": true, "records": [{"Id": "y"}]}})
        );
    }

    #[test]
    fn a_few_changes_are_read_by_id_and_a_flood_in_full() {
        assert!(!too_many(100, 200_000));
        assert!(
            !too_many(1_500, 2_000),
            "a small world's changes are always read by id"
        );
        assert!(!too_many(39_000, 200_000));
        assert!(too_many(41_000, 200_000));
    }

    #[test]
    fn change_rows_name_valid_ids_only_and_their_accounts() {
        let mut changes = Changes::default();
        changes.add_records(&[
            json!({"Id": "0014M00001sDiGE"}),
            json!({"Id": "x' OR Name != '"}),
        ]);
        changes.add_rows(
            &[json!({"Id": "a1x000000000001AAA", "Zuora__Account__c": "0014M00001sDiGFQA0"})],
            "Zuora__Account__c",
        );
        assert_eq!(
            changes.records,
            BTreeSet::from([
                "0014M00001sDiGEQA0".to_owned(),
                "0014M00001sDiGFQA0".to_owned()
            ])
        );
        assert_eq!(changes.children, ["a1x000000000001AAA"]);
        assert_eq!(changes.read, 3);
    }
}
