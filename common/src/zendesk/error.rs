//! Zendesk failures, typed from the status and whichever of Zendesk's error envelopes the
//! body uses (apis.md A9), so a stage can tell "try again later" from "fix the data".

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Map, Value};

/// Longest excerpt of a non-JSON error body kept in a message (an HTML error page is long).
const BODY_EXCERPT_CHARS: usize = 300;

/// Why a Zendesk call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZendeskError {
    /// 401: the email or API token is wrong, or the token was revoked.
    #[error("Zendesk authentication failed: {message}")]
    AuthFailed { message: String },
    /// 403: the API user may not do this (or, for Create Many Users, bulk import is off).
    #[error("Zendesk refused access: {message}")]
    Forbidden { message: String },
    /// 404: no such record or endpoint.
    #[error("Zendesk found nothing there: {message}")]
    NotFound { message: String },
    /// 422 on a single-record call: the record is invalid (`DuplicateValue`, `InvalidValue`…).
    #[error("Zendesk rejected the record: {message}")]
    Validation {
        message: String,
        details: Vec<ValidationDetail>,
    },
    /// Any other 4xx: the request itself is wrong.
    #[error("Zendesk answered {status}: {message}")]
    Api { status: u16, message: String },
    /// 429 that persisted through the client's retries (or asked for a longer wait than the
    /// client will sit through).
    #[error("Zendesk kept throttling: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// `TooManyJobs` that persisted while this client held no job of its own to wait for.
    #[error("Zendesk has too many jobs queued or running: {message}")]
    TooManyJobs {
        message: String,
        /// Zendesk documents no `Retry-After` for this; kept in case one is sent.
        retry_after: Option<Duration>,
    },
    /// 5xx, timeouts and connection failures that persisted through the client's retries.
    #[error("Zendesk is unavailable: {message}")]
    Transient { message: String },
    /// A write that must not be sent twice failed in a way that may have landed (a 5xx, a
    /// timeout, a connection broken after sending): what became of it is unknown.
    #[error("Zendesk's answer was lost: {message}")]
    AnswerLost { message: String },
    /// A success status with a body that is not what the API documents.
    #[error("unexpected Zendesk response: {message}")]
    InvalidResponse { message: String },
    /// The client's configuration cannot work.
    #[error("invalid Zendesk configuration: {message}")]
    InvalidConfig { message: String },
}

impl ZendeskError {
    /// Whether the same call may succeed later: outages and throttling. The stage maps these
    /// to `Retryable` so Step Functions tries again after its own backoff.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::TooManyJobs { .. }
                | Self::Transient { .. }
                | Self::AnswerLost { .. }
        )
    }
}

/// One entry of a 422's `details`: `{"name": [{"error": "DuplicateValue", "description": …}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationDetail {
    /// The attribute (`name`, `email`, `organization_fields`…) or `base`.
    pub field: String,
    /// `DuplicateValue`, `InvalidValue`, `BlankValue`…
    pub error: Option<String>,
    /// Human text, localised to the account's language.
    pub description: Option<String>,
}

/// What an error body says, whichever envelope it came in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ErrorBody {
    /// `RecordInvalid`, `TooManyJobs`, `Couldn't authenticate you`, a `code` of `errors[]`.
    pub code: Option<String>,
    pub description: Option<String>,
    pub details: Vec<ValidationDetail>,
}

impl ErrorBody {
    /// Reads `{error, description, details}`, `{error: {title, message}}`,
    /// `{errors: [{code, title}]}` or anything else (kept as an excerpt).
    pub(super) fn parse(body: &str) -> Self {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(envelope)) => Self::from_envelope(&envelope)
                .unwrap_or_else(|| Self::excerpt(&Value::Object(envelope).to_string())),
            _ => Self::excerpt(body),
        }
    }

    fn from_envelope(envelope: &Map<String, Value>) -> Option<Self> {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        if let Some(error) = envelope.get("error") {
            let (code, nested_description) = match error {
                Value::String(code) => (Some(code.clone()), None),
                Value::Object(inner) => (
                    text(inner.get("title")).or_else(|| text(inner.get("code"))),
                    text(inner.get("message")),
                ),
                _ => (None, None),
            };
            return Some(ErrorBody {
                code,
                description: text(envelope.get("description")).or(nested_description),
                details: envelope
                    .get("details")
                    .map(validation_details)
                    .unwrap_or_default(),
            });
        }
        let errors = envelope.get("errors")?.as_array()?;
        let first = errors.first().and_then(Value::as_object);
        let titles: Vec<String> = errors
            .iter()
            .filter_map(|e| text(e.get("title")).or_else(|| text(e.get("detail"))))
            .collect();
        Some(ErrorBody {
            code: first.and_then(|e| text(e.get("code"))),
            description: (!titles.is_empty()).then(|| titles.join("; ")),
            details: Vec::new(),
        })
    }

    fn excerpt(body: &str) -> Self {
        let collapsed = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut excerpt: String = collapsed.chars().take(BODY_EXCERPT_CHARS).collect();
        if collapsed.chars().count() > BODY_EXCERPT_CHARS {
            excerpt.push('…');
        }
        ErrorBody {
            code: None,
            description: (!excerpt.is_empty()).then_some(excerpt),
            details: Vec::new(),
        }
    }

    /// `RecordInvalid: Record validation errors (name DuplicateValue: Name: X has already
    /// been taken)`, or `fallback` when the body said nothing.
    pub(super) fn summary(&self, fallback: &str) -> String {
        let mut text = match (&self.code, &self.description) {
            (Some(code), Some(description)) => format!("{code}: {description}"),
            (Some(one), None) | (None, Some(one)) => one.clone(),
            (None, None) => fallback.to_owned(),
        };
        if !self.details.is_empty() {
            let details: Vec<String> = self.details.iter().map(detail_text).collect();
            let _ = write!(text, " ({})", details.join("; "));
        }
        text
    }
}

fn detail_text(detail: &ValidationDetail) -> String {
    let mut text = detail.field.clone();
    if let Some(error) = &detail.error {
        let _ = write!(text, " {error}");
    }
    if let Some(description) = &detail.description {
        let _ = write!(text, ": {description}");
    }
    text
}

/// `details` is documented as a map from attribute to a list of `{description, error}`; any
/// other shape is kept as text under `base` rather than lost.
fn validation_details(details: &Value) -> Vec<ValidationDetail> {
    let Some(by_field) = details.as_object() else {
        return match details {
            Value::Null => Vec::new(),
            Value::String(text) => vec![base_detail(text.clone())],
            other => vec![base_detail(other.to_string())],
        };
    };
    let mut out = Vec::new();
    for (field, entries) in by_field {
        let entries = match entries {
            Value::Array(entries) => entries.as_slice(),
            single => std::slice::from_ref(single),
        };
        for entry in entries {
            let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
            out.push(ValidationDetail {
                field: field.clone(),
                error: text("error"),
                description: text("description").or_else(|| entry.as_str().map(str::to_owned)),
            });
        }
    }
    out
}

fn base_detail(description: String) -> ValidationDetail {
    ValidationDetail {
        field: "base".into(),
        error: None,
        description: Some(description),
    }
}

/// A failed answer, typed. `TooManyJobs` is recognised by its body whatever the status
/// (the docs do not state the status; apis.md A7).
pub(super) fn from_response(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
) -> ZendeskError {
    let parsed = ErrorBody::parse(body);
    let message = parsed.summary(&format!("HTTP {status}"));
    if parsed.code.as_deref() == Some("TooManyJobs") {
        return ZendeskError::TooManyJobs {
            message,
            retry_after,
        };
    }
    match status {
        401 => ZendeskError::AuthFailed { message },
        403 => ZendeskError::Forbidden { message },
        404 => ZendeskError::NotFound { message },
        422 => ZendeskError::Validation {
            message,
            details: parsed.details,
        },
        429 => ZendeskError::RateLimited {
            message,
            retry_after,
        },
        500..=599 => ZendeskError::Transient {
            message: format!("HTTP {status}: {message}"),
        },
        _ => ZendeskError::Api { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_envelope_gives_a_useful_message() {
        let cases = [
            (
                401,
                r#"{"error":"Couldn't authenticate you"}"#,
                "Couldn't authenticate you",
            ),
            (
                404,
                r#"{"error":"RecordNotFound","description":"Not found"}"#,
                "RecordNotFound: Not found",
            ),
            (
                403,
                r#"{"error":{"title":"Forbidden","message":"You do not have access"}}"#,
                "Forbidden: You do not have access",
            ),
            (
                400,
                r#"{"errors":[{"code":"QueryError","title":"Invalid type:sample_type"}]}"#,
                "QueryError: Invalid type:sample_type",
            ),
            (
                503,
                "<html>\n  <body>Service   Unavailable</body></html>",
                "<html> <body>Service Unavailable</body></html>",
            ),
            (502, "", "HTTP 502"),
        ];
        for (status, body, expected) in cases {
            let error = from_response(status, None, body);
            assert!(error.to_string().contains(expected), "{error} ∌ {expected}");
        }
    }

    #[test]
    fn validation_details_are_kept_field_by_field() {
        let body = r#"{"error":"RecordInvalid","description":"Record validation errors",
            "details":{"name":[{"description":"Name: Acme has already been taken","error":"DuplicateValue"}],
                       "organization_fields":[{"description":"support_level: x is invalid","error":"InvalidValue"}]}}"#;
        let ZendeskError::Validation { message, details } = from_response(422, None, body) else {
            panic!("not a validation error");
        };
        assert_eq!(details.len(), 2);
        assert_eq!(details[0].field, "name");
        assert_eq!(details[0].error.as_deref(), Some("DuplicateValue"));
        assert!(
            message.starts_with(
                "RecordInvalid: Record validation errors (name DuplicateValue: Name: Acme"
            ),
            "{message}"
        );
        assert!(
            message.contains("organization_fields InvalidValue"),
            "{message}"
        );
    }

    #[test]
    fn odd_detail_shapes_are_kept_as_text() {
        let body = r#"{"error":"RecordInvalid","details":"email is bad"}"#;
        let ZendeskError::Validation { details, .. } = from_response(422, None, body) else {
            panic!("not a validation error");
        };
        assert_eq!(details[0].field, "base");
        assert_eq!(details[0].description.as_deref(), Some("email is bad"));
    }

    #[test]
    fn too_many_jobs_is_recognised_by_body_whatever_the_status() {
        let body =
            r#"{"error":"TooManyJobs","description":"Too many jobs","current_job_ids":["a"]}"#;
        for status in [429, 400, 409, 503] {
            assert!(matches!(
                from_response(status, None, body),
                ZendeskError::TooManyJobs { .. }
            ));
        }
    }

    #[test]
    fn statuses_map_to_variants_and_retryability() {
        let retry_after = Some(Duration::from_secs(7));
        let throttled = from_response(429, retry_after, "{}");
        assert!(
            matches!(&throttled, ZendeskError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 7)
        );
        assert!(throttled.is_retryable());
        assert!(from_response(500, None, "").is_retryable());
        assert!(matches!(
            from_response(409, None, "{}"),
            ZendeskError::Api { status: 409, .. }
        ));
        for permanent in [401, 403, 404, 422, 400] {
            assert!(
                !from_response(permanent, None, "{}").is_retryable(),
                "{permanent}"
            );
        }
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(5000);
        let message = from_response(500, None, &body).to_string();
        assert!(message.len() < 400, "{}", message.len());
        assert!(message.ends_with('…'));
    }
}
