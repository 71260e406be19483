//! Zendesk's limit headers, as the rate and job limits write them.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};

pub(crate) const INFLIGHT_HEADER: HeaderName =
    HeaderName::from_static("zendesk-ratelimit-inflight-jobs");

/// `total=30; remaining=N; resets=S` (apis.md A7).
pub(crate) fn inflight_header(total: usize, remaining: usize, resets: Duration) -> HeaderValue {
    let value = format!(
        "total={total}; remaining={remaining}; resets={}",
        ceil_secs(resets)
    );
    HeaderValue::from_str(&value).expect("ascii header value")
}

pub(crate) fn ceil_secs(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}
