//! Query errors in Salesforce's shape: an error code plus a message that quotes the offending
//! line of the query, a caret under the offending column, and `ERROR at Row:r:Column:c`.

/// Where in the query text something is: 1-based row and column, as Salesforce reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub row: usize,
    pub column: usize,
}

impl Position {
    /// The row and column of byte `offset` in `query` (columns count characters).
    pub fn of_offset(query: &str, offset: usize) -> Self {
        let before = &query[..offset.min(query.len())];
        let row = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self { row, column }
    }
}

/// A query the emulator refuses, with the `errorCode` Salesforce would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoqlError {
    /// `MALFORMED_QUERY`, `INVALID_FIELD` or `INVALID_TYPE`.
    pub code: &'static str,
    pub position: Option<Position>,
    /// The last line of the message, e.g. `unexpected token: 'FRM'`.
    pub detail: String,
}

impl SoqlError {
    pub fn malformed(position: Position, detail: impl Into<String>) -> Self {
        Self {
            code: "MALFORMED_QUERY",
            position: Some(position),
            detail: detail.into(),
        }
    }

    pub fn invalid_field(position: Position, detail: impl Into<String>) -> Self {
        Self {
            code: "INVALID_FIELD",
            position: Some(position),
            detail: detail.into(),
        }
    }

    pub fn invalid_type(position: Position, detail: impl Into<String>) -> Self {
        Self {
            code: "INVALID_TYPE",
            position: Some(position),
            detail: detail.into(),
        }
    }

    /// The full message as Salesforce formats it, quoting the offending line of `query`.
    pub fn message(&self, query: &str) -> String {
        let Some(position) = self.position else {
            return self.detail.clone();
        };
        let line = query.lines().nth(position.row - 1).unwrap_or_default();
        let caret = format!("{}^", " ".repeat(position.column.saturating_sub(1)));
        format!(
            "\n{line}\n{caret}\nERROR at Row:{}:Column:{}\n{}",
            position.row, position.column, self.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_points_at_the_offending_column() {
        let query = "SELECT Id\nFRM Account";
        let error = SoqlError::malformed(Position::of_offset(query, 10), "unexpected token: 'FRM'");
        assert_eq!(
            error.message(query),
            "\nFRM Account\n^\nERROR at Row:2:Column:1\nunexpected token: 'FRM'"
        );
    }
}
