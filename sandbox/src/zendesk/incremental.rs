//! The Incremental Organization Export (apis.md A10): the organizations created or changed
//! since a Unix time, oldest change first, a page at a time.
//!
//! It is Zendesk's time-based export: each page answers with the second of its last item
//! (`end_time`) and a `next_page` that starts there, inclusively, so an item can come twice
//! across pages; a client de-duplicates by id. Changes of the last minute (by the sandbox
//! clock) are held back, as Zendesk holds them back "to ensure the accuracy of the data", and
//! reach a later request. The endpoint's own rate limit is `limits.rs`'s.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::errors::ZendeskError;
use super::request::RequestUrl;
use super::state::InstanceState;
use super::store::InstanceData;

/// Items a page holds when the request names no `per_page`, and the most it may name.
const MAX_PER_PAGE: usize = 1000;
/// How recent a change may be and still be exported: "any items that were created or changed
/// within the minute prior to your request are excluded".
const HELD_BACK: TimeDelta = TimeDelta::seconds(60);

/// `GET /api/v2/incremental/organizations?start_time=…[&per_page=…]`.
pub(crate) async fn organizations(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let request = ExportRequest::from_url(&url)?;
    let data = state.data();
    let now = data.now();
    request.check_not_future(now)?;
    let page = TimePage::cut(
        organization_changes(&data, request.start_time, now - HELD_BACK),
        request.start_time,
        request.per_page,
    );
    let organizations: Vec<Value> = page
        .ids
        .iter()
        .map(|id| data.render_organization(*id))
        .collect();
    Ok(Json(json!({
        "count": organizations.len(),
        "organizations": organizations,
        "end_time": page.end_time,
        "next_page": next_page(&url, &state.server_url, page.end_time),
        "end_of_stream": page.end_of_stream,
    })))
}

/// What the request asks for.
struct ExportRequest {
    /// Unix seconds: the export holds changes at or after it.
    start_time: i64,
    per_page: usize,
}

impl ExportRequest {
    fn from_url(url: &RequestUrl) -> Result<Self, ZendeskError> {
        let start_time = match url.query.get("start_time") {
            None => return Err(invalid("start_time is required (a Unix time in seconds)")),
            Some(raw) => raw.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(|| {
                invalid(format!(
                    "start_time must be a Unix time in whole seconds; got {raw:?}"
                ))
            })?,
        };
        let per_page = match url.query.get("per_page") {
            None => MAX_PER_PAGE,
            // As offset pages do: a bad number is refused, a big one served at the maximum.
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ZendeskError::bad_request(
                        "InvalidPaginationParameter",
                        "per_page must be a positive integer",
                    )
                })?
                .min(MAX_PER_PAGE),
        };
        Ok(ExportRequest {
            start_time,
            per_page,
        })
    }

    fn check_not_future(&self, now: DateTime<Utc>) -> Result<(), ZendeskError> {
        if self.start_time > now.timestamp() {
            return Err(invalid("start_time cannot be in the future"));
        }
        Ok(())
    }
}

/// Zendesk's `InvalidValue` for a bad parameter (it answers a bad `start_time` so).
fn invalid(description: impl Into<String>) -> ZendeskError {
    ZendeskError::bad_request("InvalidValue", description)
}

/// One record's place in the export: the second of its last change (as the API shows
/// `updated_at`, to the second), then its id.
type Change = (i64, u64);

/// The organizations changed at or after `start_time` and before `settled` (changes since
/// then are held back), in no particular order.
fn organization_changes(
    data: &InstanceData,
    start_time: i64,
    settled: DateTime<Utc>,
) -> Vec<Change> {
    data.organizations
        .values()
        .filter(|org| org.updated_at < settled)
        .map(|org| (org.updated_at.timestamp(), org.id))
        .filter(|(second, _)| *second >= start_time)
        .collect()
}

/// One page of an export.
#[derive(Debug, PartialEq)]
struct TimePage {
    ids: Vec<u64>,
    end_time: i64,
    end_of_stream: bool,
}

impl TimePage {
    /// The first `per_page` changes in order, and then the rest of the last one's second: a
    /// page never splits a second (as Zendesk's time-based export keeps one together), so
    /// the next page, which starts at a whole second, repeats whole seconds only.
    fn cut(mut changes: Vec<Change>, start_time: i64, per_page: usize) -> TimePage {
        changes.sort_unstable();
        let mut len = changes.len().min(per_page);
        if let Some(&(last_second, _)) = len.checked_sub(1).and_then(|i| changes.get(i)) {
            len += changes[len..]
                .iter()
                .take_while(|(second, _)| *second == last_second)
                .count();
        }
        let end_of_stream = len == changes.len();
        let page = &changes[..len];
        let end_time = match (page.first(), page.last()) {
            // A page of one second (one item, even) with more to come: the next page
            // starting at that second would be this page again, for ever. It holds the whole
            // second, so the next may start after it without losing anything.
            (Some(&(first, _)), Some(&(last, _))) if first == last && !end_of_stream => last + 1,
            (_, Some(&(last, _))) => last,
            _ => start_time,
        };
        TimePage {
            ids: page.iter().map(|(_, id)| *id).collect(),
            end_time,
            end_of_stream,
        }
    }
}

/// The same export from `end_time` on, the request's other parameters (`per_page`) kept.
fn next_page(url: &RequestUrl, server_url: &str, end_time: i64) -> String {
    let mut params = vec![("start_time".to_owned(), end_time.to_string())];
    params.extend(url.query.without(|key| key == "start_time"));
    url.link(server_url, &params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(changes: &[Change], start_time: i64, per_page: usize) -> TimePage {
        TimePage::cut(changes.to_vec(), start_time, per_page)
    }

    #[test]
    fn changes_come_in_time_then_id_order() {
        let cut = page(&[(20, 1), (10, 3), (10, 2)], 5, 10);
        assert_eq!(
            cut,
            TimePage {
                ids: vec![2, 3, 1],
                end_time: 20,
                end_of_stream: true
            }
        );
    }

    #[test]
    fn a_page_runs_over_to_keep_a_second_together() {
        let changes = [(10, 1), (11, 2), (11, 3), (11, 4), (12, 5)];
        let first = page(&changes, 0, 2);
        assert_eq!(first.ids, vec![1, 2, 3, 4]);
        assert_eq!((first.end_time, first.end_of_stream), (11, false));
        // The next page starts at 11 again: its items repeat, then the rest follows.
        let later: Vec<Change> = changes.iter().copied().filter(|c| c.0 >= 11).collect();
        let second = page(&later, 11, 4);
        assert_eq!(second.ids, vec![2, 3, 4, 5]);
        assert_eq!((second.end_time, second.end_of_stream), (12, true));
    }

    #[test]
    fn a_page_of_one_crowded_second_moves_on_past_it() {
        let changes = [(11, 1), (11, 2), (11, 3), (12, 4)];
        let first = page(&changes, 11, 2);
        assert_eq!(first.ids, vec![1, 2, 3]);
        assert_eq!((first.end_time, first.end_of_stream), (12, false));
        // So does a page of one item.
        let single = page(&[(11, 1), (12, 2)], 0, 1);
        assert_eq!((single.ids, single.end_time), (vec![1], 12));
        // At the end of the stream it keeps the second it ended with.
        let last = page(&changes[..3], 11, 2);
        assert_eq!((last.end_time, last.end_of_stream), (11, true));
    }

    #[test]
    fn an_empty_page_ends_where_it_started() {
        assert_eq!(
            page(&[], 42, 10),
            TimePage {
                ids: vec![],
                end_time: 42,
                end_of_stream: true
            }
        );
    }
}
