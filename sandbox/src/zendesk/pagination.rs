//! Cursor and offset pagination (apis.md A1).
//!
//! Cursor pages are requested with `page[size]` (1–100; more is a 400, see FIXTURE.md) and
//! walk records in id order (or, for a list sorted otherwise, in the order of its
//! [`CursorKey`]). Cursors are opaque: base64 of the boundary record's key. Like Zendesk, the
//! last page still carries `after_cursor` and `links.next`; only `meta.has_more` says to stop.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::errors::ZendeskError;
use super::request::RequestUrl;

pub(crate) const MAX_PAGE_SIZE: usize = 100;
/// Offset pagination stops at 10,000 records (apis.md A1).
const MAX_OFFSET_RECORDS: usize = 10_000;
const CURSOR_PREFIX: &str = "zdsb:";

/// What a cursor marks: a record id, or the sort key of a list not sorted by id. Keys sort
/// in page order; a cursor is the key's text, prefixed and base64-encoded.
pub(crate) trait CursorKey: Ord + Clone {
    fn to_text(&self) -> String;
    fn from_text(text: &str) -> Option<Self>;
}

impl CursorKey for u64 {
    fn to_text(&self) -> String {
        self.to_string()
    }

    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageRequest<K = u64> {
    Cursor {
        size: usize,
        after: Option<K>,
        before: Option<K>,
    },
    Offset(Offset),
}

/// A 1-based page of `per_page` records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Offset {
    pub page: usize,
    pub per_page: usize,
}

impl Offset {
    /// Everything a show_many may return, on one page.
    pub(crate) const SHOW_MANY: Offset = Offset {
        page: 1,
        per_page: super::request::MAX_BATCH,
    };

    /// `page` and `per_page` (search endpoints only paginate this way).
    pub(crate) fn from_url(url: &RequestUrl) -> Result<Self, ZendeskError> {
        let number = |key: &str, default: usize| -> Result<usize, ZendeskError> {
            match url.query.get(key) {
                None => Ok(default),
                Some(raw) => raw.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ZendeskError::bad_request(
                        "InvalidPaginationParameter",
                        format!("{key} must be a positive integer"),
                    )
                }),
            }
        };
        let page = number("page", 1)?;
        // Zendesk quietly serves at most 100 per offset page.
        let per_page = number("per_page", MAX_PAGE_SIZE)?.min(MAX_PAGE_SIZE);
        if (page - 1) * per_page >= MAX_OFFSET_RECORDS {
            return Err(ZendeskError::bad_request(
                "InvalidPaginationParameter",
                format!(
                    "Offset pagination is limited to {MAX_OFFSET_RECORDS} records; use cursor pagination"
                ),
            ));
        }
        Ok(Offset { page, per_page })
    }
}

impl<K: CursorKey> PageRequest<K> {
    /// A cursor page when any `page[…]` parameter is given, an offset page otherwise.
    pub(crate) fn from_url(url: &RequestUrl) -> Result<Self, ZendeskError> {
        let cursor_mode = ["page[size]", "page[after]", "page[before]"]
            .iter()
            .any(|k| url.query.has(k));
        if cursor_mode {
            return Self::cursor_from_url(url);
        }
        Offset::from_url(url).map(PageRequest::Offset)
    }

    /// A cursor page, for lists that only paginate that way: without `page[size]` a page
    /// holds 100.
    pub(crate) fn cursor_from_url(url: &RequestUrl) -> Result<Self, ZendeskError> {
        let query = &url.query;
        let size = match query.get("page[size]") {
            Some(raw) => page_size(raw)?,
            None => MAX_PAGE_SIZE,
        };
        Ok(PageRequest::Cursor {
            size,
            after: query.get("page[after]").map(decode_cursor).transpose()?,
            before: query.get("page[before]").map(decode_cursor).transpose()?,
        })
    }
}

fn page_size(raw: &str) -> Result<usize, ZendeskError> {
    raw.parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
        .ok_or_else(|| {
            ZendeskError::bad_request(
                "InvalidPaginationParameter",
                format!("page[size] must be an integer from 1 to {MAX_PAGE_SIZE}; got {raw:?}"),
            )
        })
}

pub(crate) fn encode_cursor<K: CursorKey>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{}", key.to_text()))
}

fn decode_cursor<K: CursorKey>(raw: &str) -> Result<K, ZendeskError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| K::from_text(text.strip_prefix(CURSOR_PREFIX)?))
        .ok_or_else(|| ZendeskError::bad_request("InvalidPaginationParameter", "Invalid cursor"))
}

/// One page of the records `ids` (sorted ascending) under `key`, in the form the request
/// asked for. Only the records on the page are rendered.
pub(crate) fn page<K: CursorKey>(
    ids: Vec<K>,
    request: PageRequest<K>,
    key: &str,
    url: &RequestUrl,
    server_url: &str,
    render: impl Fn(K) -> Value,
) -> Value {
    match request {
        PageRequest::Cursor {
            size,
            after,
            before,
        } => {
            let (selected, has_more) = cursor_select(ids, size, after, before);
            cursor_body(selected, has_more, size, key, url, server_url, render)
        }
        PageRequest::Offset(offset) => offset_page(ids, offset, key, url, server_url, render),
    }
}

fn cursor_select<K: CursorKey>(
    ids: Vec<K>,
    size: usize,
    after: Option<K>,
    before: Option<K>,
) -> (Vec<K>, bool) {
    if let Some(before) = before {
        let mut earlier: Vec<K> = ids.into_iter().filter(|id| *id < before).collect();
        let start = earlier.len().saturating_sub(size);
        return (earlier.split_off(start), start > 0);
    }
    let mut later = ids
        .into_iter()
        .filter(|id| after.as_ref().is_none_or(|a| id > a));
    let selected: Vec<K> = later.by_ref().take(size).collect();
    let has_more = later.next().is_some();
    (selected, has_more)
}

fn cursor_body<K: CursorKey>(
    selected: Vec<K>,
    has_more: bool,
    size: usize,
    key: &str,
    url: &RequestUrl,
    server_url: &str,
    render: impl Fn(K) -> Value,
) -> Value {
    let after_cursor = selected.last().map(encode_cursor);
    let before_cursor = selected.first().map(encode_cursor);
    let carried = url.query.without(|k| k.starts_with("page["));
    let link = |direction: &str, cursor: &Option<String>| {
        cursor.as_ref().map(|cursor| {
            let mut params = carried.clone();
            params.push(("page[size]".into(), size.to_string()));
            params.push((direction.into(), cursor.clone()));
            url.link(server_url, &params)
        })
    };
    let mut body = Map::new();
    body.insert(
        key.to_owned(),
        Value::Array(selected.into_iter().map(render).collect()),
    );
    body.insert(
        "meta".into(),
        json!({"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor}),
    );
    body.insert(
        "links".into(),
        json!({"next": link("page[after]", &after_cursor), "prev": link("page[before]", &before_cursor)}),
    );
    Value::Object(body)
}

pub(crate) fn offset_page<K>(
    ids: Vec<K>,
    Offset { page, per_page }: Offset,
    key: &str,
    url: &RequestUrl,
    server_url: &str,
    render: impl Fn(K) -> Value,
) -> Value {
    let count = ids.len();
    let start = (page - 1) * per_page;
    let selected: Vec<Value> = ids
        .into_iter()
        .skip(start)
        .take(per_page)
        .map(render)
        .collect();
    let carried = url.query.without(|k| k == "page" || k == "per_page");
    let link = |number: usize| {
        let mut params = carried.clone();
        params.push(("page".into(), number.to_string()));
        params.push(("per_page".into(), per_page.to_string()));
        url.link(server_url, &params)
    };
    let next_page = (start + per_page < count).then(|| link(page + 1));
    let previous_page = (page > 1).then(|| link(page - 1));
    let mut body = Map::new();
    body.insert(key.to_owned(), Value::Array(selected));
    body.insert("next_page".into(), json!(next_page));
    body.insert("previous_page".into(), json!(previous_page));
    body.insert("count".into(), json!(count));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zendesk::request::QueryParams;

    fn url(query: &str) -> RequestUrl {
        RequestUrl {
            query: QueryParams::parse(query),
            path: "/zendesk/global/api/v2/organizations".into(),
        }
    }

    fn records(n: u64) -> Vec<u64> {
        (1..=n).map(|id| id * 10).collect()
    }

    fn render(id: u64) -> Value {
        json!({"id": id})
    }

    fn ids(body: &Value) -> Vec<u64> {
        body["organizations"]
            .as_array()
            .expect("array")
            .iter()
            .map(|o| o["id"].as_u64().expect("id"))
            .collect()
    }

    #[test]
    fn cursor_walks_forward_and_back() {
        let first_url = url("page[size]=2");
        let request = PageRequest::<u64>::from_url(&first_url).expect("valid");
        let first = page(
            records(5),
            request,
            "organizations",
            &first_url,
            "http://h",
            render,
        );
        assert_eq!(ids(&first), vec![10, 20]);
        assert_eq!(first["meta"]["has_more"], json!(true));
        let next = first["links"]["next"].as_str().expect("next link");
        assert!(next.starts_with("http://h/zendesk/global/api/v2/organizations?"));

        let after = first["meta"]["after_cursor"].as_str().expect("cursor");
        let second_url = url(&format!("page[size]=2&page[after]={after}"));
        let request = PageRequest::<u64>::from_url(&second_url).expect("valid");
        let second = page(
            records(5),
            request,
            "organizations",
            &second_url,
            "http://h",
            render,
        );
        assert_eq!(ids(&second), vec![30, 40]);

        let before = second["meta"]["before_cursor"].as_str().expect("cursor");
        let back_url = url(&format!("page[size]=2&page[before]={before}"));
        let request = PageRequest::<u64>::from_url(&back_url).expect("valid");
        let back = page(
            records(5),
            request,
            "organizations",
            &back_url,
            "http://h",
            render,
        );
        assert_eq!(ids(&back), vec![10, 20]);
        assert_eq!(back["meta"]["has_more"], json!(false));
    }

    #[test]
    fn last_page_keeps_cursor_but_has_no_more() {
        let u = url(&format!(
            "page[size]=3&page[after]={}",
            encode_cursor(&30u64)
        ));
        let request = PageRequest::<u64>::from_url(&u).expect("valid");
        let last = page(records(5), request, "organizations", &u, "http://h", render);
        assert_eq!(ids(&last), vec![40, 50]);
        assert_eq!(last["meta"]["has_more"], json!(false));
        assert!(last["links"]["next"].is_string());
    }

    #[test]
    fn empty_page_has_null_cursors() {
        let u = url("page[size]=3");
        let request = PageRequest::<u64>::from_url(&u).expect("valid");
        let empty = page(Vec::new(), request, "organizations", &u, "http://h", render);
        assert_eq!(empty["meta"]["after_cursor"], Value::Null);
        assert_eq!(empty["links"]["next"], Value::Null);
    }

    #[test]
    fn rejects_bad_sizes_and_cursors() {
        for query in [
            "page[size]=101",
            "page[size]=0",
            "page[size]=x",
            "page[after]=nope",
        ] {
            assert!(
                PageRequest::<u64>::from_url(&url(query)).is_err(),
                "{query}"
            );
        }
    }

    #[test]
    fn offset_pages_count_and_link() {
        let u = url("page=2&per_page=2&name=x");
        let request = PageRequest::<u64>::from_url(&u).expect("valid");
        let body = page(records(5), request, "organizations", &u, "http://h", render);
        assert_eq!(ids(&body), vec![30, 40]);
        assert_eq!(body["count"], json!(5));
        let next = body["next_page"].as_str().expect("next");
        assert!(next.contains("page=3") && next.contains("name=x"));
        assert!(
            body["previous_page"]
                .as_str()
                .expect("prev")
                .contains("page=1")
        );
    }
}
