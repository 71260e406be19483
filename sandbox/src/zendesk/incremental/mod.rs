//! Zendesk's incremental exports (apis.md A10): the records created or changed since a point,
//! oldest change first, a page at a time. The Incremental Organization Export is time-based
//! (`organizations.rs`); the Incremental User Export is served in its cursor-based form
//! (`users.rs`, its cursors `cursor.rs`).
//!
//! What they share is here: the `start_time` and `per_page` parameters, the errors for them,
//! and the minute of changes held back. Changes of the last minute (by the sandbox clock) are
//! left out, as Zendesk leaves them out "to ensure the accuracy of the data", and reach a later
//! request. Their own rate limit, one window for all of them, is `limits.rs`'s.

mod cursor;
pub(super) mod organizations;
pub(super) mod users;

use chrono::{DateTime, TimeDelta, Utc};

use super::errors::ZendeskError;
use super::request::QueryParams;

/// Items a page holds when the request names no `per_page`, and the most it may name.
const MAX_PER_PAGE: usize = 1000;
/// How recent a change may be and still be exported: "any items that were created or changed
/// within the minute prior to your request are excluded".
const HELD_BACK: TimeDelta = TimeDelta::seconds(60);

/// The instant before which a change is old enough to export at `now`.
fn settled_at(now: DateTime<Utc>) -> DateTime<Utc> {
    now - HELD_BACK
}

/// `start_time`: Unix seconds, a whole number not before the epoch.
fn parse_start_time(raw: &str) -> Result<i64, ZendeskError> {
    raw.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(|| {
        invalid(format!(
            "start_time must be a Unix time in whole seconds; got {raw:?}"
        ))
    })
}

/// A start after the sandbox clock's now asks for changes that cannot have happened yet.
fn check_not_future(start_time: i64, now: DateTime<Utc>) -> Result<(), ZendeskError> {
    if start_time > now.timestamp() {
        return Err(invalid("start_time cannot be in the future"));
    }
    Ok(())
}

/// `per_page`, or the maximum without one. As offset pages do: a bad number is refused, a big
/// one served at the maximum.
fn per_page(query: &QueryParams) -> Result<usize, ZendeskError> {
    let Some(raw) = query.get("per_page") else {
        return Ok(MAX_PER_PAGE);
    };
    let per_page = raw
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ZendeskError::bad_request(
                "InvalidPaginationParameter",
                "per_page must be a positive integer",
            )
        })?;
    Ok(per_page.min(MAX_PER_PAGE))
}

/// Zendesk's `InvalidValue` for a bad parameter (it answers a bad `start_time` so).
fn invalid(description: impl Into<String>) -> ZendeskError {
    ZendeskError::bad_request("InvalidValue", description)
}
