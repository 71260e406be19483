//! Custom organization and user fields: which keys exist, what values each type takes, and
//! how a write merges into what is stored.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Number, Value};

use super::errors::RecordInvalid;
use crate::fixture::{FieldDefinition, FieldType};

pub(crate) struct FieldSet {
    definitions: Vec<FieldDefinition>,
}

impl FieldSet {
    pub(crate) fn new(definitions: Vec<FieldDefinition>) -> Result<Self, String> {
        let mut seen = std::collections::BTreeSet::new();
        for definition in &definitions {
            if !seen.insert(definition.key.as_str()) {
                return Err(format!("field {:?} is defined twice", definition.key));
            }
            let needs_options = matches!(
                definition.kind,
                FieldType::Dropdown | FieldType::Multiselect
            );
            if needs_options && definition.options.is_empty() {
                return Err(format!("field {:?} has no options", definition.key));
            }
        }
        Ok(FieldSet { definitions })
    }

    pub(crate) fn definitions(&self) -> &[FieldDefinition] {
        &self.definitions
    }

    fn get(&self, key: &str) -> Option<&FieldDefinition> {
        self.definitions.iter().find(|d| d.key == key)
    }

    /// Merges the keys present in `changes` into `stored`; keys not sent stay as they are.
    /// Unknown keys are dropped, as Zendesk does, and reported to `ignored`.
    pub(crate) fn merge(
        &self,
        stored: &mut Map<String, Value>,
        changes: &Value,
        attribute: &str,
        invalid: &mut RecordInvalid,
        ignored: &mut IgnoredFields,
    ) {
        let Some(changes) = changes.as_object() else {
            if !changes.is_null() {
                invalid.add(
                    attribute,
                    "InvalidValue",
                    format!("{attribute}: must be an object"),
                );
            }
            return;
        };
        for (key, value) in changes {
            let Some(definition) = self.get(key) else {
                ignored.record(&format!("{attribute}.{key}"));
                continue;
            };
            match normalize(definition, value) {
                Ok(value) => {
                    stored.insert(key.clone(), value);
                }
                Err(()) => invalid.add(
                    attribute,
                    "InvalidValue",
                    format!(
                        "{key}: {value} is not a valid {} value",
                        type_name(definition.kind)
                    ),
                ),
            }
        }
    }

    /// Every defined key, in definition order, `null` where nothing is stored.
    pub(crate) fn render(&self, stored: &Map<String, Value>) -> Value {
        let rendered: Map<String, Value> = self
            .definitions
            .iter()
            .map(|d| {
                (
                    d.key.clone(),
                    stored.get(&d.key).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        Value::Object(rendered)
    }
}

fn type_name(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Text => "text",
        FieldType::Textarea => "textarea",
        FieldType::Regexp => "regexp",
        FieldType::Checkbox => "checkbox",
        FieldType::Date => "date",
        FieldType::Integer => "integer",
        FieldType::Decimal => "decimal",
        FieldType::Dropdown => "dropdown",
        FieldType::Multiselect => "multiselect",
        FieldType::Lookup => "lookup",
    }
}

/// The stored form of a value, or `Err` when the field type cannot hold it.
fn normalize(definition: &FieldDefinition, value: &Value) -> Result<Value, ()> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match definition.kind {
        FieldType::Text | FieldType::Textarea | FieldType::Regexp => match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(()),
        },
        FieldType::Checkbox => value.as_bool().map(Value::Bool).ok_or(()),
        FieldType::Date => value.as_str().and_then(date_value).ok_or(()),
        FieldType::Integer | FieldType::Lookup => integer_value(value).ok_or(()),
        FieldType::Decimal => decimal_value(value).ok_or(()),
        FieldType::Dropdown => value
            .as_str()
            .filter(|tag| definition.options.iter().any(|o| o == tag))
            .map(|tag| Value::String(tag.to_owned()))
            .ok_or(()),
        FieldType::Multiselect => {
            let tags = value.as_array().ok_or(())?;
            let valid = tags.iter().all(|tag| {
                tag.as_str()
                    .is_some_and(|tag| definition.options.iter().any(|o| o == tag))
            });
            if valid { Ok(value.clone()) } else { Err(()) }
        }
    }
}

/// Dates are stored as `YYYY-MM-DD`; a full timestamp is accepted and cut to its date.
fn date_value(text: &str) -> Option<Value> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.date_naive())
        })?;
    Some(Value::String(date.format("%Y-%m-%d").to_string()))
}

fn integer_value(value: &Value) -> Option<Value> {
    let parsed = match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }?;
    Some(Value::Number(parsed.into()))
}

fn decimal_value(value: &Value) -> Option<Value> {
    match value {
        Value::Number(_) => Some(value.clone()),
        Value::String(s) => {
            let parsed = s.trim().parse::<f64>().ok()?;
            Number::from_f64(parsed).map(Value::Number)
        }
        _ => None,
    }
}

/// Attribute and field keys a client sent that Zendesk would silently drop, with how often.
/// Tests read it to prove the client never sends them.
#[derive(Debug, Default, Clone)]
pub(crate) struct IgnoredFields {
    counts: BTreeMap<String, u64>,
}

impl IgnoredFields {
    pub(crate) fn record(&mut self, key: &str) {
        *self.counts.entry(key.to_owned()).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields() -> FieldSet {
        FieldSet::new(vec![
            FieldDefinition::new("flag", FieldType::Checkbox),
            FieldDefinition::new("arr", FieldType::Decimal),
            FieldDefinition::new("seats", FieldType::Integer),
            FieldDefinition::new("expires", FieldType::Date),
            FieldDefinition::dropdown("level", &["gold", "silver"]),
            FieldDefinition::new("owner", FieldType::Text),
        ])
        .expect("valid definitions")
    }

    fn merge(changes: Value) -> (Map<String, Value>, RecordInvalid, IgnoredFields) {
        let mut stored = Map::new();
        stored.insert("owner".into(), json!("Kim"));
        let mut invalid = RecordInvalid::default();
        let mut ignored = IgnoredFields::default();
        fields().merge(
            &mut stored,
            &changes,
            "organization_fields",
            &mut invalid,
            &mut ignored,
        );
        (stored, invalid, ignored)
    }

    #[test]
    fn merges_only_sent_keys_and_normalizes() {
        let (stored, invalid, _) = merge(json!({
            "flag": true, "arr": "12345.0", "seats": 10.0, "expires": "2027-01-31T00:00:00Z", "level": "gold"
        }));
        assert!(invalid.is_empty());
        assert_eq!(stored["owner"], json!("Kim"));
        assert_eq!(stored["arr"], json!(12345.0));
        assert_eq!(stored["seats"], json!(10));
        assert_eq!(stored["expires"], json!("2027-01-31"));
        assert_eq!(stored["level"], json!("gold"));
    }

    #[test]
    fn rejects_values_the_type_cannot_hold() {
        for bad in [
            json!({"flag": "yes"}),
            json!({"arr": "lots"}),
            json!({"seats": 1.5}),
            json!({"expires": "31/01/2027"}),
            json!({"level": "platinum"}),
            json!({"owner": {"name": "Kim"}}),
        ] {
            let (_, invalid, _) = merge(bad.clone());
            assert_eq!(invalid.code(), "InvalidValue", "{bad}");
        }
    }

    #[test]
    fn unknown_keys_are_dropped_and_recorded() {
        let (stored, invalid, ignored) = merge(json!({"not_a_field": 1}));
        assert!(invalid.is_empty());
        assert!(!stored.contains_key("not_a_field"));
        assert_eq!(
            ignored.snapshot().get("organization_fields.not_a_field"),
            Some(&1)
        );
    }

    #[test]
    fn renders_every_defined_key() {
        let rendered = fields().render(&Map::new());
        assert_eq!(rendered.as_object().map(Map::len), Some(6));
        assert!(rendered["level"].is_null());
    }
}
