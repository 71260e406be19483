//! Zendesk's error envelopes (apis.md A9). Zendesk mixes three shapes; each variant answers
//! in the one the docs show for that case.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug)]
pub(crate) enum ZendeskError {
    Unauthorized,
    RecordNotFound,
    InvalidEndpoint,
    RecordInvalid(RecordInvalid),
    Forbidden,
    /// `{error, description}` with status 400 (bad parameters or body).
    BadRequest {
        error: &'static str,
        description: String,
    },
    /// A search query this emulator does not understand (shape of the OAS `QueryError`).
    QueryError(String),
    /// A per-minute request limit: the account-wide one, or the incremental exports' own,
    /// which answer alike.
    RateLimited {
        retry_after: u64,
    },
    /// A per-record limit such as 5 updates per organization per minute.
    RecordRateLimited {
        retry_after: u64,
    },
    TooManyJobs {
        job_type: &'static str,
        current_job_ids: Vec<String>,
        inflight_header: HeaderValue,
    },
}

impl ZendeskError {
    pub(crate) fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        ZendeskError::BadRequest {
            error,
            description: description.into(),
        }
    }
}

impl From<RecordInvalid> for ZendeskError {
    fn from(invalid: RecordInvalid) -> Self {
        ZendeskError::RecordInvalid(invalid)
    }
}

impl IntoResponse for ZendeskError {
    fn into_response(self) -> Response {
        match self {
            ZendeskError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "Couldn't authenticate you"})),
            )
                .into_response(),
            ZendeskError::RecordNotFound => described(
                StatusCode::NOT_FOUND,
                "RecordNotFound",
                "Not found".into(),
            ),
            ZendeskError::InvalidEndpoint => described(
                StatusCode::NOT_FOUND,
                "InvalidEndpoint",
                "Not found".into(),
            ),
            ZendeskError::RecordInvalid(invalid) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": invalid.details_json(),
                })),
            )
                .into_response(),
            ZendeskError::Forbidden => described(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "You do not have access to this page. Please contact the account owner of this help desk for further help.".into(),
            ),
            ZendeskError::BadRequest { error, description } => {
                described(StatusCode::BAD_REQUEST, error, description)
            }
            ZendeskError::QueryError(title) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"errors": [{"code": "QueryError", "title": title}]})),
            )
                .into_response(),
            ZendeskError::RateLimited { retry_after } => with_retry_after(
                described(
                    StatusCode::TOO_MANY_REQUESTS,
                    "APIRateLimitExceeded",
                    "Number of allowed API requests per minute exceeded".into(),
                ),
                retry_after,
            ),
            ZendeskError::RecordRateLimited { retry_after } => with_retry_after(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"errors": [{"code": "TooManyRequests", "title": "Too many requests to update"}]})),
                )
                    .into_response(),
                retry_after,
            ),
            ZendeskError::TooManyJobs {
                job_type,
                current_job_ids,
                inflight_header,
            } => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({
                        "error": "TooManyJobs",
                        "description": format!("Too many {job_type} jobs are currently queued or running. Try again later."),
                        "current_job_ids": current_job_ids,
                    })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(super::headers::INFLIGHT_HEADER, inflight_header);
                response
            }
        }
    }
}

fn described(status: StatusCode, error: &str, description: String) -> Response {
    (
        status,
        Json(json!({"error": error, "description": description})),
    )
        .into_response()
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Validation failures of one record, by attribute (`name`, `email`, `organization_fields`…).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RecordInvalid {
    details: BTreeMap<String, Vec<ErrorDetail>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ErrorDetail {
    pub description: String,
    pub error: &'static str,
}

impl RecordInvalid {
    pub(crate) fn single(attribute: &str, error: &'static str, description: String) -> Self {
        let mut invalid = RecordInvalid::default();
        invalid.add(attribute, error, description);
        invalid
    }

    pub(crate) fn add(&mut self, attribute: &str, error: &'static str, description: String) {
        self.details
            .entry(attribute.to_owned())
            .or_default()
            .push(ErrorDetail { description, error });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.details.is_empty()
    }

    pub(crate) fn into_result(self) -> Result<(), RecordInvalid> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    pub(crate) fn details_json(&self) -> Value {
        serde_json::to_value(&self.details).expect("error details serialize")
    }

    /// The code a job result carries for this record (`DuplicateValue`, `InvalidValue`…).
    pub(crate) fn code(&self) -> &'static str {
        self.details
            .values()
            .flatten()
            .map(|detail| detail.error)
            .next()
            .unwrap_or("RecordInvalid")
    }

    /// The human text a job result carries for this record.
    pub(crate) fn summary(&self) -> String {
        self.details
            .values()
            .flatten()
            .map(|detail| detail.description.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}
