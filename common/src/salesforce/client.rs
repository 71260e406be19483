//! The Salesforce REST client: log in, query, page.
//!
//! Sessions: Salesforce hands out no refresh token and no expiry (a session lasts the org's
//! timeout), so the client keeps one session and, when a request is answered 401
//! `INVALID_SESSION_ID`, asks for a new one with the same grant **once** and repeats the
//! request. A second 401 means the new session is refused too; asking again would only loop,
//! so that is [`SalesforceError::AuthFailed`].
//!
//! Paging: a page's records may carry child relationships truncated at `done: false` with
//! their own `nextRecordsUrl`. Those are fetched **before** the parent cursor moves on,
//! because "a queryMore() call on a parent object invalidates all child cursors in the
//! previous result set" (reference/apis.md B2). The caller sees every child set complete.
//!
//! Outages: 5xx answers, timeouts and connection failures are retried with capped exponential
//! backoff and jitter ([`crate::retry::RetryPolicy`]); anything else is answered at once.

use std::sync::atomic::{AtomicBool, Ordering};

use backon::Retryable;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::config::{MAX_BATCH_SIZE, MIN_BATCH_SIZE, SalesforceConfig};
use super::error::{SalesforceError, transport_error};
use super::session::{Session, Sessions};
use crate::calls::{self, Call};
use crate::model::org::json_type;
use crate::progress;

/// Above this share of the org's daily API allowance used, the sync warns (SPEC §10).
pub const ALLOWANCE_WARNING: f64 = 0.8;

/// What this client's calls count under in a stage's call stats.
const SERVICE: &str = "salesforce";
use super::soql::{QueryEndpoint, query_all_path, query_path};

/// One request's failure before session handling: either the session was refused (the
/// caller may refresh once), or a final error.
enum Failure {
    SessionRejected,
    Error(SalesforceError),
}

impl Failure {
    fn is_transient(&self) -> bool {
        matches!(self, Failure::Error(SalesforceError::Transient { .. }))
    }
}

/// A Salesforce org's REST API, for one integration user.
pub struct SalesforceClient {
    http: reqwest::Client,
    config: SalesforceConfig,
    sessions: Sessions,
    /// The 80 % allowance warning went out (once per client).
    warned_allowance: AtomicBool,
}

/// Shows the configuration (secrets redacted) and never the session's access token.
impl std::fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceClient")
            .field("config", &self.config)
            .field("token_requests", &self.token_requests())
            .finish_non_exhaustive()
    }
}

/// One page of a query's top-level records, every child set complete.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    /// All records the query matches (not this page's count).
    pub total_size: u64,
    pub records: Vec<Value>,
}

/// A query being read page by page, so a large result need not be held at once.
pub struct QueryPages<'c> {
    client: &'c SalesforceClient,
    next: Option<Target>,
    /// Top-level records read so far, for the stage's progress.
    read: u64,
}

/// What a GET asks for; resolved against the session's instance URL at send time, so a
/// refreshed session on another instance is followed.
#[derive(Clone)]
enum Target {
    Query(String),
    /// `queryAll`: deleted and merged records too.
    QueryAll(String),
    /// A `nextRecordsUrl` (a path on the instance).
    Path(String),
}

#[derive(Deserialize)]
struct ApiErrorBody {
    message: Option<String>,
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
}

struct QueryResponse {
    total_size: u64,
    done: bool,
    next_records_url: Option<String>,
    records: Vec<Value>,
}

/// A query page's fields beside its records.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryPageHead {
    total_size: u64,
    done: bool,
    next_records_url: Option<String>,
}

impl SalesforceClient {
    /// A client for `config`; nothing is sent until the first query.
    pub fn new(config: SalesforceConfig) -> Result<Self, SalesforceError> {
        validate(&config)?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| SalesforceError::InvalidConfig {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            sessions: Sessions::new(http.clone(), &config),
            http,
            config,
            warned_allowance: AtomicBool::new(false),
        })
    }

    /// How many times a session was requested from the token endpoint (successfully or not).
    pub fn token_requests(&self) -> u64 {
        self.sessions.token_requests()
    }

    /// Where queries go, logging in if needed (the instance URL comes with the session).
    /// Used to size query URLs, see [`super::soql::contacts_queries`].
    pub async fn query_endpoint(&self) -> Result<QueryEndpoint, SalesforceError> {
        let session = self.sessions.current().await?;
        Ok(QueryEndpoint {
            instance_url: session.instance_url,
            api_version: self.config.api_version.clone(),
        })
    }

    /// All records of `soql`, every child relationship complete (`null` where Salesforce
    /// sent `null`, i.e. no rows).
    pub async fn query(&self, soql: &str) -> Result<Vec<Value>, SalesforceError> {
        let mut pages = self.query_pages(soql);
        let mut records = Vec::new();
        while let Some(page) = pages.next_page().await? {
            records.extend(page.records);
        }
        Ok(records)
    }

    /// `soql`'s records one page at a time; each page reports the records read so far and
    /// Salesforce's `totalSize` as the stage's progress.
    pub fn query_pages(&self, soql: &str) -> QueryPages<'_> {
        QueryPages {
            client: self,
            next: Some(Target::Query(soql.to_owned())),
            read: 0,
        }
    }

    /// All records of `soql` through `queryAll`: deleted and merged records too (with
    /// `IsDeleted` true), which is how a change feed learns of them.
    pub async fn query_all(&self, soql: &str) -> Result<Vec<Value>, SalesforceError> {
        let mut pages = QueryPages {
            client: self,
            next: Some(Target::QueryAll(soql.to_owned())),
            read: 0,
        };
        let mut records = Vec::new();
        while let Some(page) = pages.next_page().await? {
            records.extend(page.records);
        }
        Ok(records)
    }

    /// Which org this client reads, as far as its configuration tells: the login endpoint and
    /// the identity it logs in as (a snapshot of one org is never taken for another's).
    pub fn origin(&self) -> String {
        format!(
            "{} {}",
            self.config.token_url,
            self.config.credentials.identity()
        )
    }

    /// GETs a query resource, refreshing the session once if it is refused.
    async fn get(&self, target: &Target) -> Result<Value, SalesforceError> {
        let session = self.sessions.current().await?;
        match self.get_with_retries(&session, target).await {
            Err(Failure::SessionRejected) => {}
            Ok(body) => return Ok(body),
            Err(Failure::Error(error)) => return Err(error),
        }
        tracing::info!("Salesforce session refused; requesting a new one");
        let session = self.sessions.renew(&session).await?;
        match self.get_with_retries(&session, target).await {
            Ok(body) => Ok(body),
            Err(Failure::Error(error)) => Err(error),
            Err(Failure::SessionRejected) => Err(SalesforceError::AuthFailed {
                message: "a newly issued session was refused (INVALID_SESSION_ID)".into(),
            }),
        }
    }

    async fn get_with_retries(&self, session: &Session, target: &Target) -> Result<Value, Failure> {
        let url = match target {
            Target::Query(soql) => {
                format!(
                    "{}{}",
                    session.instance_url,
                    query_path(&self.config.api_version, soql)
                )
            }
            Target::QueryAll(soql) => {
                format!(
                    "{}{}",
                    session.instance_url,
                    query_all_path(&self.config.api_version, soql)
                )
            }
            Target::Path(path) => format!("{}{path}", session.instance_url),
        };
        (|| self.get_once(session, &url))
            .retry(self.config.retry.backoff())
            .when(Failure::is_transient)
            .notify(|failure, delay| {
                calls::count(SERVICE, Call::Retry);
                if let Failure::Error(error) = failure {
                    tracing::warn!(%error, ?delay, "Salesforce request failed; retrying");
                }
            })
            .await
    }

    async fn get_once(&self, session: &Session, url: &str) -> Result<Value, Failure> {
        calls::count(SERVICE, Call::Request);
        let response = self
            .http
            .get(url)
            .bearer_auth(&session.access_token)
            .header(
                "Sforce-Query-Options",
                format!("batchSize={}", self.config.batch_size),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Failure::Error(transport_error(&e)))?;
        let status = response.status();
        self.note_allowance(response.headers());
        let body = response
            .text()
            .await
            .map_err(|e| Failure::Error(transport_error(&e)))?;
        calls::count(SERVICE, Call::Received(body.len() as u64));
        if status.is_success() {
            return serde_json::from_str(&body).map_err(|e| {
                Failure::Error(SalesforceError::InvalidResponse {
                    message: format!("query response is not JSON: {e}"),
                })
            });
        }
        Err(api_failure(status, &body, url.len()))
    }

    /// Records the org's daily API allowance an answer reports (`Sforce-Limit-Info`), and
    /// warns once per client when it is over 80 % used: every integration of the org shares it,
    /// and at 100 % Salesforce refuses every call until the day rolls over.
    fn note_allowance(&self, headers: &reqwest::header::HeaderMap) {
        let Some(reading) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(calls::Allowance::parse_sforce_limit_info)
        else {
            return;
        };
        calls::count(SERVICE, Call::Allowance(reading));
        if reading.ratio() > ALLOWANCE_WARNING
            && !self.warned_allowance.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                used = reading.used,
                limit = reading.limit,
                "Salesforce's daily API allowance is over 80 % used (the whole org's use)"
            );
        }
    }

    /// Fetches the rest of every truncated child set of `record`, before the caller moves the
    /// parent cursor (which would revoke the child cursors).
    async fn complete_child_sets(&self, record: &mut Value) -> Result<(), SalesforceError> {
        let Some(fields) = record.as_object_mut() else {
            return Ok(());
        };
        for value in fields.values_mut() {
            let Some(mut next) = truncated_child_set_url(value) else {
                continue;
            };
            let mut rest = Vec::new();
            loop {
                let page = parse_page(self.get(&Target::Path(next)).await?)?;
                rest.extend(page.records);
                match (page.done, page.next_records_url) {
                    (true, _) => break,
                    (false, Some(url)) => next = url,
                    (false, None) => return Err(missing_next_url()),
                }
            }
            merge_child_pages(value, rest);
        }
        Ok(())
    }
}

impl QueryPages<'_> {
    /// The next page, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<QueryPage>, SalesforceError> {
        let Some(target) = self.next.take() else {
            return Ok(None);
        };
        let page = parse_page(self.client.get(&target).await?)?;
        let mut records = page.records;
        for record in &mut records {
            self.client.complete_child_sets(record).await?;
        }
        self.next = match (page.done, page.next_records_url) {
            (true, _) => None,
            (false, Some(url)) => Some(Target::Path(url)),
            (false, None) => return Err(missing_next_url()),
        };
        self.read += records.len() as u64;
        progress::paged(self.read, Some(page.total_size), self.next.is_none());
        Ok(Some(QueryPage {
            total_size: page.total_size,
            records,
        }))
    }
}

fn validate(config: &SalesforceConfig) -> Result<(), SalesforceError> {
    let invalid = |message: String| Err(SalesforceError::InvalidConfig { message });
    if url::Url::parse(&config.token_url).is_err() {
        return invalid(format!("token_url {:?} is not a URL", config.token_url));
    }
    let version_ok = config
        .api_version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok());
    if !version_ok {
        return invalid(format!(
            "api_version {:?} is not of the form vNN.N",
            config.api_version
        ));
    }
    if !(MIN_BATCH_SIZE..=MAX_BATCH_SIZE).contains(&config.batch_size) {
        return invalid(format!(
            "batch_size {} is outside Salesforce's {MIN_BATCH_SIZE}..={MAX_BATCH_SIZE}",
            config.batch_size
        ));
    }
    Ok(())
}

/// Maps an error status and Salesforce's error array to a failure.
fn api_failure(status: StatusCode, body: &str, url_bytes: usize) -> Failure {
    let first = serde_json::from_str::<Vec<ApiErrorBody>>(body)
        .ok()
        .and_then(|errors| errors.into_iter().next());
    let error_code = first
        .as_ref()
        .and_then(|e| e.error_code.clone())
        .unwrap_or_default();
    let message = first
        .and_then(|e| e.message)
        .unwrap_or_else(|| status.to_string());
    if status == StatusCode::UNAUTHORIZED {
        return Failure::SessionRejected;
    }
    Failure::Error(match (status, error_code.as_str()) {
        (StatusCode::URI_TOO_LONG | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, _) => {
            SalesforceError::UriTooLong {
                status: status.as_u16(),
                length: url_bytes,
            }
        }
        (s, _) if s.is_server_error() => SalesforceError::Transient {
            message: format!("{status} {error_code}: {message}"),
        },
        (_, "MALFORMED_QUERY") => SalesforceError::MalformedQuery { message },
        (_, "INVALID_FIELD" | "INVALID_TYPE") => SalesforceError::InvalidField {
            error_code,
            message,
        },
        (_, "INVALID_QUERY_LOCATOR") => SalesforceError::InvalidQueryLocator { message },
        (_, "REQUEST_LIMIT_EXCEEDED") => SalesforceError::RequestLimitExceeded { message },
        _ => SalesforceError::Api {
            status: status.as_u16(),
            error_code,
            message,
        },
    })
}

/// A query page taken apart: its records are moved out of the body, not built again (as
/// `serde_json::from_value` of the whole page would: a tenth of a full read's CPU).
fn parse_page(body: Value) -> Result<QueryResponse, SalesforceError> {
    let invalid = |message: String| SalesforceError::InvalidResponse {
        message: format!("not a query result: {message}"),
    };
    let Value::Object(mut page) = body else {
        return Err(invalid(format!(
            "a JSON {}, not an object",
            json_type(&body)
        )));
    };
    let records = match page.remove("records") {
        Some(Value::Array(records)) => records,
        Some(other) => {
            return Err(invalid(format!(
                "`records` is a JSON {}, not an array",
                json_type(&other)
            )));
        }
        None => return Err(invalid("missing field `records`".into())),
    };
    let head: QueryPageHead =
        serde_json::from_value(Value::Object(page)).map_err(|e| invalid(e.to_string()))?;
    Ok(QueryResponse {
        total_size: head.total_size,
        done: head.done,
        next_records_url: head.next_records_url,
        records,
    })
}

fn missing_next_url() -> SalesforceError {
    SalesforceError::InvalidResponse {
        message: "a page with done=false has no nextRecordsUrl".into(),
    }
}

/// The `nextRecordsUrl` of a child relationship value `{totalSize, done: false,
/// nextRecordsUrl, records}`; `None` for anything else (fields, lookups, complete sets).
fn truncated_child_set_url(value: &Value) -> Option<String> {
    let set = value.as_object()?;
    if set.get("done") != Some(&Value::Bool(false)) || !set.get("records")?.is_array() {
        return None;
    }
    set.get("nextRecordsUrl")?.as_str().map(str::to_owned)
}

/// Appends the fetched rows and marks the child set complete.
fn merge_child_pages(child_set: &mut Value, rest: Vec<Value>) {
    let Some(set) = child_set.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(records)) = set.get_mut("records") {
        records.extend(rest);
    }
    set.insert("done".into(), Value::Bool(true));
    set.remove("nextRecordsUrl");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::SalesforceCredentials;
    use serde_json::json;

    #[test]
    fn a_query_page_is_taken_apart_and_a_malformed_one_named() {
        let page = parse_page(json!({
            "totalSize": 3, "done": false, "nextRecordsUrl": "/next",
            "records": [{"Id": "a"}, {"Id": "b"}]
        }))
        .unwrap();
        assert_eq!((page.total_size, page.done), (3, false));
        assert_eq!(page.next_records_url.as_deref(), Some("/next"));
        assert_eq!(page.records, vec![json!({"Id": "a"}), json!({"Id": "b"})]);
        for (body, says) in [
            (json!([1]), "a JSON array, not an object"),
            (
                json!({"totalSize": 0, "done": true}),
                "missing field `records`",
            ),
            (
                json!({"totalSize": 0, "done": true, "records": {}}),
                "`records` is a JSON object",
            ),
            (
                json!({"done": true, "records": []}),
                "missing field `totalSize`",
            ),
        ] {
            let error = parse_page(body).err().expect("refused").to_string();
            assert!(
                error.contains("not a query result") && error.contains(says),
                "{error}"
            );
        }
    }

    #[test]
    fn only_truncated_child_sets_are_continued() {
        let truncated =
            json!({"totalSize": 3, "done": false, "nextRecordsUrl": "/x-1", "records": [{}]});
        assert_eq!(truncated_child_set_url(&truncated).as_deref(), Some("/x-1"));
        for other in [
            json!({"totalSize": 1, "done": true, "records": [{}]}),
            json!({"attributes": {"type": "User"}, "Name": "Sam"}),
            Value::Null,
            json!("text"),
        ] {
            assert_eq!(truncated_child_set_url(&other), None, "{other}");
        }
    }

    #[test]
    fn merged_child_sets_are_complete() {
        let mut set =
            json!({"totalSize": 3, "done": false, "nextRecordsUrl": "/x-1", "records": [{"n": 0}]});
        merge_child_pages(&mut set, vec![json!({"n": 1}), json!({"n": 2})]);
        assert_eq!(
            set,
            json!({"totalSize": 3, "done": true, "records": [{"n": 0}, {"n": 1}, {"n": 2}]})
        );
    }

    #[test]
    fn error_arrays_map_to_typed_errors() {
        let body = |code: &str| format!(r#"[{{"message":"m","errorCode":"{code}"}}]"#);
        let error = |status: u16, body: &str| match api_failure(
            StatusCode::from_u16(status).unwrap(),
            body,
            10,
        ) {
            Failure::Error(e) => e,
            Failure::SessionRejected => panic!("unexpected session refusal"),
        };
        assert!(matches!(
            api_failure(StatusCode::UNAUTHORIZED, &body("INVALID_SESSION_ID"), 1),
            Failure::SessionRejected
        ));
        assert!(matches!(
            error(400, &body("MALFORMED_QUERY")),
            SalesforceError::MalformedQuery { .. }
        ));
        assert!(matches!(
            error(400, &body("INVALID_FIELD")),
            SalesforceError::InvalidField { .. }
        ));
        assert!(matches!(
            error(400, &body("INVALID_TYPE")),
            SalesforceError::InvalidField { .. }
        ));
        assert!(matches!(
            error(400, &body("INVALID_QUERY_LOCATOR")),
            SalesforceError::InvalidQueryLocator { .. }
        ));
        assert!(matches!(
            error(403, &body("REQUEST_LIMIT_EXCEEDED")),
            SalesforceError::RequestLimitExceeded { .. }
        ));
        assert_eq!(
            error(414, "<html/>"),
            SalesforceError::UriTooLong {
                status: 414,
                length: 10
            }
        );
        assert_eq!(
            error(431, ""),
            SalesforceError::UriTooLong {
                status: 431,
                length: 10
            }
        );
        assert!(matches!(
            error(503, "oops"),
            SalesforceError::Transient { .. }
        ));
        assert_eq!(
            error(404, &body("NOT_FOUND")),
            SalesforceError::Api {
                status: 404,
                error_code: "NOT_FOUND".into(),
                message: "m".into()
            }
        );
    }

    #[test]
    fn only_outages_and_the_request_allowance_are_retryable() {
        let message = || "m".to_owned();
        assert!(SalesforceError::Transient { message: message() }.is_retryable());
        assert!(SalesforceError::RequestLimitExceeded { message: message() }.is_retryable());
        for permanent in [
            SalesforceError::AuthFailed { message: message() },
            SalesforceError::MalformedQuery { message: message() },
            SalesforceError::InvalidField {
                error_code: "INVALID_FIELD".into(),
                message: message(),
            },
            SalesforceError::InvalidQueryLocator { message: message() },
            SalesforceError::UriTooLong {
                status: 414,
                length: 1,
            },
            SalesforceError::InvalidConfig { message: message() },
        ] {
            assert!(!permanent.is_retryable(), "{permanent:?}");
        }
    }

    #[test]
    fn the_client_debug_output_holds_no_secret() {
        let config = SalesforceConfig::new(
            "https://login.salesforce.com/services/oauth2/token",
            "v62.0",
            SalesforceCredentials::ClientCredentials {
                client_id: "app".into(),
                client_secret: "s3cr3t".into(),
            },
        );
        let shown = format!("{:?}", SalesforceClient::new(config).unwrap());
        assert!(
            shown.contains("app") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[test]
    fn configurations_are_checked_up_front() {
        let credentials = SalesforceCredentials::ClientCredentials {
            client_id: "a".into(),
            client_secret: "b".into(),
        };
        let good = SalesforceConfig::new(
            "https://login.salesforce.com/services/oauth2/token",
            "v62.0",
            credentials,
        );
        assert!(SalesforceClient::new(good.clone()).is_ok());
        for bad in [
            SalesforceConfig {
                token_url: "not a url".into(),
                ..good.clone()
            },
            SalesforceConfig {
                api_version: "62".into(),
                ..good.clone()
            },
            SalesforceConfig {
                batch_size: 100,
                ..good.clone()
            },
        ] {
            assert!(matches!(
                SalesforceClient::new(bad),
                Err(SalesforceError::InvalidConfig { .. })
            ));
        }
    }
}
