//! Checks a parsed query against the org's describe, then runs it over the fixture's records
//! and shapes each match the way the REST API does: only the selected fields, `attributes`
//! first, lookups as nested records (or `null`), child subqueries as separate row lists that
//! the pager turns into `{totalSize, done, records}` or `null`.
//!
//! Filtering follows SOQL semantics: string comparisons are case-insensitive; an empty string
//! is the same as null (Salesforce stores no empty strings); a comparison whose field is null
//! is false except `= null` and `!= null`; on a checkbox, null means false (SOQL reference,
//! "Use null in WHERE"); a value whose type does not fit the literal's type never matches.
//! Datetime literals compare by instant with datetime values (`SystemModstamp`), whatever
//! zone either is written in.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::ast::{
    CompareOp, Comparison, Condition, FieldPath, Literal, Name, Query, SelectItem, Test,
};
use super::describe::{Describe, ObjectDescribe};
use super::error::SoqlError;
use super::lexer::parse_datetime_literal;
use super::parser::parse;

/// A query that parsed and names only things the org has.
#[derive(Debug, Clone)]
pub struct CompiledQuery {
    query: Query,
    /// The canonical name of the FROM object.
    object: String,
    describe: Describe,
}

/// One matching parent record: its selected fields (child relationship keys hold a `null`
/// placeholder at their select position) and the matching rows of each child subquery.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub record: Map<String, Value>,
    pub children: Vec<ChildRows>,
}

/// The rows one child subquery returned for one parent.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRows {
    pub relationship: String,
    pub records: Vec<Value>,
}

/// Parses `text` and checks every object, relationship and field it names.
pub fn compile(
    text: &str,
    objects: &BTreeMap<String, Vec<Value>>,
) -> Result<CompiledQuery, SoqlError> {
    let query = parse(text)?;
    let describe = Describe::of_org(objects);
    let object = describe.object(&query.from.text).ok_or_else(|| {
        SoqlError::invalid_type(
            query.from.position,
            format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, \
                 be sure to append the '__c' after the entity name. Please reference your WSDL or \
                 the describe call for the appropriate names.",
                query.from.text
            ),
        )
    })?;
    check_query(&query, object, &describe)?;
    Ok(CompiledQuery {
        object: object.name.clone(),
        query,
        describe,
    })
}

fn check_query(
    query: &Query,
    object: &ObjectDescribe,
    describe: &Describe,
) -> Result<(), SoqlError> {
    for item in &query.items {
        match item {
            SelectItem::Field(path) => check_path(path, object, describe)?,
            SelectItem::Subquery(sub) => {
                let child_object = child_object(object, &sub.relationship, describe)?;
                for path in &sub.fields {
                    check_path(path, child_object, describe)?;
                }
                if let Some(filter) = &sub.filter {
                    check_condition(filter, child_object, describe)?;
                }
            }
        }
    }
    if let Some(filter) = &query.filter {
        check_condition(filter, object, describe)?;
    }
    Ok(())
}

fn child_object<'d>(
    parent: &ObjectDescribe,
    relationship: &Name,
    describe: &'d Describe,
) -> Result<&'d ObjectDescribe, SoqlError> {
    parent
        .child(&relationship.text)
        .and_then(|(_, object)| describe.object(object))
        .ok_or_else(|| {
            SoqlError::invalid_type(
                relationship.position,
                format!(
                    "Didn't understand relationship '{}' in FROM part of query call. If you are \
                     attempting to use a custom relationship, be sure to append the '__r' after \
                     the custom relationship name. Please reference your WSDL or the describe \
                     call for the appropriate names.",
                    relationship.text
                ),
            )
        })
}

fn check_condition(
    condition: &Condition,
    object: &ObjectDescribe,
    describe: &Describe,
) -> Result<(), SoqlError> {
    match condition {
        Condition::And(operands) | Condition::Or(operands) => operands
            .iter()
            .try_for_each(|c| check_condition(c, object, describe)),
        Condition::Not(inner) => check_condition(inner, object, describe),
        Condition::Compare(comparison) => check_path(&comparison.field, object, describe),
    }
}

/// Every segment but the last must be a lookup; the last must be a field of where it lands.
fn check_path(
    path: &FieldPath,
    object: &ObjectDescribe,
    describe: &Describe,
) -> Result<(), SoqlError> {
    let (last, lookups) = path.segments.split_last().expect("a path has a segment");
    let mut current = object;
    for segment in lookups {
        current = current
            .lookup(&segment.text)
            .and_then(|(_, target)| describe.object(target))
            .ok_or_else(|| {
                SoqlError::invalid_field(
                    segment.position,
                    format!(
                        "Didn't understand relationship '{}' in field path. If you are attempting \
                         to use a custom relationship, be sure to append the '__r' after the \
                         custom relationship name. Please reference your WSDL or the describe \
                         call for the appropriate names.",
                        segment.text
                    ),
                )
            })?;
    }
    match current.field(&last.text) {
        Some(_) => Ok(()),
        None => Err(SoqlError::invalid_field(
            last.position,
            format!(
                "No such column '{}' on entity '{}'. If you are attempting to use a custom field, \
                 be sure to append the '__c' after the custom field name. Please reference your \
                 WSDL or the describe call for the appropriate names.",
                last.text, current.name
            ),
        )),
    }
}

impl CompiledQuery {
    /// The canonical name of the queried object.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// Runs the query over `objects`; `api_version` (e.g. `v62.0`) goes into record URLs.
    pub fn execute(
        &self,
        objects: &BTreeMap<String, Vec<Value>>,
        api_version: &str,
    ) -> Vec<ResultRow> {
        let records = objects
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&self.object))
            .map(|(_, records)| records.as_slice())
            .unwrap_or_default();
        self.execute_over(records.iter(), api_version)
    }

    /// Runs the query over `records`, the rows of the queried object (the org decides which:
    /// live ones for `query`, deleted ones too for `queryAll`, child rows for a child object).
    pub fn execute_over<'r>(
        &self,
        records: impl Iterator<Item = &'r Value>,
        api_version: &str,
    ) -> Vec<ResultRow> {
        let shaper = Shaper {
            describe: &self.describe,
            api_version,
        };
        records
            .filter(|record| shaper.matches(&self.object, record, self.query.filter.as_ref()))
            .map(|record| shaper.row(&self.object, record, &self.query))
            .collect()
    }
}

/// Evaluates conditions and renders records against the describe.
struct Shaper<'a> {
    describe: &'a Describe,
    api_version: &'a str,
}

impl Shaper<'_> {
    fn row(&self, object: &str, record: &Value, query: &Query) -> ResultRow {
        let mut rendered = self.attributes_only(object, record);
        let mut children = Vec::new();
        for item in &query.items {
            match item {
                SelectItem::Field(path) => {
                    self.insert_path(&mut rendered, object, record, &path.segments)
                }
                SelectItem::Subquery(sub) => {
                    let (relationship, child_object) = self
                        .object(object)
                        .child(&sub.relationship.text)
                        .expect("checked at compile time");
                    let records = field_ci(record, relationship)
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .filter(|child| self.matches(child_object, child, sub.filter.as_ref()))
                        .map(|child| Value::Object(self.shape(child_object, child, &sub.fields)))
                        .collect();
                    rendered.insert(relationship.to_owned(), Value::Null);
                    children.push(ChildRows {
                        relationship: relationship.to_owned(),
                        records,
                    });
                }
            }
        }
        ResultRow {
            record: rendered,
            children,
        }
    }

    fn object(&self, name: &str) -> &ObjectDescribe {
        self.describe
            .object(name)
            .expect("only described objects are reached")
    }

    fn shape(&self, object: &str, record: &Value, fields: &[FieldPath]) -> Map<String, Value> {
        let mut rendered = self.attributes_only(object, record);
        for path in fields {
            self.insert_path(&mut rendered, object, record, &path.segments);
        }
        rendered
    }

    /// `{"attributes": {"type", "url"}}`. The URL needs the record's Id; a fixture record
    /// without one gets no `url` rather than an invented id.
    fn attributes_only(&self, object: &str, record: &Value) -> Map<String, Value> {
        let type_name = &self.object(object).name;
        let mut attributes = Map::new();
        attributes.insert("type".into(), json!(type_name));
        if let Some(id) = field_ci(record, "Id").and_then(Value::as_str) {
            attributes.insert(
                "url".into(),
                json!(format!(
                    "/services/data/{}/sobjects/{type_name}/{id}",
                    self.api_version
                )),
            );
        }
        let mut rendered = Map::new();
        rendered.insert("attributes".into(), Value::Object(attributes));
        rendered
    }

    /// Copies one selected path into `out`; paths through the same lookup share its nested
    /// record, and an empty lookup is a plain `null`.
    fn insert_path(
        &self,
        out: &mut Map<String, Value>,
        object: &str,
        source: &Value,
        segments: &[Name],
    ) {
        let describe = self.object(object);
        let [first, rest @ ..] = segments else {
            return;
        };
        if rest.is_empty() {
            let field = describe
                .field(&first.text)
                .expect("checked at compile time");
            out.insert(
                field.to_owned(),
                present(field_ci(source, field))
                    .cloned()
                    .unwrap_or(Value::Null),
            );
            return;
        }
        let (lookup, target) = describe
            .lookup(&first.text)
            .expect("checked at compile time");
        match field_ci(source, lookup).filter(|v| v.is_object()) {
            None => {
                out.entry(lookup.to_owned()).or_insert(Value::Null);
            }
            Some(parent) => {
                let nested = out
                    .entry(lookup.to_owned())
                    .or_insert_with(|| Value::Object(self.attributes_only(target, parent)));
                if let Value::Object(nested) = nested {
                    self.insert_path(nested, target, parent, rest);
                }
            }
        }
    }

    fn matches(&self, object: &str, record: &Value, filter: Option<&Condition>) -> bool {
        match filter {
            None => true,
            Some(Condition::And(all)) => all.iter().all(|c| self.matches(object, record, Some(c))),
            Some(Condition::Or(any)) => any.iter().any(|c| self.matches(object, record, Some(c))),
            Some(Condition::Not(inner)) => !self.matches(object, record, Some(inner)),
            Some(Condition::Compare(comparison)) => {
                let value = self.value_at(object, record, &comparison.field.segments);
                comparison_holds(comparison, value)
            }
        }
    }

    /// The value a path reaches, or `None` when it or a lookup on the way is null or empty.
    fn value_at<'r>(
        &self,
        object: &str,
        record: &'r Value,
        segments: &[Name],
    ) -> Option<&'r Value> {
        let describe = self.object(object);
        let [first, rest @ ..] = segments else {
            return None;
        };
        if rest.is_empty() {
            let field = describe.field(&first.text)?;
            return present(field_ci(record, field));
        }
        let (lookup, target) = describe.lookup(&first.text)?;
        let parent = field_ci(record, lookup).filter(|v| v.is_object())?;
        self.value_at(target, parent, rest)
    }
}

/// A record's field by name, trying the exact spelling first and then any case.
fn field_ci<'r>(record: &'r Value, name: &str) -> Option<&'r Value> {
    let fields = record.as_object()?;
    fields.get(name).or_else(|| {
        fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// `None` for missing, null and empty-string values: Salesforce has no empty strings.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null() && v.as_str() != Some(""))
}

fn comparison_holds(comparison: &Comparison, value: Option<&Value>) -> bool {
    match &comparison.test {
        Test::Compare(op, literal) => compare_holds(*op, value, literal),
        Test::In(literals) => literals.iter().any(|l| equals(value, l)),
        Test::NotIn(literals) => value.is_some() && !literals.iter().any(|l| equals(value, l)),
        Test::Includes(sets) => value.is_some_and(|v| includes_any(v, sets)),
        Test::Excludes(sets) => value.is_some_and(|v| !includes_any(v, sets)),
    }
}

fn compare_holds(op: CompareOp, value: Option<&Value>, literal: &Literal) -> bool {
    match op {
        CompareOp::Equal => equals(value, literal),
        CompareOp::NotEqual => match (value, literal_is_null(literal)) {
            (_, true) => !equals(value, literal),
            (None, false) => false,
            (Some(_), false) => order(value, literal).is_some_and(|o| o != Ordering::Equal),
        },
        CompareOp::Less => order(value, literal) == Some(Ordering::Less),
        CompareOp::LessOrEqual => {
            matches!(
                order(value, literal),
                Some(Ordering::Less | Ordering::Equal)
            )
        }
        CompareOp::Greater => order(value, literal) == Some(Ordering::Greater),
        CompareOp::GreaterOrEqual => {
            matches!(
                order(value, literal),
                Some(Ordering::Greater | Ordering::Equal)
            )
        }
    }
}

/// `''` is null in SOQL, as a stored empty string is.
fn literal_is_null(literal: &Literal) -> bool {
    matches!(literal, Literal::Null) || matches!(literal, Literal::Str(s) if s.is_empty())
}

fn equals(value: Option<&Value>, literal: &Literal) -> bool {
    if literal_is_null(literal) {
        // A checkbox is never null: `= null` matches false (SOQL reference).
        return value.is_none_or(|v| v == &Value::Bool(false));
    }
    order(value, literal) == Some(Ordering::Equal)
}

/// How a non-null value orders against a non-null literal, or `None` when either is null or
/// the value cannot be read as the literal's type.
fn order(value: Option<&Value>, literal: &Literal) -> Option<Ordering> {
    let value = value?;
    match literal {
        Literal::Null => None,
        Literal::Str(expected) => {
            let actual = value.as_str()?;
            Some(actual.to_lowercase().cmp(&expected.to_lowercase()))
        }
        Literal::Number(expected) => {
            let actual = value
                .as_f64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))?;
            actual.partial_cmp(expected)
        }
        Literal::Bool(expected) => Some(value.as_bool()?.cmp(expected)),
        Literal::Date(expected) => Some(date_of(value)?.cmp(expected)),
        Literal::DateTime(expected) => {
            Some(parse_datetime_literal(value.as_str()?.trim())?.cmp(expected))
        }
    }
}

/// A date field's value: `YYYY-MM-DD`, or the date part of a datetime.
fn date_of(value: &Value) -> Option<NaiveDate> {
    let text = value.as_str()?;
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// A multi-select picklist value holds `a;b;c`; it matches when it holds every value of any
/// one of the sets (case-insensitively).
fn includes_any(value: &Value, sets: &[Vec<String>]) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let held: Vec<String> = text.split(';').map(|v| v.trim().to_lowercase()).collect();
    sets.iter().any(|set| {
        !set.is_empty()
            && set
                .iter()
                .all(|wanted| held.contains(&wanted.to_lowercase()))
    })
}
