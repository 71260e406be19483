//! Where a cursor-based export stands, and the page it answers from there.
//!
//! A cursor marks a place in the order of changes, (`updated_at`, id), not a page: the next
//! request answers the changes strictly after it, whatever happened in between. So a cursor
//! taken at the end of the stream can be kept and used later, and the changes made since then
//! come, each once, as the newest ones: a change stamps the sandbox clock's now, which is later
//! than every change that was old enough to be exported when the cursor was given.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};

use super::invalid;
use crate::zendesk::errors::ZendeskError;

const NANOS_PER_SECOND: u32 = 1_000_000_000;

/// One record's place in the export: the instant of its last change, to the nanosecond (a
/// cursor must tell apart changes the API shows in the same second), then its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Position {
    at: DateTime<Utc>,
    id: u64,
}

impl Position {
    pub(super) fn new(at: DateTime<Utc>, id: u64) -> Self {
        Position { at, id }
    }

    /// Just before every change at or after `start_time` (Unix seconds): the last place of
    /// the nanosecond before it, so that "strictly after" takes the whole second in, whatever
    /// ids a fixture chose.
    pub(super) fn before(start_time: i64) -> Self {
        let at = DateTime::from_timestamp(start_time, 0)
            .and_then(|start| start.checked_sub_signed(TimeDelta::nanoseconds(1)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Position { at, id: u64::MAX }
    }

    /// The opaque cursor: base64 of the text Zendesk's own cursors hold, `<unix
    /// time>||<id>|`, the time here with all nine fraction digits.
    pub(super) fn encode(&self) -> String {
        let text = format!(
            "{}.{:09}||{}|",
            self.at.timestamp(),
            self.at.timestamp_subsec_nanos(),
            self.id
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// The place a cursor marks. Only a cursor as [`Position::encode`] writes it is valid:
    /// the same place must always be the same text.
    pub(super) fn decode(cursor: &str) -> Result<Self, ZendeskError> {
        Self::parse(cursor)
            .filter(|position| position.encode() == cursor)
            .ok_or_else(|| invalid("cursor is not a cursor this export gave"))
    }

    fn parse(cursor: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (time, id) = text.strip_suffix('|')?.split_once("||")?;
        let (seconds, nanos) = time.split_once('.')?;
        // Not a leap second's 1_000_000_000 and more: chrono's extra nanoseconds are no
        // instant a record is stamped with.
        let nanos = nanos.parse().ok().filter(|n| *n < NANOS_PER_SECOND)?;
        let at = DateTime::from_timestamp(seconds.parse().ok()?, nanos)?;
        Some(Position {
            at,
            id: id.parse().ok()?,
        })
    }
}

/// One page of a cursor-based export.
#[derive(Debug, PartialEq)]
pub(super) struct CursorPage {
    pub ids: Vec<u64>,
    /// After the page's last item, or where the request stood when the page is empty: the
    /// next request goes on from here, now or after the stream has grown.
    pub after: Position,
    /// Nothing exportable is left after the page.
    pub end_of_stream: bool,
}

impl CursorPage {
    /// The first `per_page` of `changes` (all the exportable ones, in any order) strictly
    /// after `after`.
    pub(super) fn cut(changes: Vec<Position>, after: Position, per_page: usize) -> CursorPage {
        let mut later: Vec<Position> = changes.into_iter().filter(|c| *c > after).collect();
        later.sort_unstable();
        let end_of_stream = later.len() <= per_page;
        later.truncate(per_page);
        CursorPage {
            ids: later.iter().map(|position| position.id).collect(),
            after: later.last().copied().unwrap_or(after),
            end_of_stream,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, nanos: u32, id: u64) -> Position {
        Position::new(DateTime::from_timestamp(seconds, nanos).expect("time"), id)
    }

    #[test]
    fn a_cursor_reads_back_as_the_place_it_marks() {
        for position in [
            at(1_576_613_539, 0, 467),
            at(5, 123_456_789, 1),
            at(-3, 1, 9),
        ] {
            assert_eq!(Position::decode(&position.encode()).ok(), Some(position));
        }
        let text = URL_SAFE_NO_PAD
            .decode(at(1_576_613_539, 0, 467).encode())
            .expect("base64");
        assert_eq!(text, b"1576613539.000000000||467|");
    }

    #[test]
    fn anything_else_is_not_a_cursor() {
        let other = |text: &str| URL_SAFE_NO_PAD.encode(text);
        for bad in [
            String::new(),
            "not base64!".into(),
            other("1576613539.0||467|"),
            other("1576613539.000000000||467"),
            other("1576613539.000000000|467|"),
            other("1576613539.000000000||-1|"),
            other("x.000000000||1|"),
            other("5.1000000000||1|"),
            URL_SAFE_NO_PAD.encode(30u64.to_string()),
        ] {
            assert!(
                matches!(
                    Position::decode(&bad),
                    Err(ZendeskError::BadRequest {
                        error: "InvalidValue",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_start_time_takes_in_its_whole_second_and_nothing_before() {
        let changes = vec![at(9, 999_999_999, u64::MAX), at(10, 0, 0), at(10, 1, 7)];
        let page = CursorPage::cut(changes, Position::before(10), 10);
        assert_eq!(page.ids, vec![0, 7]);
        // An empty first page's cursor is the start itself, read back as any other.
        let empty = Position::before(10);
        assert_eq!(Position::decode(&empty.encode()).ok(), Some(empty));
    }

    #[test]
    fn pages_go_on_strictly_after_the_cursor() {
        let changes = vec![at(20, 0, 1), at(10, 0, 3), at(10, 0, 2), at(10, 5, 1)];
        let first = CursorPage::cut(changes.clone(), Position::before(0), 2);
        assert_eq!(first.ids, vec![2, 3]);
        assert_eq!((first.after, first.end_of_stream), (at(10, 0, 3), false));
        let second = CursorPage::cut(changes.clone(), first.after, 2);
        assert_eq!(second.ids, vec![1, 1]);
        assert_eq!((second.after, second.end_of_stream), (at(20, 0, 1), true));
        // Caught up: an empty page that keeps the place, for the next poll.
        let caught_up = CursorPage::cut(changes, second.after, 2);
        assert_eq!(
            caught_up,
            CursorPage {
                ids: vec![],
                after: at(20, 0, 1),
                end_of_stream: true
            }
        );
    }

    #[test]
    fn a_page_that_takes_the_last_items_ends_the_stream() {
        let changes = vec![at(1, 0, 1), at(2, 0, 2)];
        let page = CursorPage::cut(changes, Position::before(0), 2);
        assert_eq!((page.ids, page.end_of_stream), (vec![1, 2], true));
    }
}
