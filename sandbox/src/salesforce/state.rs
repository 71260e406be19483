//! The emulated org: its records, sessions, query cursors and API usage, behind one lock so
//! every request sees a consistent org.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::SalesforceFixture;
use super::api_error::ApiError;
use super::changes::{self, CHILD_OBJECTS, ChildObject, RecycleBin};
use super::options::SalesforceOptions;
use super::pager::{Cursors, PageSpec};
use super::soql::compile;
use crate::clock::Clock;

/// The emulated Salesforce org shared by all requests.
pub struct SalesforceState {
    options: SalesforceOptions,
    /// The sandbox clock: every `SystemModstamp` is one of its readings.
    clock: Clock,
    org: Mutex<Org>,
}

struct Org {
    /// Live records; each carries `SystemModstamp` and `IsDeleted: false`, nested rows too.
    objects: BTreeMap<String, Vec<Value>>,
    /// Deleted records (`IsDeleted: true`), seen by `queryAll` only.
    bin: RecycleBin,
    /// Access token → when it was issued.
    sessions: HashMap<String, Instant>,
    cursors: Cursors,
    api_usage: u64,
    tokens_issued: u64,
    /// Every access token issued, in order.
    issued: Vec<String>,
    /// Every SOQL statement received, in order (what a test asserts never reached a query).
    queries: Vec<String>,
}

/// What a query request asks for, after the header and path are read.
pub(crate) struct QueryRequest<'a> {
    pub soql: &'a str,
    pub api_version: &'a str,
    pub batch_size: usize,
    /// `queryAll`: deleted records too.
    pub include_deleted: bool,
}

/// Why a record change was refused (the admin routes answer 404 and 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("no {object} record with Id {id}")]
    NotFound { object: String, id: String },
    #[error("{0}")]
    Invalid(String),
}

fn not_found(object: &str, id: &str) -> RecordError {
    RecordError::NotFound {
        object: object.to_owned(),
        id: id.to_owned(),
    }
}

impl SalesforceState {
    /// An org with its own clock (the sandbox shares one clock between its services).
    pub fn new(fixture: SalesforceFixture, options: SalesforceOptions) -> Self {
        Self::with_clock(fixture, options, Clock::new())
    }

    /// Records without a `SystemModstamp` are stamped now, or with
    /// [`SalesforceOptions::initial_modstamp`] when set; records marked `IsDeleted: true`
    /// (as a snapshot writes the recycle bin) go to the recycle bin.
    pub(crate) fn with_clock(
        fixture: SalesforceFixture,
        options: SalesforceOptions,
        clock: Clock,
    ) -> Self {
        let stamp = changes::format_stamp(options.initial_modstamp.unwrap_or_else(|| clock.now()));
        let (objects, bin) = changes::load(fixture.objects, &stamp);
        Self {
            options,
            clock,
            org: Mutex::new(Org {
                objects,
                bin,
                sessions: HashMap::new(),
                cursors: Cursors::default(),
                api_usage: 0,
                tokens_issued: 0,
                issued: Vec::new(),
                queries: Vec::new(),
            }),
        }
    }

    pub fn options(&self) -> &SalesforceOptions {
        &self.options
    }

    /// The org's records (as a [`SalesforceFixture`] reads them back), its recycle bin, plus
    /// counters.
    pub fn dump(&self) -> Value {
        let org = self.lock();
        json!({
            "objects": org.objects,
            "recycle_bin": org.bin,
            "api_usage": org.api_usage,
            "api_limit": self.options.daily_api_limit,
            "tokens_issued": org.tokens_issued,
            "open_cursors": org.cursors.len(),
        })
    }

    /// The org's current records (edits through [`Self::with_objects_mut`] included) as a
    /// fixture; sessions, cursors and API usage are left out. Recycle-bin records follow the
    /// live ones of their object with `IsDeleted: true` (deleted subscription and charge rows
    /// as top-level records of their object), so loading the snapshot restores the bin.
    pub fn snapshot(&self) -> SalesforceFixture {
        let org = self.lock();
        let mut objects = org.objects.clone();
        for (object, records) in &org.bin {
            objects
                .entry(object.clone())
                .or_default()
                .extend(records.iter().cloned());
        }
        SalesforceFixture { objects }
    }

    /// Lets a test change live records between requests. Afterwards the change is recorded as
    /// Salesforce would (records matched by `Id`, nested subscription and charge rows too): a
    /// new record, or one whose own fields changed, gets `SystemModstamp` = now (a change of
    /// only a lookup such as `Solutions_Architect_Lookup__r`, or of a child row, does not
    /// move a record's stamp); a record or nested row that is gone goes to the recycle bin.
    /// Records without an `Id` are only stamped if they have no stamp.
    pub fn with_objects_mut<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Vec<Value>>) -> R) -> R {
        let mut org = self.lock();
        let before = org.objects.clone();
        let result = f(&mut org.objects);
        let now = self.stamp_now();
        let org = &mut *org;
        changes::track(&before, &mut org.objects, &mut org.bin, &now);
        result
    }

    /// The recycle bin: deleted records by object (subscription and charge rows under their
    /// own object names, with `Zuora__Account__c`).
    pub fn recycle_bin(&self) -> BTreeMap<String, Vec<Value>> {
        self.lock().bin.clone()
    }

    /// The clock's time now: what a change now stamps.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock forward (in a sandbox: the whole sandbox's clock).
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.clock.advance(by);
    }

    fn stamp_now(&self) -> String {
        changes::format_stamp(self.clock.now())
    }

    /// Ends every session, as an org-wide session timeout or a revoked app would: the next
    /// request with any earlier token gets 401 `INVALID_SESSION_ID`.
    pub fn expire_all_tokens(&self) {
        self.lock().sessions.clear();
    }

    /// Access tokens issued so far (each successful token request issues one).
    pub fn tokens_issued(&self) -> u64 {
        self.lock().tokens_issued
    }

    /// Data API requests counted so far (the `used` of `Sforce-Limit-Info`).
    pub fn api_usage(&self) -> u64 {
        self.lock().api_usage
    }

    /// Counts `calls` made by the org's other integrations: they share the daily allowance.
    pub fn use_api(&self, calls: u64) {
        self.lock().api_usage += calls;
    }

    /// The SOQL statements received so far, in order.
    pub fn queries(&self) -> Vec<String> {
        self.lock().queries.clone()
    }

    /// Every access token issued so far, expired ones included (tests check that none
    /// leaks into a log line or an artifact).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    /// Starts a new day of API usage.
    pub fn reset_api_usage(&self) {
        self.lock().api_usage = 0;
    }

    fn lock(&self) -> MutexGuard<'_, Org> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.org
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a session and returns its access token (`<org id>!<secret>`, like Salesforce).
    pub(crate) fn issue_token(&self) -> String {
        let mut secret = [0u8; 48];
        aws_lc_rs::rand::fill(&mut secret).expect("the system random source works");
        let token = format!(
            "{}!{}",
            &self.options.org_id[..15.min(self.options.org_id.len())],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let mut org = self.lock();
        org.sessions.insert(token.clone(), Instant::now());
        org.issued.push(token.clone());
        org.tokens_issued += 1;
        token
    }

    /// Whether `token` names a session that has not timed out.
    pub(crate) fn session_is_valid(&self, token: &str) -> bool {
        let mut org = self.lock();
        match org.sessions.get(token) {
            Some(issued) if issued.elapsed() < self.options.token_lifetime => true,
            Some(_) => {
                org.sessions.remove(token);
                false
            }
            None => false,
        }
    }

    /// Counts one API request; past the limit the request is refused. Returns `(used, max)`
    /// for the `Sforce-Limit-Info` header.
    pub(crate) fn count_api_request(&self) -> Result<(u64, u64), (ApiError, u64, u64)> {
        let mut org = self.lock();
        let limit = self.options.daily_api_limit;
        if org.api_usage >= limit {
            return Err((ApiError::request_limit_exceeded(), org.api_usage, limit));
        }
        org.api_usage += 1;
        Ok((org.api_usage, limit))
    }

    /// Runs a query and opens a cursor over its result; returns the first page.
    pub(crate) fn query(&self, request: &QueryRequest<'_>) -> Result<Value, ApiError> {
        let mut org = self.lock();
        org.queries.push(request.soql.to_owned());
        let compiled = compile(request.soql, &org.objects).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                e.code,
                e.message(request.soql),
            )
        })?;
        let rows = {
            let records = org.rows_of(compiled.object(), request.include_deleted);
            compiled.execute_over(records.into_iter(), request.api_version)
        };
        org.cursors.prune(self.options.cursor_lifetime);
        let spec = PageSpec {
            api_version: request.api_version.to_owned(),
            batch_size: request.batch_size,
            child_page_size: self.options.child_page_size.max(1),
            opened: Instant::now(),
        };
        Ok(org.cursors.open(rows, spec))
    }

    /// Continues a cursor (`queryMore`).
    pub(crate) fn query_more(&self, locator: &str) -> Result<Value, ApiError> {
        self.lock()
            .cursors
            .more(locator, self.options.cursor_lifetime)
    }
}

/// The key `object` has in `map` (object names match in any case).
fn key_in<V>(map: &BTreeMap<String, V>, object: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(object)).cloned()
}

impl Org {
    /// The rows a query of `object` runs over: its live records (for a nested child object,
    /// the rows nested in every record), and with `include_deleted` the recycle bin's too
    /// (for a child object: also the rows of deleted parents).
    fn rows_of(&self, object: &str, include_deleted: bool) -> Vec<&Value> {
        fn matching<'m>(
            map: &'m BTreeMap<String, Vec<Value>>,
            object: &str,
        ) -> impl Iterator<Item = &'m Value> {
            map.iter()
                .filter(move |(name, _)| name.eq_ignore_ascii_case(object))
                .flat_map(|(_, records)| records.iter())
        }
        let mut rows: Vec<&Value> = matching(&self.objects, object).collect();
        let child = changes::child_object(object);
        if let Some(child) = child {
            for record in self.objects.values().flatten() {
                rows.extend(changes::rows(record, child));
            }
        }
        if include_deleted {
            rows.extend(matching(&self.bin, object));
            if let Some(child) = child {
                for record in self.bin.values().flatten() {
                    rows.extend(changes::rows(record, child));
                }
            }
        }
        rows
    }

    /// Where the live record `id` of `object` is: (map key, index).
    fn find(&self, object: &str, id: &str) -> Option<(String, usize)> {
        let key = key_in(&self.objects, object)?;
        let index = self.objects[&key]
            .iter()
            .position(|r| changes::id_of(r) == Some(id))?;
        Some((key, index))
    }

    /// Where the live nested row `id` of `child` is: (parent's map key, parent index, row index).
    fn find_row(&self, child: &ChildObject, id: &str) -> Option<(String, usize, usize)> {
        self.objects.iter().find_map(|(key, records)| {
            records.iter().enumerate().find_map(|(i, record)| {
                changes::rows(record, child)
                    .iter()
                    .position(|r| changes::id_of(r) == Some(id))
                    .map(|j| (key.clone(), i, j))
            })
        })
    }

    /// Replaces (or adds, with `at` = None) one top-level record and records the change.
    fn apply_one(&mut self, key: &str, at: Option<usize>, new: Value, now: &str) {
        let old = at.map(|i| self.objects[key][i].clone());
        let before = BTreeMap::from([(key.to_owned(), old.into_iter().collect::<Vec<_>>())]);
        let mut after = BTreeMap::from([(key.to_owned(), vec![new])]);
        changes::track(&before, &mut after, &mut self.bin, now);
        let new = after
            .remove(key)
            .and_then(|mut v| v.pop())
            .unwrap_or_default();
        let records = self.objects.entry(key.to_owned()).or_default();
        match at {
            Some(i) => records[i] = new,
            None => records.push(new),
        }
    }

    /// Puts a nested row under the live record `parent` (replacing a live row with its Id,
    /// wherever it was) and records the change.
    fn put_row(
        &mut self,
        child: &ChildObject,
        mut row: Value,
        now: &str,
    ) -> Result<(), RecordError> {
        let id = changes::id_of(&row)
            .ok_or_else(|| RecordError::Invalid("the record has no Id".into()))?
            .to_owned();
        let parent = row
            .get(child.parent_field)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RecordError::Invalid(format!(
                    "a {} record needs {} (its account's Id)",
                    child.object, child.parent_field
                ))
            })?
            .to_owned();
        let (parent_key, parent_index) = self
            .objects
            .iter()
            .find_map(|(key, records)| {
                records
                    .iter()
                    .position(|r| changes::id_of(r) == Some(parent.as_str()))
                    .map(|i| (key.clone(), i))
            })
            .ok_or_else(|| not_found("Account", &parent))?;
        let old = match self.find_row(child, &id) {
            Some((key, i, j)) => {
                let rows =
                    changes::rows_mut(&mut self.objects.get_mut(&key).expect("found")[i], child)
                        .expect("found");
                Some(rows.remove(j))
            }
            None => {
                if let Some(deleted) = self.bin.get_mut(child.object) {
                    deleted.retain(|r| changes::id_of(r) != Some(id.as_str()));
                }
                None
            }
        };
        changes::set(&mut row, changes::IS_DELETED, json!(false));
        changes::restamp(&mut row, old.as_ref(), now);
        let parent_record = &mut self.objects.get_mut(&parent_key).expect("found")[parent_index];
        if changes::rows_mut(parent_record, child).is_none() {
            changes::set(parent_record, child.relationship, json!([]));
        }
        changes::rows_mut(parent_record, child)
            .expect("just made")
            .push(row);
        Ok(())
    }

    fn bin_record(&mut self, object: &str, record: Value) {
        let key = key_in(&self.bin, object).unwrap_or_else(|| object.to_owned());
        self.bin.entry(key).or_default().push(record);
    }

    /// Removes the recycle-bin record `id` of `object`.
    fn take_from_bin(&mut self, object: &str, id: &str) -> Option<Value> {
        let key = key_in(&self.bin, object)?;
        let records = self.bin.get_mut(&key)?;
        let index = records.iter().position(|r| changes::id_of(r) == Some(id))?;
        let record = records.remove(index);
        if records.is_empty() {
            self.bin.remove(&key);
        }
        Some(record)
    }
}

/// Record changes, as Salesforce's data API or a user would make them; each is tracked like
/// [`SalesforceState::with_objects_mut`] (stamps, recycle bin).
impl SalesforceState {
    /// Creates `record` (it must carry an `Id`), or replaces the live record with its `Id`.
    /// A subscription or charge (`Zuora__Subscription__c`,
    /// `Zuora__SubscriptionProductCharge__c`) is placed under the account its
    /// `Zuora__Account__c` names (moving it if it was under another). A replaced record
    /// keeps the nested child rows the new body does not mention (children are records of
    /// their own).
    pub fn upsert(&self, object: &str, record: Value) -> Result<(), RecordError> {
        let Some(id) = changes::id_of(&record).map(str::to_owned) else {
            return Err(RecordError::Invalid("the record has no Id".into()));
        };
        let now = self.stamp_now();
        let mut org = self.lock();
        if let Some(child) = changes::child_object(object) {
            return org.put_row(child, record, &now);
        }
        let mut record = record;
        let found = org.find(object, &id);
        if let Some((key, i)) = &found {
            let old = &org.objects[key][*i];
            for child in &CHILD_OBJECTS {
                if record.get(child.relationship).is_none()
                    && let Some(rows) = old.get(child.relationship)
                {
                    changes::set(&mut record, child.relationship, rows.clone());
                }
            }
        }
        let (key, at) = match found {
            Some((key, i)) => (key, Some(i)),
            None => (
                key_in(&org.objects, object).unwrap_or_else(|| object.to_owned()),
                None,
            ),
        };
        org.apply_one(&key, at, record, &now);
        Ok(())
    }

    /// Sets the given fields of the live record `id` (a nested child relationship given in
    /// `fields` replaces that set of rows; `Zuora__Account__c` of a subscription or charge
    /// moves it).
    pub fn patch(&self, object: &str, id: &str, fields: &Value) -> Result<(), RecordError> {
        let Some(fields) = fields.as_object() else {
            return Err(RecordError::Invalid("the body is not a JSON object".into()));
        };
        let now = self.stamp_now();
        let mut org = self.lock();
        let merge = |mut record: Value| {
            for (name, value) in fields {
                if name != changes::ID {
                    changes::set(&mut record, name, value.clone());
                }
            }
            record
        };
        if let Some(child) = changes::child_object(object) {
            let (key, i, j) = org
                .find_row(child, id)
                .ok_or_else(|| not_found(object, id))?;
            let row = changes::rows(&org.objects[&key][i], child)[j].clone();
            return org.put_row(child, merge(row), &now);
        }
        let (key, i) = org.find(object, id).ok_or_else(|| not_found(object, id))?;
        let record = merge(org.objects[&key][i].clone());
        org.apply_one(&key, Some(i), record, &now);
        Ok(())
    }

    /// Deletes the live record `id` to the recycle bin (`IsDeleted: true`, stamped now). An
    /// account's subscription and charge rows are deleted with it, and so are its contacts
    /// (Salesforce deletes an account's contacts with it).
    pub fn delete(&self, object: &str, id: &str) -> Result<(), RecordError> {
        let now = self.stamp_now();
        let mut org = self.lock();
        if let Some(child) = changes::child_object(object) {
            let (key, i, j) = org
                .find_row(child, id)
                .ok_or_else(|| not_found(object, id))?;
            let rows = changes::rows_mut(&mut org.objects.get_mut(&key).expect("found")[i], child)
                .expect("found");
            let mut row = rows.remove(j);
            changes::mark(&mut row, true, &now);
            org.bin_record(child.object, row);
            return Ok(());
        }
        let (key, i) = org.find(object, id).ok_or_else(|| not_found(object, id))?;
        let mut record = org.objects.get_mut(&key).expect("found").remove(i);
        changes::mark(&mut record, true, &now);
        changes::delete_nested(&mut record, &now);
        org.bin_record(&key, record);
        if key.eq_ignore_ascii_case("Account") {
            let contacts: Vec<String> = org
                .objects
                .keys()
                .filter(|k| k.eq_ignore_ascii_case("Contact"))
                .cloned()
                .collect();
            for contact_key in contacts {
                let records = org.objects.get_mut(&contact_key).expect("listed");
                let (gone, kept): (Vec<Value>, Vec<Value>) = std::mem::take(records)
                    .into_iter()
                    .partition(|c| c.get("AccountId").and_then(Value::as_str) == Some(id));
                *records = kept;
                for mut contact in gone {
                    changes::mark(&mut contact, true, &now);
                    org.bin_record(&contact_key, contact);
                }
            }
        }
        Ok(())
    }

    /// Restores the recycle-bin record `id` (stamped now, `IsDeleted: false`,
    /// `MasterRecordId` cleared), with the nested rows and contacts deleted together with it.
    /// A subscription or charge goes back under its account, which must be live.
    pub fn undelete(&self, object: &str, id: &str) -> Result<(), RecordError> {
        let now = self.stamp_now();
        let mut org = self.lock();
        let mut record = org
            .take_from_bin(object, id)
            .ok_or_else(|| not_found(object, id))?;
        if let Some(child) = changes::child_object(object) {
            let restored = org.put_row(child, record.clone(), &now);
            if restored.is_err() {
                org.bin_record(child.object, record);
            }
            return restored;
        }
        let deleted_at = record.get(changes::MODSTAMP).cloned();
        changes::mark(&mut record, false, &now);
        if let Some(fields) = record.as_object_mut() {
            fields.remove(changes::MASTER_RECORD_ID);
        }
        for child in &CHILD_OBJECTS {
            for row in changes::rows_mut(&mut record, child).into_iter().flatten() {
                changes::mark(row, false, &now);
            }
        }
        let key = key_in(&org.objects, object).unwrap_or_else(|| object.to_owned());
        org.objects.entry(key.clone()).or_default().push(record);
        if key.eq_ignore_ascii_case("Account")
            && let Some(contact_key) = key_in(&org.bin, "Contact")
        {
            let records = org.bin.get_mut(&contact_key).expect("found");
            let (back, kept): (Vec<Value>, Vec<Value>) =
                std::mem::take(records).into_iter().partition(|c| {
                    c.get("AccountId").and_then(Value::as_str) == Some(id)
                        && c.get(changes::MODSTAMP) == deleted_at.as_ref()
                });
            *records = kept;
            let live_key = key_in(&org.objects, "Contact").unwrap_or(contact_key);
            for mut contact in back {
                changes::mark(&mut contact, false, &now);
                org.objects
                    .entry(live_key.clone())
                    .or_default()
                    .push(contact);
            }
            org.bin.retain(|_, records| !records.is_empty());
        }
        Ok(())
    }

    /// Merges accounts as Salesforce does: each loser goes to the recycle bin with
    /// `IsDeleted: true` and `MasterRecordId` = `master_id`; its subscription and charge rows
    /// move under the master, and contacts whose `AccountId` is a loser get the master
    /// (`AccountId`, and the `Account` lookup); every moved record and the master are stamped
    /// now.
    pub fn merge_accounts(&self, master_id: &str, loser_ids: &[&str]) -> Result<(), RecordError> {
        if loser_ids.is_empty() || loser_ids.contains(&master_id) {
            return Err(RecordError::Invalid(
                "a merge needs at least one losing account, other than the master".into(),
            ));
        }
        let now = self.stamp_now();
        let mut org = self.lock();
        let (key, _) = org
            .find("Account", master_id)
            .ok_or_else(|| not_found("Account", master_id))?;
        for loser in loser_ids {
            org.find("Account", loser)
                .ok_or_else(|| not_found("Account", loser))?;
        }
        let accounts = org.objects.get_mut(&key).expect("found");
        let (losers, kept): (Vec<Value>, Vec<Value>) = std::mem::take(accounts)
            .into_iter()
            .partition(|a| changes::id_of(a).is_some_and(|id| loser_ids.contains(&id)));
        *accounts = kept;
        let master_index = accounts
            .iter()
            .position(|a| changes::id_of(a) == Some(master_id))
            .expect("found");
        let master_id_18 = accounts[master_index]
            .get("Account_ID_18__c")
            .cloned()
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| json!(master_id));
        let mut binned = Vec::new();
        for mut loser in losers {
            for child in &CHILD_OBJECTS {
                let moved = changes::rows_mut(&mut loser, child)
                    .map(std::mem::take)
                    .unwrap_or_default();
                if moved.is_empty() {
                    continue;
                }
                let master = &mut accounts[master_index];
                if changes::rows_mut(master, child).is_none() {
                    changes::set(master, child.relationship, json!([]));
                }
                let rows = changes::rows_mut(master, child).expect("just made");
                for mut row in moved {
                    changes::set(&mut row, child.parent_field, json!(master_id));
                    changes::mark(&mut row, false, &now);
                    rows.push(row);
                }
            }
            changes::mark(&mut loser, true, &now);
            changes::set(&mut loser, changes::MASTER_RECORD_ID, json!(master_id));
            binned.push(loser);
        }
        changes::mark(&mut accounts[master_index], false, &now);
        for loser in binned {
            org.bin_record(&key, loser);
        }
        for (name, records) in org.objects.iter_mut() {
            if !name.eq_ignore_ascii_case("Contact") {
                continue;
            }
            for contact in records.iter_mut() {
                let of_loser = contact
                    .get("AccountId")
                    .and_then(Value::as_str)
                    .is_some_and(|a| loser_ids.contains(&a));
                if !of_loser {
                    continue;
                }
                changes::set(contact, "AccountId", json!(master_id));
                match contact.get_mut("Account").and_then(Value::as_object_mut) {
                    Some(lookup) => {
                        lookup.insert("Account_ID_18__c".into(), master_id_18.clone());
                    }
                    None => changes::set(
                        contact,
                        "Account",
                        json!({"Account_ID_18__c": master_id_18}),
                    ),
                }
                changes::mark(contact, false, &now);
            }
        }
        Ok(())
    }
}

impl SalesforceState {
    /// The live record `id` of `object` (for a subscription or charge: its nested row).
    pub fn record(&self, object: &str, id: &str) -> Option<Value> {
        let org = self.lock();
        if let Some(child) = changes::child_object(object) {
            let (key, i, j) = org.find_row(child, id)?;
            return Some(changes::rows(&org.objects[&key][i], child)[j].clone());
        }
        let (key, i) = org.find(object, id)?;
        Some(org.objects[&key][i].clone())
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
