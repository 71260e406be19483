//! Salesforce's request size limit (SF-KB386264): "the maximum length for the combined URI and
//! headers is 16,384 bytes … exceeding this limit returns a 431 … If the URI itself exceeds
//! this limit, the request returns a 414". The URI is measured as it arrived (path and query,
//! including the prefix the router is nested under); each header as `name: value\r\n`.
//! Salesforce documents no body for these two; the emulator sends its usual error array
//! with descriptive codes of its own.

use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api_error::ApiError;

/// The combined limit, in bytes.
pub const MAX_URI_AND_HEADERS_BYTES: usize = 16_384;

/// Refuses requests over the limit before any handler runs.
pub async fn enforce(request: Request, next: Next) -> Response {
    let uri_bytes = request
        .extensions()
        .get::<OriginalUri>()
        .map_or(request.uri(), |original| &original.0)
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_bytes > MAX_URI_AND_HEADERS_BYTES {
        return ApiError::new(StatusCode::URI_TOO_LONG, "URI_TOO_LONG", "URI Too Long")
            .into_response();
    }
    if uri_bytes + header_bytes(request.headers()) > MAX_URI_AND_HEADERS_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
            "Request Header Fields Too Large",
        )
        .into_response();
    }
    next.run(request).await
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}
