//! Times as the API renders them and as fixtures hold them, and a fixture record's own id.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

pub(crate) fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A fixture's optional `created_at`/`updated_at`, defaulting to now.
pub(crate) fn fixture_time(
    record: &Value,
    key: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    match record.get(key) {
        None | Some(Value::Null) => Ok(now),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("{key} {text:?} is not an RFC 3339 timestamp: {e}")),
        Some(other) => Err(format!("{key} must be a string, not {other}")),
    }
}

/// A timestamp as a snapshot writes it: RFC 3339 with as many fraction digits as it has
/// (none for whole seconds), so [`fixture_time`] reads back the same instant rather than one
/// cut to the second as API responses show it, and a snapshot of a reload is the same bytes.
pub(crate) fn fixture_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A fixture's optional explicit `id`.
pub(crate) fn fixture_id(record: &Value) -> Result<Option<u64>, String> {
    match record.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("id must be a positive integer, not {value}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fixture_timestamps_read_back_to_the_same_instant() {
        let whole = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(fixture_timestamp(&whole), "2024-05-01T12:00:00Z");
        let fine = whole + chrono::Duration::nanoseconds(123_456_789);
        let record = json!({"updated_at": fixture_timestamp(&fine)});
        assert_eq!(fixture_time(&record, "updated_at", whole), Ok(fine));
    }
}
