//! Per-record results of bulk writes: a finished job's `results[]` mapped back onto the
//! caller's items (apis.md A8), one outcome per item, none dropped.

use std::fmt;

use serde_json::{Map, Value};

use super::error::ValidationDetail;

/// What became of one item of a bulk write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutcome {
    /// The item's position in the caller's `items`.
    pub index: usize,
    /// The record's id (when Zendesk gave one), or why the item was not applied.
    pub result: Result<Option<u64>, ItemError>,
}

/// Why one item was not applied. `error` is Zendesk's code (`DuplicateValue`,
/// `InvalidValue`, `RecordNotFound`…) or one of the client's own:
/// [`ItemError::JOB_FAILED`], [`ItemError::JOB_KILLED`], [`ItemError::JOB_VANISHED`],
/// [`ItemError::JOB_TIMED_OUT`], [`ItemError::NO_RESULT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub error: String,
    pub details: Option<String>,
}

impl ItemError {
    /// The item's job ended `failed` before reporting on the item.
    pub const JOB_FAILED: &'static str = "JobFailed";
    /// The item's job ended `killed`.
    pub const JOB_KILLED: &'static str = "JobKilled";
    /// The item's job status disappeared (expired or unknown) before it finished.
    pub const JOB_VANISHED: &'static str = "JobVanished";
    /// The item's job was still queued or working at the client's job timeout.
    pub const JOB_TIMED_OUT: &'static str = "JobTimedOut";
    /// The job completed without a result entry for the item.
    pub const NO_RESULT: &'static str = "NoResult";

    /// Zendesk refused a create because the record's unique value (an org's name, a user's
    /// email) is taken.
    pub fn is_taken(&self) -> bool {
        let details = self.details.as_deref().unwrap_or_default().to_lowercase();
        self.error.contains("DuplicateValue")
            || details.contains("already been taken")
            || details.contains("already being used")
            || details.contains("duplicatevalue")
    }

    /// Zendesk refused a membership because the user already is in the organization: it
    /// answers 422 "if the user is already assigned to the organization" (apis.md A6) without
    /// documenting the body, so a `DuplicateValue` code or a description saying the user is
    /// already a member, assigned, or taken all count.
    pub fn is_already_member(&self) -> bool {
        let details = self.details.as_deref().unwrap_or_default().to_lowercase();
        self.is_taken()
            || (details.contains("already")
                && ["member", "assigned", "exists", "taken"]
                    .iter()
                    .any(|word| details.contains(word)))
    }

    pub fn new(error: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            details: Some(details.into()),
        }
    }

    /// A single-record call's 422, as the item's error: the first detail's code
    /// (`DuplicateValue`) with every description.
    pub(super) fn from_validation(message: &str, details: &[ValidationDetail]) -> Self {
        let code = details
            .iter()
            .find_map(|d| d.error.clone())
            .unwrap_or_else(|| "RecordInvalid".into());
        let descriptions: Vec<&str> = details
            .iter()
            .filter_map(|d| d.description.as_deref())
            .collect();
        let details = if descriptions.is_empty() {
            message.to_owned()
        } else {
            descriptions.join("; ")
        };
        Self::new(code, details)
    }
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.details {
            Some(details) => write!(f, "{}: {details}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// The outcome of creating users, and whether Zendesk's bulk user import was off so each
/// user was created with its own call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkUsers {
    pub outcomes: Vec<ItemOutcome>,
    pub fell_back_to_single_creates: bool,
}

/// Which result entries a job gives: `{id, index}` for creates, `{id, action, success,
/// status}` for updates; failures `{index|id, error, details}` for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResultShape {
    Create,
    Update,
}

type ItemResult = Result<Option<u64>, ItemError>;

/// One slot per caller item, filled once.
pub(super) struct Outcomes {
    slots: Vec<Option<ItemResult>>,
}

impl Outcomes {
    pub(super) fn new(items: usize) -> Self {
        Self {
            slots: vec![None; items],
        }
    }

    /// Records `result` for the caller's item `index` unless it already has one.
    pub(super) fn record(&mut self, index: usize, result: ItemResult) {
        if let Some(slot @ None) = self.slots.get_mut(index) {
            *slot = Some(result);
        }
    }

    /// Gives every item in `indexes` that has no outcome yet the error `error`.
    pub(super) fn fail_rest(&mut self, indexes: std::ops::Range<usize>, error: &ItemError) {
        for index in indexes {
            self.record(index, Err(error.clone()));
        }
    }

    /// The outcomes of the items that have one, in index order.
    pub(super) fn settled(self) -> Vec<ItemOutcome> {
        self.slots
            .into_iter()
            .enumerate()
            .filter_map(|(index, result)| {
                Some(ItemOutcome {
                    index,
                    result: result?,
                })
            })
            .collect()
    }

    pub(super) fn into_vec(self) -> Vec<ItemOutcome> {
        self.slots
            .into_iter()
            .enumerate()
            .map(|(index, result)| ItemOutcome {
                index,
                result: result.unwrap_or_else(|| {
                    Err(ItemError::new(
                        ItemError::NO_RESULT,
                        "Zendesk reported nothing for this item",
                    ))
                }),
            })
            .collect()
    }
}

/// A job's `results[]` as (position in the job's `items`, result). Entries are matched by
/// `index`; an update entry without one by its record `id`; failing both, by position when
/// there is exactly one entry per item. Entries that match no item are dropped with a
/// warning; items without an entry are the caller's to report.
pub(super) fn job_item_results(
    shape: ResultShape,
    items: &[Value],
    results: &[Value],
) -> Vec<(usize, ItemResult)> {
    let mut claimed = vec![false; items.len()];
    let mut out = Vec::with_capacity(results.len());
    for (position, entry) in results.iter().enumerate() {
        let Some(entry) = entry.as_object() else {
            tracing::warn!(%entry, "job result entry is not an object; ignored");
            continue;
        };
        let index = explicit_index(entry, items.len())
            .or_else(|| match shape {
                ResultShape::Update => index_by_record_id(entry, items, &claimed),
                ResultShape::Create => None,
            })
            .or_else(|| (results.len() == items.len()).then_some(position));
        match index {
            Some(index) if !claimed[index] => {
                claimed[index] = true;
                out.push((index, entry_result(entry)));
            }
            _ => tracing::warn!(?entry, "job result entry matches no item; ignored"),
        }
    }
    out
}

fn explicit_index(entry: &Map<String, Value>, items: usize) -> Option<usize> {
    let index = usize::try_from(entry.get("index")?.as_u64()?).ok()?;
    (index < items).then_some(index)
}

fn index_by_record_id(
    entry: &Map<String, Value>,
    items: &[Value],
    claimed: &[bool],
) -> Option<usize> {
    let id = record_id(entry)?;
    items.iter().enumerate().position(|(index, item)| {
        !claimed[index] && item.as_object().and_then(record_id) == Some(id)
    })
}

/// `id` as Zendesk sends it (a number; a numeric string tolerated).
fn record_id(entry: &Map<String, Value>) -> Option<u64> {
    match entry.get("id")? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Success with the record id, or the entry's error. Every field is optional (apis.md A8):
/// an entry failed when it names an `error` (or the legacy `errors`), says `success: false`,
/// or has `status: "Failed"`.
fn entry_result(entry: &Map<String, Value>) -> ItemResult {
    let text = |key: &str| {
        entry
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let error = text("error").or_else(|| text("errors"));
    let status = text("status");
    let failed = error.is_some()
        || entry.get("success") == Some(&Value::Bool(false))
        || status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("failed"));
    if !failed {
        return Ok(record_id(entry));
    }
    let details = match entry.get("details") {
        Some(Value::String(details)) => Some(details.clone()),
        Some(Value::Null) | None => text("title"),
        Some(other) => Some(other.to_string()),
    };
    Err(ItemError {
        error: error.or(status).unwrap_or_else(|| "Failed".into()),
        details,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn items(ids: &[u64]) -> Vec<Value> {
        ids.iter()
            .map(|id| json!({"id": id, "name": "x"}))
            .collect()
    }

    #[test]
    fn create_results_follow_their_index() {
        let items = vec![
            json!({"name": "a"}),
            json!({"name": "b"}),
            json!({"name": "c"}),
        ];
        let results = [
            json!({"index": 2, "id": 30}),
            json!({"index": 0, "id": 10}),
            json!({"index": 1, "error": "DuplicateValue", "details": "Name: b has already been taken"}),
        ];
        let mapped = job_item_results(ResultShape::Create, &items, &results);
        assert_eq!(
            mapped,
            vec![
                (2, Ok(Some(30))),
                (0, Ok(Some(10))),
                (
                    1,
                    Err(ItemError::new(
                        "DuplicateValue",
                        "Name: b has already been taken"
                    ))
                ),
            ]
        );
    }

    #[test]
    fn update_successes_without_index_are_matched_by_id() {
        let items = items(&[7, 8, 9]);
        let results = [
            json!({"id": 9, "action": "update", "success": true, "status": "Updated"}),
            json!({"index": 1, "id": 8, "action": "update", "success": false, "status": "Failed",
                   "error": "InvalidValue", "details": "support_level: x"}),
            json!({"id": "7", "action": "update", "success": true, "status": "Updated"}),
        ];
        let mapped = job_item_results(ResultShape::Update, &items, &results);
        assert_eq!(mapped[0], (2, Ok(Some(9))));
        assert_eq!(
            mapped[1],
            (1, Err(ItemError::new("InvalidValue", "support_level: x")))
        );
        assert_eq!(mapped[2], (0, Ok(Some(7))));
    }

    #[test]
    fn failures_are_recognised_in_every_documented_form() {
        let items = items(&[1, 2, 3, 4]);
        let results = [
            json!({"id": 1, "success": false, "status": "Failed"}),
            json!({"id": 2, "status": "Failed", "title": "Not allowed"}),
            json!({"id": 3, "errors": "RecordNotFound", "details": {"base": ["gone"]}}),
            json!({"id": 4, "action": "update", "success": true, "status": "Updated", "errors": ""}),
        ];
        let mapped = job_item_results(ResultShape::Update, &items, &results);
        assert_eq!(
            mapped[0].1,
            Err(ItemError {
                error: "Failed".into(),
                details: None
            })
        );
        assert_eq!(mapped[1].1, Err(ItemError::new("Failed", "Not allowed")));
        assert_eq!(
            mapped[2].1,
            Err(ItemError::new("RecordNotFound", r#"{"base":["gone"]}"#))
        );
        assert_eq!(mapped[3].1, Ok(Some(4)));
    }

    #[test]
    fn entries_without_index_or_id_fall_back_to_position_only_when_counts_match() {
        let items = vec![json!({"name": "a"}), json!({"name": "b"})];
        let both = [json!({"id": 1}), json!({"id": 2})];
        assert_eq!(
            job_item_results(ResultShape::Create, &items, &both),
            vec![(0, Ok(Some(1))), (1, Ok(Some(2)))]
        );
        let one = [json!({"id": 1})];
        assert!(job_item_results(ResultShape::Create, &items, &one).is_empty());
    }

    #[test]
    fn out_of_range_and_repeated_entries_are_ignored() {
        let items = vec![json!({"name": "a"})];
        let results = [
            json!({"index": 5, "id": 1}),
            json!({"index": 0, "id": 2}),
            json!({"index": 0, "id": 3}),
            json!("junk"),
        ];
        assert_eq!(
            job_item_results(ResultShape::Create, &items, &results),
            vec![(0, Ok(Some(2)))]
        );
    }

    #[test]
    fn every_item_gets_exactly_one_outcome() {
        let mut outcomes = Outcomes::new(4);
        outcomes.record(0, Ok(Some(1)));
        outcomes.record(0, Ok(Some(99)));
        outcomes.fail_rest(0..2, &ItemError::new(ItemError::JOB_FAILED, "boom"));
        let all = outcomes.into_vec();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].result, Ok(Some(1)));
        assert_eq!(
            all[1].result.as_ref().unwrap_err().error,
            ItemError::JOB_FAILED
        );
        assert_eq!(all[3].index, 3);
        assert_eq!(
            all[3].result.as_ref().unwrap_err().error,
            ItemError::NO_RESULT
        );
    }

    #[test]
    fn a_validation_error_becomes_the_items_error() {
        let details = [ValidationDetail {
            field: "email".into(),
            error: Some("DuplicateValue".into()),
            description: Some("Email: a@b.example is already being used".into()),
        }];
        assert_eq!(
            ItemError::from_validation("RecordInvalid", &details),
            ItemError::new("DuplicateValue", "Email: a@b.example is already being used")
        );
        assert_eq!(
            ItemError::from_validation("RecordInvalid: Record validation errors", &[]),
            ItemError::new("RecordInvalid", "RecordInvalid: Record validation errors")
        );
    }
}
