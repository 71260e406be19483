//! `GET /services/data/vNN.N/query?q=…`, `GET /services/data/vNN.N/queryAll?q=…` and
//! `GET /services/data/vNN.N/query/{locator}`
//! (reference/apis.md B2): session check, API usage, batch size, then the SOQL engine and
//! the pager.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::SalesforceState;
use super::api_error::ApiError;
use super::state::QueryRequest;

/// Salesforce's default, minimum and maximum `batchSize` (SF-QOH).
const DEFAULT_BATCH_SIZE: usize = 2000;
const MIN_BATCH_SIZE: usize = 200;
const MAX_BATCH_SIZE: usize = 2000;

/// Runs a query and returns its first page.
pub async fn query(
    State(state): State<Arc<SalesforceState>>,
    Path(version): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    run_query(&state, &version, raw.as_deref(), &headers, false)
}

/// `queryAll`: the same, with deleted and merged records (`IsDeleted = true`) included.
pub async fn query_all(
    State(state): State<Arc<SalesforceState>>,
    Path(version): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    run_query(&state, &version, raw.as_deref(), &headers, true)
}

fn run_query(
    state: &SalesforceState,
    version: &str,
    raw: Option<&str>,
    headers: &HeaderMap,
    include_deleted: bool,
) -> Response {
    with_api_request(state, headers, version, || {
        let soql = query_parameter(raw).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_QUERY",
                "A query string has to be specified",
            )
        })?;
        state.query(&QueryRequest {
            soql: &soql,
            api_version: version,
            batch_size: batch_size(state, headers),
            include_deleted,
        })
    })
}

/// Continues a query from a `nextRecordsUrl` (parent or child cursor).
pub async fn query_more(
    State(state): State<Arc<SalesforceState>>,
    Path((version, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    with_api_request(&state, &headers, &version, || state.query_more(&locator))
}

/// The checks every data API request passes, in Salesforce's order: a live session (401),
/// an existing API version (404), the daily request limit (403). Every response after the
/// session check carries `Sforce-Limit-Info`.
fn with_api_request(
    state: &SalesforceState,
    headers: &HeaderMap,
    version: &str,
    handle: impl FnOnce() -> Result<Value, ApiError>,
) -> Response {
    let session_ok = bearer_token(headers).is_some_and(|token| state.session_is_valid(token));
    if !session_ok {
        return ApiError::invalid_session().into_response();
    }
    if !version_supported(state, version) {
        return ApiError::not_found().into_response();
    }
    let (result, used, limit) = match state.count_api_request() {
        Ok((used, limit)) => (handle(), used, limit),
        Err((refusal, used, limit)) => (Err(refusal), used, limit),
    };
    let mut response = match result {
        Ok(page) => Json(page).into_response(),
        Err(error) => error.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&format!("api-usage={used}/{limit}")) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

/// `Authorization: Bearer <token>` (Salesforce also accepts the older `OAuth <token>`).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("OAuth "))
        .map(str::trim)
}

/// `vNN.N` within the configured range.
fn version_supported(state: &SalesforceState, version: &str) -> bool {
    let Some((major, minor)) = version.strip_prefix('v').and_then(|v| v.split_once('.')) else {
        return false;
    };
    let options = state.options();
    match (major.parse::<u32>(), minor) {
        (Ok(major), "0") => (options.min_api_version..=options.max_api_version).contains(&major),
        _ => false,
    }
}

/// The `q` parameter, decoded (`+` and `%20` are both spaces).
fn query_parameter(raw: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(raw?.as_bytes())
        .find(|(name, _)| name == "q")
        .map(|(_, value)| value.into_owned())
        .filter(|q| !q.trim().is_empty())
}

/// `Sforce-Query-Options: batchSize=N`, clamped to Salesforce's 200..=2000 (the docs do not
/// say what happens outside it; the emulator clamps, and ignores an unreadable header), then
/// to the emulator's own cap.
fn batch_size(state: &SalesforceState, headers: &HeaderMap) -> usize {
    let requested = headers
        .get("sforce-query-options")
        .and_then(|h| h.to_str().ok())
        .and_then(|options| {
            options.split(',').find_map(|option| {
                let (name, value) = option.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("batchSize")
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            })
        })
        .unwrap_or(DEFAULT_BATCH_SIZE);
    requested
        .clamp(MIN_BATCH_SIZE, MAX_BATCH_SIZE)
        .min(state.options().max_batch_size)
        .max(1)
}
