//! The emulated org: its records, sessions, query cursors and API usage, behind one lock so
//! every request sees a consistent org.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use base64::Engine;
use serde_json::{Value, json};

use super::SalesforceFixture;
use super::api_error::ApiError;
use super::options::SalesforceOptions;
use super::pager::{Cursors, PageSpec};
use super::soql::compile;

/// The emulated Salesforce org shared by all requests.
pub struct SalesforceState {
    options: SalesforceOptions,
    org: Mutex<Org>,
}

struct Org {
    objects: BTreeMap<String, Vec<Value>>,
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
}

impl SalesforceState {
    pub fn new(fixture: SalesforceFixture, options: SalesforceOptions) -> Self {
        Self {
            options,
            org: Mutex::new(Org {
                objects: fixture.objects,
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

    /// The org's records (as a [`SalesforceFixture`] reads them back) plus counters.
    pub fn dump(&self) -> Value {
        let org = self.lock();
        json!({
            "objects": org.objects,
            "api_usage": org.api_usage,
            "api_limit": self.options.daily_api_limit,
            "tokens_issued": org.tokens_issued,
            "open_cursors": org.cursors.len(),
        })
    }

    /// The org's current records (edits through [`Self::with_objects_mut`] included) as a
    /// fixture; sessions, cursors and API usage are left out.
    pub fn snapshot(&self) -> SalesforceFixture {
        SalesforceFixture {
            objects: self.lock().objects.clone(),
        }
    }

    /// Lets a test change records between requests.
    pub fn with_objects_mut<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Vec<Value>>) -> R) -> R {
        f(&mut self.lock().objects)
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
        let rows = compiled.execute(&org.objects, request.api_version);
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
