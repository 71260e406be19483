//! What the HTTP clients share about failed requests.

/// A failed request in words, for an error message: what went wrong (timeout, connection,
/// unreadable body) and the innermost cause. Never the URL: it can hold a query, an email
/// address or a webhook secret.
pub fn describe_failure(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the response body could not be read"
    } else {
        "the request failed"
    };
    let root_cause =
        std::iter::successors(std::error::Error::source(error), |cause| cause.source())
            .last()
            .map(|cause| format!(": {cause}"))
            .unwrap_or_default();
    format!("{kind}{root_cause}")
}
