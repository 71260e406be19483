//! The parsed form of the SOQL subset the emulator understands.

use chrono::{DateTime, NaiveDate, Utc};

use super::error::Position;

/// `SELECT items FROM object [WHERE condition]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub items: Vec<SelectItem>,
    pub from: Name,
    pub filter: Option<Condition>,
}

/// One entry of the top-level field list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Field(FieldPath),
    Subquery(Subquery),
}

/// `(SELECT fields FROM ChildRelationship [WHERE condition])`: the children of each parent.
#[derive(Debug, Clone, PartialEq)]
pub struct Subquery {
    pub fields: Vec<FieldPath>,
    pub relationship: Name,
    pub filter: Option<Condition>,
}

/// A name as written, with where it was written (for error pointers).
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub position: Position,
}

/// `Field` or `Lookup__r.Field` (any depth): lookups are followed to the last segment.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    pub segments: Vec<Name>,
}

impl FieldPath {
    pub fn position(&self) -> Position {
        self.segments[0].position
    }

    /// The path as written, e.g. `Account.Account_ID_18__c`.
    pub fn dotted(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A WHERE clause. SOQL forbids mixing AND and OR without parentheses, so a level holds
/// only one kind of connective.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare(Comparison),
}

/// `field operator value(s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub field: FieldPath,
    pub test: Test,
}

/// What a comparison checks the field's value against.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Compare(CompareOp, Literal),
    In(Vec<Literal>),
    NotIn(Vec<Literal>),
    /// Multi-select picklists: each entry is a set of values (`'a;b'` means a and b) and the
    /// field matches when it holds all values of any entry.
    Includes(Vec<Vec<String>>),
    Excludes(Vec<Vec<String>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// A constant in a WHERE clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
    /// An unquoted datetime (`2026-12-06T06:00:00Z`, `…00.000+0000`, `…00-08:00`), as an
    /// instant.
    DateTime(DateTime<Utc>),
    Null,
}
