//! Query cursors and the pages cut from them (reference/apis.md B2).
//!
//! - A page holds parents until the batch is full; each parent costs itself plus the child
//!   rows it carries inline ("child objects count toward the number of records for the batch
//!   size"). A page always holds at least one parent.
//! - A parent whose child set is larger than the child page size carries only the first page
//!   of it, `done: false`, and a `nextRecordsUrl` of its own child cursor.
//! - Continuing the parent cursor invalidates the child cursors of the page before ("a
//!   queryMore() call on a parent object invalidates all child cursors in the previous
//!   result set"): a client must finish children before it advances the parent.
//! - A parent cursor is forgotten once its last page is served; cursors expire after the
//!   configured lifetime (2 days for API 56.0+).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::api_error::ApiError;
use super::ids;
use super::soql::{ChildRows, ResultRow};

/// The open cursors of the org, by cursor id.
#[derive(Debug, Default)]
pub struct Cursors {
    open: HashMap<String, Cursor>,
    minted: u64,
}

#[derive(Debug)]
enum Cursor {
    Parents(ParentCursor),
    Children(ChildCursor),
}

/// The result of a top-level query.
#[derive(Debug)]
struct ParentCursor {
    rows: Vec<ResultRow>,
    page: PageSpec,
    /// Child cursors handed out with the most recent page; the next page revokes them.
    child_cursors: Vec<String>,
}

/// The rest of one parent's child rows.
#[derive(Debug)]
struct ChildCursor {
    records: Vec<Value>,
    page: PageSpec,
}

/// What every page of a cursor shares.
#[derive(Debug, Clone)]
pub struct PageSpec {
    pub api_version: String,
    pub batch_size: usize,
    pub child_page_size: usize,
    pub opened: Instant,
}

impl Cursors {
    /// Opens a cursor over a query result and returns its first page.
    pub fn open(&mut self, rows: Vec<ResultRow>, page: PageSpec) -> Value {
        let id = self.mint_id();
        self.open.insert(
            id.clone(),
            Cursor::Parents(ParentCursor {
                rows,
                page,
                child_cursors: Vec::new(),
            }),
        );
        self.serve_parents(&id, 0)
            .expect("a cursor just opened is valid at offset 0")
    }

    /// Serves `{cursorId}-{offset}`.
    pub fn more(&mut self, locator: &str, lifetime: Duration) -> Result<Value, ApiError> {
        let (id, offset) = parse_locator(locator).ok_or_else(ApiError::invalid_locator)?;
        let cursor = self.open.get(id).ok_or_else(ApiError::invalid_locator)?;
        if cursor.expired(lifetime) {
            self.open.remove(id);
            return Err(ApiError::invalid_locator());
        }
        if matches!(cursor, Cursor::Parents(_)) {
            self.serve_parents(id, offset)
        } else {
            self.serve_children(id, offset)
        }
    }

    /// Forgets cursors older than `lifetime`.
    pub fn prune(&mut self, lifetime: Duration) {
        for id in self.expired_ids(lifetime) {
            self.open.remove(&id);
        }
    }

    /// How many cursors are open (parents still unread, and child cursors not yet revoked).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    fn expired_ids(&self, lifetime: Duration) -> Vec<String> {
        self.open
            .iter()
            .filter(|(_, cursor)| cursor.expired(lifetime))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn mint_id(&mut self) -> String {
        self.minted += 1;
        ids::mint("01g", self.minted)
    }

    fn serve_parents(&mut self, id: &str, offset: usize) -> Result<Value, ApiError> {
        let Some(Cursor::Parents(mut cursor)) = self.open.remove(id) else {
            return Err(ApiError::invalid_locator());
        };
        if offset > cursor.rows.len() {
            self.open.insert(id.to_owned(), Cursor::Parents(cursor));
            return Err(ApiError::invalid_locator());
        }
        for revoked in cursor.child_cursors.drain(..) {
            self.open.remove(&revoked);
        }
        let end = page_end(&cursor.rows, offset, &cursor.page);
        let records: Vec<Value> = cursor.rows[offset..end]
            .iter()
            .map(|row| self.render_row(row, &cursor.page, &mut cursor.child_cursors))
            .collect();
        let done = end == cursor.rows.len();
        let body = page_body(cursor.rows.len(), done, id, end, &cursor.page, records);
        if !done {
            self.open.insert(id.to_owned(), Cursor::Parents(cursor));
        }
        Ok(body)
    }

    fn serve_children(&mut self, id: &str, offset: usize) -> Result<Value, ApiError> {
        let Some(Cursor::Children(cursor)) = self.open.get(id) else {
            return Err(ApiError::invalid_locator());
        };
        if offset > cursor.records.len() {
            return Err(ApiError::invalid_locator());
        }
        let end = (offset + cursor.page.batch_size).min(cursor.records.len());
        let done = end == cursor.records.len();
        let records = cursor.records[offset..end].to_vec();
        Ok(page_body(
            cursor.records.len(),
            done,
            id,
            end,
            &cursor.page,
            records,
        ))
    }

    /// The parent record with each child set filled in: `null` when empty, inline when it fits
    /// the child page, otherwise truncated behind a new child cursor.
    fn render_row(
        &mut self,
        row: &ResultRow,
        page: &PageSpec,
        child_cursors: &mut Vec<String>,
    ) -> Value {
        let mut record: Map<String, Value> = row.record.clone();
        for children in &row.children {
            let rendered = self.render_children(children, page, child_cursors);
            record.insert(children.relationship.clone(), rendered);
        }
        Value::Object(record)
    }

    fn render_children(
        &mut self,
        children: &ChildRows,
        page: &PageSpec,
        child_cursors: &mut Vec<String>,
    ) -> Value {
        let total = children.records.len();
        if total == 0 {
            return Value::Null;
        }
        if total <= page.child_page_size {
            return json!({"totalSize": total, "done": true, "records": children.records});
        }
        let id = self.mint_id();
        let first_page = children.records[..page.child_page_size].to_vec();
        let next = next_records_url(&page.api_version, &id, page.child_page_size);
        self.open.insert(
            id.clone(),
            Cursor::Children(ChildCursor {
                records: children.records.clone(),
                page: page.clone(),
            }),
        );
        child_cursors.push(id);
        json!({"totalSize": total, "done": false, "nextRecordsUrl": next, "records": first_page})
    }
}

impl Cursor {
    fn expired(&self, lifetime: Duration) -> bool {
        let opened = match self {
            Cursor::Parents(c) => c.page.opened,
            Cursor::Children(c) => c.page.opened,
        };
        opened.elapsed() >= lifetime
    }
}

/// Where the page starting at `offset` ends: parents are added while the batch has room.
fn page_end(rows: &[ResultRow], offset: usize, page: &PageSpec) -> usize {
    let mut used = 0;
    let mut end = offset;
    for row in &rows[offset..] {
        let cost = 1 + row
            .children
            .iter()
            .map(|c| c.records.len().min(page.child_page_size))
            .sum::<usize>();
        if end > offset && used + cost > page.batch_size {
            break;
        }
        used += cost;
        end += 1;
    }
    end
}

fn page_body(
    total: usize,
    done: bool,
    id: &str,
    end: usize,
    page: &PageSpec,
    records: Vec<Value>,
) -> Value {
    let mut body = Map::new();
    body.insert("totalSize".into(), json!(total));
    body.insert("done".into(), json!(done));
    if !done {
        body.insert(
            "nextRecordsUrl".into(),
            json!(next_records_url(&page.api_version, id, end)),
        );
    }
    body.insert("records".into(), Value::Array(records));
    Value::Object(body)
}

fn next_records_url(api_version: &str, id: &str, offset: usize) -> String {
    format!("/services/data/{api_version}/query/{id}-{offset}")
}

/// `{cursorId}-{offset}`.
fn parse_locator(locator: &str) -> Option<(&str, usize)> {
    let (id, offset) = locator.rsplit_once('-')?;
    let offset = offset.parse().ok()?;
    (!id.is_empty()).then_some((id, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, children: usize) -> ResultRow {
        let mut record = Map::new();
        record.insert("Name".into(), json!(name));
        record.insert("Kids__r".into(), Value::Null);
        ResultRow {
            record,
            children: vec![ChildRows {
                relationship: "Kids__r".into(),
                records: (0..children).map(|i| json!({"N": i})).collect(),
            }],
        }
    }

    fn spec(batch_size: usize, child_page_size: usize) -> PageSpec {
        PageSpec {
            api_version: "v62.0".into(),
            batch_size,
            child_page_size,
            opened: Instant::now(),
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    fn locator(url: &Value) -> String {
        url.as_str().unwrap().rsplit('/').next().unwrap().to_owned()
    }

    #[test]
    fn child_rows_count_toward_the_batch() {
        let mut cursors = Cursors::default();
        let rows = vec![row("a", 2), row("b", 0), row("c", 1), row("d", 0)];
        let first = cursors.open(rows, spec(4, 10));
        // a costs 3, b costs 1: the batch of 4 is full.
        assert_eq!(first["records"].as_array().unwrap().len(), 2);
        assert_eq!(first["totalSize"], 4);
        assert_eq!(first["done"], false);
        assert_eq!(first["records"][1]["Kids__r"], Value::Null);
        assert_eq!(first["records"][0]["Kids__r"]["totalSize"], 2);
        let second = cursors
            .more(&locator(&first["nextRecordsUrl"]), DAY)
            .unwrap();
        assert_eq!(second["records"].as_array().unwrap().len(), 2);
        assert_eq!(second["done"], true);
        assert!(second.get("nextRecordsUrl").is_none());
        // The finished cursor is gone.
        assert_eq!(cursors.len(), 0);
    }

    #[test]
    fn a_parent_bigger_than_the_batch_still_gets_a_page() {
        let mut cursors = Cursors::default();
        let page = cursors.open(vec![row("a", 9), row("b", 0)], spec(3, 9));
        assert_eq!(page["records"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn large_child_sets_are_truncated_behind_their_own_cursor() {
        let mut cursors = Cursors::default();
        let first = cursors.open(vec![row("a", 5), row("b", 0)], spec(3, 2));
        let kids = &first["records"][0]["Kids__r"];
        assert_eq!(kids["totalSize"], 5);
        assert_eq!(kids["done"], false);
        assert_eq!(kids["records"].as_array().unwrap().len(), 2);
        let child_locator = locator(&kids["nextRecordsUrl"]);
        assert!(child_locator.ends_with("-2"));
        let rest = cursors.more(&child_locator, DAY).unwrap();
        assert_eq!(rest["records"], json!([{"N": 2}, {"N": 3}, {"N": 4}]));
        assert_eq!(rest["done"], true);
    }

    #[test]
    fn continuing_the_parent_revokes_the_previous_child_cursors() {
        let mut cursors = Cursors::default();
        let first = cursors.open(vec![row("a", 5), row("b", 0)], spec(3, 2));
        let child_locator = locator(&first["records"][0]["Kids__r"]["nextRecordsUrl"]);
        cursors
            .more(&locator(&first["nextRecordsUrl"]), DAY)
            .unwrap();
        assert_eq!(
            cursors.more(&child_locator, DAY).unwrap_err().error_code,
            "INVALID_QUERY_LOCATOR"
        );
    }

    #[test]
    fn bad_and_expired_locators_are_invalid() {
        let mut cursors = Cursors::default();
        let first = cursors.open(vec![row("a", 0), row("b", 0)], spec(1, 1));
        let next = locator(&first["nextRecordsUrl"]);
        let (id, _) = next.rsplit_once('-').unwrap();
        for bad in [
            "nonsense",
            "01gXXXXXXXXXXXXAAA-1",
            &format!("{id}-99"),
            &format!("{id}-x"),
        ] {
            assert_eq!(
                cursors.more(bad, DAY).unwrap_err().error_code,
                "INVALID_QUERY_LOCATOR",
                "{bad}"
            );
        }
        assert_eq!(
            cursors.more(&next, Duration::ZERO).unwrap_err().error_code,
            "INVALID_QUERY_LOCATOR"
        );
    }
}
