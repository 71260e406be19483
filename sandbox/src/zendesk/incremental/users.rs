//! The Incremental User Export in its cursor-based form (apis.md A10): the users of every role
//! created or changed since a Unix time, oldest change first, a page at a time.
//!
//! The first request names a `start_time`; every answer gives an `after_cursor` (and an
//! `after_url` with it) for the next. Unlike the time-based export no item comes twice, and
//! the last page still gives a cursor: a client keeps it and polls with it later for what has
//! changed since (`cursor.rs`). What the exports share is the parent module's.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::cursor::{CursorPage, Position};
use super::{check_not_future, invalid, parse_start_time, per_page, settled_at};
use crate::zendesk::errors::ZendeskError;
use crate::zendesk::request::RequestUrl;
use crate::zendesk::state::InstanceState;
use crate::zendesk::store::InstanceData;

/// `GET /api/v2/incremental/users/cursor?start_time=…` for the first page, then
/// `…?cursor=<after_cursor>` (either with an optional `per_page`).
pub(crate) async fn cursor_export(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let request = CursorRequest::from_url(&url)?;
    let data = state.data();
    let now = data.now();
    let after = request.from.position(now)?;
    let page = CursorPage::cut(
        user_changes(&data, settled_at(now)),
        after,
        request.per_page,
    );
    let users: Vec<Value> = page.ids.iter().map(|id| data.render_user(*id)).collect();
    let after_cursor = page.after.encode();
    let next_url = after_url(&url, &state.server_url, &after_cursor);
    Ok(Json(json!({
        "users": users,
        "after_cursor": after_cursor,
        "after_url": next_url,
        // The export only goes forward.
        "before_cursor": null,
        "before_url": null,
        "end_of_stream": page.end_of_stream,
    })))
}

/// What the request asks for.
struct CursorRequest {
    from: StartingPoint,
    per_page: usize,
}

/// Where a request takes up the stream.
enum StartingPoint {
    /// The first page: changes at or after these Unix seconds.
    StartTime(i64),
    /// A later one: changes strictly after the place an earlier answer's cursor marks.
    Cursor(Position),
}

impl CursorRequest {
    /// A `cursor` wins over a `start_time` sent with it: the cursor carries the place the
    /// stream has reached, which a client following `after_url` must not lose.
    fn from_url(url: &RequestUrl) -> Result<Self, ZendeskError> {
        let from = match (url.query.get("cursor"), url.query.get("start_time")) {
            (Some(cursor), _) => StartingPoint::Cursor(Position::decode(cursor)?),
            (None, Some(start_time)) => StartingPoint::StartTime(parse_start_time(start_time)?),
            (None, None) => {
                return Err(invalid(
                    "start_time (a Unix time in seconds) is required without a cursor",
                ));
            }
        };
        Ok(CursorRequest {
            from,
            per_page: per_page(&url.query)?,
        })
    }
}

impl StartingPoint {
    /// The place the page starts after; a start time must not be later than `now`.
    fn position(&self, now: DateTime<Utc>) -> Result<Position, ZendeskError> {
        match self {
            StartingPoint::StartTime(start_time) => {
                check_not_future(*start_time, now)?;
                Ok(Position::before(*start_time))
            }
            StartingPoint::Cursor(position) => Ok(*position),
        }
    }
}

/// The users of every role last changed before `settled` (changes since then are held back),
/// in no particular order.
fn user_changes(data: &InstanceData, settled: DateTime<Utc>) -> Vec<Position> {
    data.users
        .values()
        .filter(|user| user.updated_at < settled)
        .map(|user| Position::new(user.updated_at, user.id))
        .collect()
}

/// This export from `after_cursor` on, the request's other parameters (`per_page`) kept and
/// its `start_time` dropped: the cursor says where to go on from.
fn after_url(url: &RequestUrl, server_url: &str, after_cursor: &str) -> String {
    let mut params = vec![("cursor".to_owned(), after_cursor.to_owned())];
    params.extend(
        url.query
            .without(|key| key == "cursor" || key == "start_time"),
    );
    url.link(server_url, &params)
}
