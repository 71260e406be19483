//! The Incremental Organization Export (apis.md A10): the organizations created or changed
//! since a Unix time, oldest change first, a page at a time.
//!
//! It is Zendesk's time-based export: each page answers with the second of its last item
//! (`end_time`) and a `next_page` that starts there, inclusively, so an item can come twice
//! across pages; a client de-duplicates by id. What the exports share (the parameters, the
//! minute held back) is the parent module's.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{check_not_future, invalid, parse_start_time, per_page, settled_at};
use crate::zendesk::errors::ZendeskError;
use crate::zendesk::request::RequestUrl;
use crate::zendesk::state::InstanceState;
use crate::zendesk::store::InstanceData;

/// `GET /api/v2/incremental/organizations?start_time=…[&per_page=…]`.
pub(crate) async fn export(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let request = ExportRequest::from_url(&url)?;
    let data = state.data();
    let now = data.now();
    check_not_future(request.start_time, now)?;
    let page = TimePage::cut(
        organization_changes(&data, request.start_time, settled_at(now)),
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
        let start_time = url
            .query
            .get("start_time")
            .ok_or_else(|| invalid("start_time is required (a Unix time in seconds)"))
            .and_then(parse_start_time)?;
        Ok(ExportRequest {
            start_time,
            per_page: per_page(&url.query)?,
        })
    }
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
