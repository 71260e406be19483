//! Salesforce failures, typed from the REST error array (`[{"message", "errorCode"}]`,
//! reference/apis.md B3) so a stage can tell "try again later" from "fix the query".

/// Why a Salesforce call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SalesforceError {
    /// The token endpoint refused the credentials, or the org rejected a freshly issued
    /// session too. Retrying does not help; the credentials or the app need fixing.
    #[error("Salesforce authentication failed: {message}")]
    AuthFailed { message: String },
    /// `MALFORMED_QUERY`: the SOQL does not parse.
    #[error("Salesforce rejected the query as malformed: {message}")]
    MalformedQuery { message: String },
    /// `INVALID_FIELD` / `INVALID_TYPE`: the SOQL names a field, object or relationship the
    /// org does not have.
    #[error("Salesforce rejected the query ({error_code}): {message}")]
    InvalidField { error_code: String, message: String },
    /// `INVALID_QUERY_LOCATOR`: a cursor expired or was revoked.
    #[error("Salesforce query cursor is no longer valid: {message}")]
    InvalidQueryLocator { message: String },
    /// `REQUEST_LIMIT_EXCEEDED`: the org's API request allowance is used up.
    #[error("Salesforce API request limit exceeded: {message}")]
    RequestLimitExceeded { message: String },
    /// 414 (URI) or 431 (URI plus headers) over Salesforce's 16,384-byte limit.
    #[error("Salesforce refused a {length}-byte request URI with status {status}")]
    UriTooLong { status: u16, length: usize },
    /// 5xx, timeouts and connection failures that persisted through the client's retries.
    #[error("Salesforce is unavailable: {message}")]
    Transient { message: String },
    /// Any other error status.
    #[error("Salesforce answered {status} {error_code}: {message}")]
    Api {
        status: u16,
        error_code: String,
        message: String,
    },
    /// A success status with a body that is not what the API documents.
    #[error("unexpected Salesforce response: {message}")]
    InvalidResponse { message: String },
    /// The client's configuration cannot work (bad URL, unreadable private key).
    #[error("invalid Salesforce configuration: {message}")]
    InvalidConfig { message: String },
}

impl SalesforceError {
    /// Whether the same call may succeed later: outages, and the request allowance (it
    /// refills over 24 hours; the state machine's retry decides whether to wait for it).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Transient { .. } | Self::RequestLimitExceeded { .. }
        )
    }
}

/// Timeouts, refused connections and broken bodies: the request may work next time.
pub(super) fn transport_error(error: &reqwest::Error) -> SalesforceError {
    SalesforceError::Transient {
        message: crate::http::describe_failure(error),
    }
}
