//! Reading the standard (non-custom) attributes of a write. Each reader returns `Err(())`
//! when the JSON type cannot hold the attribute; the caller turns that into `InvalidValue`.

use serde_json::Value;

use super::errors::RecordInvalid;

pub(crate) fn text(value: &Value) -> Result<String, ()> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(()),
    }
}

pub(crate) fn nullable_text(value: &Value) -> Result<Option<String>, ()> {
    if value.is_null() {
        Ok(None)
    } else {
        text(value).map(Some)
    }
}

pub(crate) fn text_list(value: &Value) -> Result<Vec<String>, ()> {
    value
        .as_array()
        .ok_or(())?
        .iter()
        .map(|item| item.as_str().map(str::to_owned).ok_or(()))
        .collect()
}

pub(crate) fn boolean(value: &Value) -> Result<bool, ()> {
    value.as_bool().ok_or(())
}

pub(crate) fn nullable_id(value: &Value) -> Result<Option<u64>, ()> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().map(Some).ok_or(()),
        Value::String(s) => s.trim().parse().map(Some).map_err(|_| ()),
        _ => Err(()),
    }
}

/// Records an `InvalidValue` for `key` when `read` failed, and passes the value on.
pub(crate) fn check<T>(
    read: Result<T, ()>,
    key: &str,
    value: &Value,
    invalid: &mut RecordInvalid,
) -> Option<T> {
    match read {
        Ok(v) => Some(v),
        Err(()) => {
            invalid.add(
                key,
                "InvalidValue",
                format!("{}: {value} is invalid", label(key)),
            );
            None
        }
    }
}

/// `external_id` → `External id`, as Zendesk's messages name attributes.
pub(crate) fn label(key: &str) -> String {
    let spaced = key.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Case-insensitive equality, as Zendesk compares emails, external ids and names.
pub(crate) fn same_key(a: &str, b: &str) -> bool {
    // Char by char, without allocating: this runs for every record on every write's
    // uniqueness check, and most pairs differ in their first characters.
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Map, Value};

    /// A request's attributes from a JSON object literal.
    pub(crate) fn attrs(value: Value) -> Map<String, Value> {
        value.as_object().expect("object").clone()
    }
}
