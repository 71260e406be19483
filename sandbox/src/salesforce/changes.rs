//! Change tracking of the emulated org, as Salesforce documents it:
//!
//! - every record (top-level, and each nested subscription and charge row) carries
//!   `SystemModstamp`, moved on every change of the record's *own* fields. A change of a child
//!   row does not move its parent's stamp, and neither does a change of what a lookup shows
//!   (`Solutions_Architect_Lookup__r.Name`): that is another record's field;
//! - a deleted record goes to the recycle bin with `IsDeleted = true` and a new stamp; only
//!   `queryAll` sees it. A merged loser also carries `MasterRecordId`.
//!
//! Nested child rows also carry their parent's id in their lookup field
//! (`Zuora__Account__c`), so they can be queried as objects of their own.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub(crate) const ID: &str = "Id";
pub(crate) const MODSTAMP: &str = "SystemModstamp";
pub(crate) const IS_DELETED: &str = "IsDeleted";
pub(crate) const MASTER_RECORD_ID: &str = "MasterRecordId";

/// The org's deleted records by object name (child rows under their child object's name).
pub(crate) type RecycleBin = BTreeMap<String, Vec<Value>>;

/// A child object whose rows are kept nested in their parent account's records.
#[derive(Debug)]
pub(crate) struct ChildObject {
    /// The child relationship on Account (`Zuora__Subscriptions__r`).
    pub relationship: &'static str,
    /// The child object (`Zuora__Subscription__c`).
    pub object: &'static str,
    /// The child's lookup field holding its account's id.
    pub parent_field: &'static str,
}

pub(crate) const CHILD_OBJECTS: [ChildObject; 2] = [
    ChildObject {
        relationship: "Zuora__Subscriptions__r",
        object: "Zuora__Subscription__c",
        parent_field: "Zuora__Account__c",
    },
    ChildObject {
        relationship: "Zuora__R00N40000001lGjTEAU__r",
        object: "Zuora__SubscriptionProductCharge__c",
        parent_field: "Zuora__Account__c",
    },
];

/// The nested child object named `object` (any case), if it is one.
pub(crate) fn child_object(object: &str) -> Option<&'static ChildObject> {
    CHILD_OBJECTS
        .iter()
        .find(|c| c.object.eq_ignore_ascii_case(object))
}

/// Salesforce's datetime format in answers: `2026-12-06T06:00:00.000+0000`.
pub(crate) fn format_stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

pub(crate) fn id_of(record: &Value) -> Option<&str> {
    record.get(ID).and_then(Value::as_str)
}

/// Whether a record is marked deleted.
pub(crate) fn is_deleted(record: &Value) -> bool {
    record.get(IS_DELETED) == Some(&Value::Bool(true))
}

/// A field the record owns: not its stamp, not a lookup (another record, shown nested) and
/// not a child relationship (other records).
fn is_own(key: &str, value: &Value) -> bool {
    key != MODSTAMP && key != "attributes" && !value.is_object() && !value.is_array()
}

/// Whether `a` and `b` have the same own fields (a missing field is null).
pub(crate) fn own_fields_equal(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    fn covered(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
        x.iter()
            .filter(|(k, v)| is_own(k, v))
            .all(|(k, v)| match y.get(k) {
                Some(w) if w.is_object() || w.is_array() => true,
                Some(w) => w == v,
                None => v.is_null(),
            })
    }
    covered(a, b) && covered(b, a)
}

pub(crate) fn set(record: &mut Value, key: &str, value: Value) {
    if let Some(fields) = record.as_object_mut() {
        match fields.get_mut(key) {
            // Most records already hold the value: no new key to allocate.
            Some(held) if *held == value => {}
            Some(held) => *held = value,
            None => {
                fields.insert(key.to_owned(), value);
            }
        }
    }
}

/// Stamps `record` with `now` unless it has a stamp already.
fn ensure_stamp(record: &mut Value, now: &str) {
    let stamped = record.get(MODSTAMP).is_some_and(|v| !v.is_null());
    if !stamped {
        set(record, MODSTAMP, json!(now));
    }
}

/// Marks a record live or deleted, stamped `now`.
pub(crate) fn mark(record: &mut Value, deleted: bool, now: &str) {
    set(record, IS_DELETED, json!(deleted));
    set(record, MODSTAMP, json!(now));
}

/// The nested rows of `child` in `record`, if it has any.
pub(crate) fn rows_mut<'r>(
    record: &'r mut Value,
    child: &ChildObject,
) -> Option<&'r mut Vec<Value>> {
    record.get_mut(child.relationship)?.as_array_mut()
}

pub(crate) fn rows<'r>(record: &'r Value, child: &ChildObject) -> &'r [Value] {
    record
        .get(child.relationship)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A deleted record's nested rows are deleted with it (stamped `now`).
pub(crate) fn delete_nested(record: &mut Value, now: &str) {
    for child in &CHILD_OBJECTS {
        for row in rows_mut(record, child).into_iter().flatten() {
            mark(row, true, now);
        }
    }
}

/// Gives a fixture's records what the org serves on every record: a stamp (`stamp` where
/// missing) and `IsDeleted`; nested rows also get their parent's id. Records (and nested
/// rows) marked `IsDeleted: true` go to the returned recycle bin.
pub(crate) fn load(
    objects: BTreeMap<String, Vec<Value>>,
    stamp: &str,
) -> (BTreeMap<String, Vec<Value>>, RecycleBin) {
    let mut bin = RecycleBin::new();
    let mut live_objects = BTreeMap::new();
    for (name, records) in objects {
        let listed = !records.is_empty();
        let (deleted, mut live): (Vec<Value>, Vec<Value>) =
            records.into_iter().partition(is_deleted);
        for record in &mut live {
            ensure_stamp(record, stamp);
            set(record, IS_DELETED, json!(false));
            let parent = id_of(record).map(str::to_owned);
            for child in &CHILD_OBJECTS {
                let Some(rows) = rows_mut(record, child) else {
                    continue;
                };
                for row in rows.iter_mut() {
                    ensure_stamp(row, stamp);
                    if let Some(parent) = &parent {
                        set(row, child.parent_field, json!(parent));
                    }
                }
                let (gone, kept): (Vec<Value>, Vec<Value>) =
                    std::mem::take(rows).into_iter().partition(is_deleted);
                *rows = kept;
                for row in rows.iter_mut() {
                    set(row, IS_DELETED, json!(false));
                }
                bin.entry(child.object.to_owned()).or_default().extend(gone);
            }
        }
        let bin_records = bin.entry(name.clone()).or_default();
        for mut record in deleted {
            ensure_stamp(&mut record, stamp);
            let parent = id_of(&record).map(str::to_owned);
            for child in &CHILD_OBJECTS {
                for row in rows_mut(&mut record, child).into_iter().flatten() {
                    ensure_stamp(row, stamp);
                    set(row, IS_DELETED, json!(true));
                    if let Some(parent) = &parent {
                        set(row, child.parent_field, json!(parent));
                    }
                }
            }
            bin_records.push(record);
        }
        // An object listed only for its deleted records (as a snapshot writes the deleted
        // rows of a child object) has no live list.
        if !live.is_empty() || !listed {
            live_objects.insert(name, live);
        }
    }
    for rows in bin.values_mut() {
        for row in rows.iter_mut() {
            ensure_stamp(row, stamp);
            set(row, IS_DELETED, json!(true));
        }
    }
    bin.retain(|_, records| !records.is_empty());
    (live_objects, bin)
}

/// A nested row and its parent's (object, Id).
type Placed<'a> = (&'a Value, Option<(&'a str, &'a str)>);

/// Where a record was before a change.
struct Before<'a> {
    /// (object, Id) → record.
    top: HashMap<(&'a str, &'a str), &'a Value>,
    /// (child object, Id) → (row, parent's key).
    children: HashMap<(&'static str, &'a str), Placed<'a>>,
}

fn index(objects: &BTreeMap<String, Vec<Value>>) -> Before<'_> {
    let mut before = Before {
        top: HashMap::new(),
        children: HashMap::new(),
    };
    for (name, records) in objects {
        for record in records {
            let parent = id_of(record).map(|id| (name.as_str(), id));
            if let Some(key) = parent {
                before.top.entry(key).or_insert(record);
            }
            for child in &CHILD_OBJECTS {
                for row in rows(record, child) {
                    if let Some(id) = id_of(row) {
                        before
                            .children
                            .entry((child.object, id))
                            .or_insert((row, parent));
                    }
                }
            }
        }
    }
    before
}

/// Compares the org after a change with a copy from before it and records the change as
/// Salesforce would: new records and records whose own fields changed are stamped `now`,
/// unchanged ones keep their stamp; records (and nested rows) that are gone go to the
/// recycle bin, stamped `now`; a record that comes back leaves the bin.
pub(crate) fn track(
    before: &BTreeMap<String, Vec<Value>>,
    after: &mut BTreeMap<String, Vec<Value>>,
    bin: &mut RecycleBin,
    now: &str,
) {
    let old = index(before);
    // Pass 1, reading only: what is gone and what is new.
    let mut gone: Vec<(String, Value)> = Vec::new();
    let mut returned: HashSet<(String, String)> = HashSet::new();
    {
        let new = index(after);
        for (&(name, id), &record) in &old.top {
            if new.top.contains_key(&(name, id)) {
                continue;
            }
            let mut record = record.clone();
            mark(&mut record, true, now);
            for child in &CHILD_OBJECTS {
                if let Some(rows) = rows_mut(&mut record, child) {
                    // A row moved to another parent lives on there.
                    rows.retain(|row| {
                        id_of(row).is_none_or(|r| !new.children.contains_key(&(child.object, r)))
                    });
                    for row in rows.iter_mut() {
                        mark(row, true, now);
                    }
                }
            }
            gone.push((name.to_owned(), record));
        }
        for (&(object, id), &(row, parent)) in &old.children {
            let parent_gone = parent.is_some_and(|p| !new.top.contains_key(&p));
            if new.children.contains_key(&(object, id)) || parent_gone {
                continue;
            }
            let mut row = row.clone();
            mark(&mut row, true, now);
            gone.push((object.to_owned(), row));
        }
        for &(name, id) in new.top.keys() {
            if !old.top.contains_key(&(name, id)) {
                returned.insert((name.to_owned(), id.to_owned()));
            }
        }
        for &(object, id) in new.children.keys() {
            if !old.children.contains_key(&(object, id)) {
                returned.insert((object.to_owned(), id.to_owned()));
            }
        }
    }
    // Pass 2: stamp what is new or changed.
    for (name, records) in after.iter_mut() {
        for record in records.iter_mut() {
            let parent = id_of(record).map(str::to_owned);
            for child in &CHILD_OBJECTS {
                for row in rows_mut(record, child).into_iter().flatten() {
                    if let Some(parent) = &parent {
                        set(row, child.parent_field, json!(parent));
                    }
                    set(row, IS_DELETED, json!(false));
                    match id_of(row) {
                        Some(id) => {
                            let previous = old.children.get(&(child.object, id)).map(|(r, _)| *r);
                            restamp(row, previous, now);
                        }
                        None => ensure_stamp(row, now),
                    }
                }
            }
            set(record, IS_DELETED, json!(false));
            match id_of(record) {
                Some(id) => {
                    let previous = old.top.get(&(name.as_str(), id)).copied();
                    restamp(record, previous, now);
                }
                None => ensure_stamp(record, now),
            }
        }
    }
    if !returned.is_empty() {
        for (object, records) in bin.iter_mut() {
            records.retain(|r| {
                id_of(r).is_none_or(|id| !returned.contains(&(object.clone(), id.to_owned())))
            });
        }
    }
    // Deterministic order in the bin: by object, then by Id.
    gone.sort_by(|a, b| (a.0.as_str(), id_of(&a.1)).cmp(&(b.0.as_str(), id_of(&b.1))));
    for (object, record) in gone {
        bin.entry(object).or_default().push(record);
    }
    bin.retain(|_, records| !records.is_empty());
}

/// `now` for a new or changed record; an unchanged one keeps its stamp (the one it was given
/// in the change, or else the one it had).
pub(crate) fn restamp(record: &mut Value, previous: Option<&Value>, now: &str) {
    match previous {
        Some(previous) if own_fields_equal(previous, record) => {
            let kept = previous.get(MODSTAMP).cloned().unwrap_or(json!(now));
            if record.get(MODSTAMP).is_none_or(Value::is_null) {
                set(record, MODSTAMP, kept);
            }
        }
        _ => set(record, MODSTAMP, json!(now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_is_salesforces_format() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T06:00:00.1239Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_stamp(at), "2026-12-06T06:00:00.123+0000");
    }

    #[test]
    fn own_fields_leave_out_lookups_children_and_the_stamp() {
        let a = json!({"Id": "1", "Name": "A", "SystemModstamp": "x", "L__r": {"Name": "p"},
                       "Kids__r": [{"Id": "k"}], "Gone__c": null});
        let b = json!({"Id": "1", "Name": "A", "SystemModstamp": "y", "L__r": {"Name": "q"},
                       "Kids__r": []});
        assert!(own_fields_equal(&a, &b));
        assert!(!own_fields_equal(&a, &json!({"Id": "1", "Name": "B"})));
        assert!(!own_fields_equal(&a, &json!({"Id": "1"})));
    }
}
