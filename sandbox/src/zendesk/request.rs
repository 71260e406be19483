//! Request plumbing shared by the handlers: query parameters, JSON bodies, path ids and the
//! absolute URL a response's links are built from.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use serde_json::{Map, Value};

use super::errors::ZendeskError;

/// The request's query string, in order, with repeated keys (`role[]=a&role[]=b`) kept.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub(crate) fn parse(query: &str) -> Self {
        QueryParams(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn get_all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The parameters without those `drop` selects: what a pagination link carries over.
    pub(crate) fn without(&self, drop: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        self.0.iter().filter(|(k, _)| !drop(k)).cloned().collect()
    }

    /// A comma-separated list parameter (`ids=1,2,3`), empty items dropped.
    pub(crate) fn list(&self, key: &str) -> Option<Vec<String>> {
        self.get(key).map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }
}

/// What a handler needs to know about the request URL: its query, and the absolute URL
/// (without query) that next/previous links point at.
pub(crate) struct RequestUrl {
    pub query: QueryParams,
    pub path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let OriginalUri(uri) = OriginalUri::from_request_parts(parts, state).await?;
        Ok(RequestUrl {
            query: QueryParams::parse(uri.query().unwrap_or_default()),
            path: uri.path().to_owned(),
        })
    }
}

impl RequestUrl {
    pub(crate) fn link(&self, server_url: &str, params: &[(String, String)]) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        format!("{server_url}{}?{query}", self.path)
    }
}

/// The JSON object body of a write, or Zendesk's 400 for anything else.
pub(crate) fn json_object(body: &Bytes) -> Result<Map<String, Value>, ZendeskError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ZendeskError::bad_request(
            "InvalidValue",
            "The request body must be a JSON object",
        )),
        Err(e) => Err(ZendeskError::bad_request(
            "InvalidValue",
            format!("The request body is not valid JSON: {e}"),
        )),
    }
}

/// The object under `key` (`{"organization": {...}}`), or Rails' `ParameterMissing`.
pub(crate) fn root_object(
    body: &Map<String, Value>,
    key: &str,
) -> Result<Map<String, Value>, ZendeskError> {
    match body.get(key) {
        Some(Value::Object(map)) => Ok(map.clone()),
        _ => Err(missing(key)),
    }
}

/// The array under `key` (`{"organizations": [...]}`), each item an object, at most 100.
pub(crate) fn root_array(
    body: &Map<String, Value>,
    key: &str,
) -> Result<Vec<Map<String, Value>>, ZendeskError> {
    let Some(Value::Array(items)) = body.get(key) else {
        return Err(missing(key));
    };
    check_batch_size(items.len())?;
    items
        .iter()
        .map(|item| {
            item.as_object().cloned().ok_or_else(|| {
                ZendeskError::bad_request(
                    "InvalidValue",
                    format!("Each item of {key} must be an object"),
                )
            })
        })
        .collect()
}

pub(crate) fn check_batch_size(len: usize) -> Result<(), ZendeskError> {
    if len > MAX_BATCH {
        return Err(ZendeskError::bad_request(
            "TooManyValues",
            format!("A maximum of {MAX_BATCH} records may be sent at a time; got {len}"),
        ));
    }
    Ok(())
}

/// Bulk and show-many endpoints take up to 100 records (apis.md A3, A5).
pub(crate) const MAX_BATCH: usize = 100;

fn missing(key: &str) -> ZendeskError {
    ZendeskError::bad_request(
        "ParameterMissing",
        format!("param is missing or the value is empty: {key}"),
    )
}

/// A numeric record id from the path; anything else names no record.
pub(crate) fn path_id(raw: &str) -> Result<u64, ZendeskError> {
    raw.parse().map_err(|_| ZendeskError::RecordNotFound)
}

/// The records a show_many names with `?ids=` or `?external_ids=` (up to 100), in request
/// order; ones that do not exist are left out.
pub(crate) fn requested_records(
    url: &RequestUrl,
    exists: impl Fn(u64) -> bool,
    by_external_id: impl Fn(&str) -> Option<u64>,
) -> Result<Vec<u64>, ZendeskError> {
    match (url.query.list("ids"), url.query.list("external_ids")) {
        (Some(ids), None) => Ok(numeric_ids(&ids)?
            .into_iter()
            .filter(|id| exists(*id))
            .collect()),
        (None, Some(external_ids)) => {
            check_batch_size(external_ids.len())?;
            Ok(external_ids
                .iter()
                .filter_map(|e| by_external_id(e))
                .collect())
        }
        _ => Err(ZendeskError::bad_request(
            "InvalidParameters",
            "Provide either ids or external_ids",
        )),
    }
}

/// Comma-separated numeric ids (`?ids=`); a non-number is a bad request.
pub(crate) fn numeric_ids(items: &[String]) -> Result<Vec<u64>, ZendeskError> {
    check_batch_size(items.len())?;
    items
        .iter()
        .map(|item| {
            item.parse().map_err(|_| {
                ZendeskError::bad_request("InvalidValue", format!("{item:?} is not a valid id"))
            })
        })
        .collect()
}
