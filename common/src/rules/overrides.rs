//! Entitlement overrides (SPEC §5.2): hand-made exceptions to what the charges say, each with a
//! reason and optionally an expiry. They apply to Global objects only.
//!
//! The file is validated as a whole before use: an override naming a field the processor does
//! not write, or a value of the wrong type, would otherwise vanish silently or corrupt an org.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::LoadError;
use crate::model::instance::{USGOV_FEDRAMP_FLAG, field};
use crate::model::{Instance, Region, SalesforceId, SupportLevel};

/// One validated override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub salesforce_id: SalesforceId,
    pub reason: String,
    pub expires: Option<NaiveDate>,
    /// Global organization fields and the values that replace the computed ones.
    pub fields: Map<String, Value>,
}

impl Override {
    /// In force on `as_of`: no expiry, or `as_of` on or before the expiry date.
    pub fn is_active(&self, as_of: NaiveDate) -> bool {
        self.expires.is_none_or(|expires| as_of <= expires)
    }
}

/// All overrides, keyed by account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    by_id: HashMap<SalesforceId, Override>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    salesforce_id: Spanned<String>,
    #[serde(default)]
    reason: Option<Spanned<String>>,
    #[serde(default)]
    expires: Option<Spanned<String>>,
    fields: Spanned<Map<String, Value>>,
}

impl Overrides {
    /// Parses and validates an overrides file (a YAML list). An empty document means none.
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Overrides, LoadError> {
        let error = |line: Option<u64>, message: String| LoadError {
            source_name: source_name.to_owned(),
            line,
            message,
        };
        if text.trim().is_empty() {
            return Ok(Overrides::default());
        }
        let raw: Option<Vec<Spanned<RawOverride>>> =
            serde_saphyr::from_str(text).map_err(|e| error(None, e.to_string()))?;
        let mut by_id: HashMap<SalesforceId, (Override, u64)> = HashMap::new();
        for (index, entry) in raw.unwrap_or_default().into_iter().enumerate() {
            let line = line_of(&entry.referenced);
            let entry = entry.value;
            let at = |spanned_line: Option<u64>| spanned_line.or(line);
            let id_text = entry.salesforce_id.value.trim();
            let salesforce_id = SalesforceId::parse(id_text).map_err(|e| {
                error(
                    at(line_of(&entry.salesforce_id.referenced)),
                    format!("override #{}: {e}", index + 1),
                )
            })?;
            let name = format!("override for {salesforce_id}");
            let reason = entry
                .reason
                .map(|r| r.value.trim().to_owned())
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    error(
                        line,
                        format!("{name} has no reason; every override must say why"),
                    )
                })?;
            let expires = entry
                .expires
                .map(|e| {
                    NaiveDate::parse_from_str(e.value.trim(), "%Y-%m-%d").map_err(|_| {
                        error(
                            at(line_of(&e.referenced)),
                            format!("{name}: expires {:?} is not a date (YYYY-MM-DD)", e.value),
                        )
                    })
                })
                .transpose()?;
            let fields_line = at(line_of(&entry.fields.referenced));
            if entry.fields.value.is_empty() {
                return Err(error(fields_line, format!("{name} overrides no fields")));
            }
            for (key, value) in &entry.fields.value {
                check_field(key, value).map_err(|e| error(fields_line, format!("{name}: {e}")))?;
            }
            let entry = Override {
                salesforce_id: salesforce_id.clone(),
                reason,
                expires,
                fields: entry.fields.value,
            };
            let entry_line = line.unwrap_or(0);
            if let Some((_, first)) = by_id.insert(salesforce_id, (entry, entry_line)) {
                return Err(error(
                    line,
                    format!(
                        "{name} is listed twice (first at line {first}); merge the two entries"
                    ),
                ));
            }
        }
        Ok(Overrides {
            by_id: by_id.into_iter().map(|(id, (o, _))| (id, o)).collect(),
        })
    }

    pub fn get(&self, salesforce_id: &SalesforceId) -> Option<&Override> {
        self.by_id.get(salesforce_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Override> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

fn line_of(location: &serde_saphyr::Location) -> Option<u64> {
    Some(location.line()).filter(|line| *line > 0)
}

/// Whether `key` may be overridden and `value` has the type Zendesk expects for it.
fn check_field(key: &str, value: &Value) -> Result<(), String> {
    let global = Instance::Global;
    let kind = if global.flags().contains(&key)
        || [
            field::RESTRICTED_ACCOUNT,
            field::ORG_IN_ESCALATED_STATE,
            field::SUPPORT_HOLD,
        ]
        .contains(&key)
    {
        FieldKind::Checkbox
    } else if key == field::SUPPORT_LEVEL {
        FieldKind::SupportLevel
    } else if key == field::EXPIRATION_DATE {
        FieldKind::Date
    } else if key == global.seats_key() {
        FieldKind::Number
    } else if Some(key) == global.region_key() {
        FieldKind::Region
    } else if [
        field::ACCOUNT_OWNER,
        field::TECHNICAL_ACCOUNT_MANAGER,
        field::SOLUTIONS_ARCHITECT,
        global.segment_key(),
    ]
    .contains(&key)
    {
        FieldKind::Text
    } else if [
        field::SALESFORCE_ID,
        field::SFDC_SHORT_ID,
        field::MARK_FOR_DELETION,
    ]
    .contains(&key)
    {
        return Err(format!(
            "{key} identifies the org or drives deletion; it cannot be overridden"
        ));
    } else if key == field::ACCOUNT_TYPE || key == global.arr_key() {
        return Err(format!(
            "{key} is derived from support_level after overrides are applied; override support_level instead"
        ));
    } else if key == USGOV_FEDRAMP_FLAG || Instance::Usgov.field_keys().contains(&key) {
        return Err(format!(
            "{key} is not a Global field; overrides apply to Global objects only"
        ));
    } else {
        return Err(format!(
            "{key} is not an organization field the sync writes"
        ));
    };
    if kind.accepts(value) {
        Ok(())
    } else {
        Err(format!("{key} must be {}, not {value}", kind.describe()))
    }
}

#[derive(Clone, Copy)]
enum FieldKind {
    Checkbox,
    SupportLevel,
    Date,
    Number,
    Region,
    Text,
}

impl FieldKind {
    fn accepts(self, value: &Value) -> bool {
        match (self, value) {
            (FieldKind::Checkbox, Value::Bool(_)) => true,
            (FieldKind::SupportLevel, Value::String(s)) => SupportLevel::parse(s).is_some(),
            (FieldKind::Date, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            (FieldKind::Number, Value::Number(_) | Value::Null) => true,
            (FieldKind::Region, Value::Null) => true,
            (FieldKind::Region, Value::String(s)) => {
                Region::parse(s).is_some_and(|r| r.as_str() == s)
            }
            (FieldKind::Text, Value::String(_) | Value::Null) => true,
            _ => false,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            FieldKind::Checkbox => "true or false",
            FieldKind::SupportLevel => {
                "a support level (ultimate, gold, premium, silver, consumption_only, custom, community, expired)"
            }
            FieldKind::Date => "a date YYYY-MM-DD",
            FieldKind::Number => "a number or null",
            FieldKind::Region => "amer, apj, emea or null",
            FieldKind::Text => "text or null",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"
- salesforce_id: 0016100001AbCdEAAV
  reason: https://tracker.example/issues/123
  expires: 2027-01-31
  fields: { support_level: ultimate, sub_sm_ultimate: true, expiration_date: "2027-01-31" }
- salesforce_id: 0011U00000V0tkD
  reason: Gold for life, per the 2019 contract
  fields:
    support_level: gold
    seats_decimal: 50
"#;

    fn load(text: &str) -> Result<Overrides, LoadError> {
        Overrides::from_yaml(text, "overrides.yaml")
    }

    fn id(s: &str) -> SalesforceId {
        SalesforceId::parse(s).unwrap()
    }

    #[test]
    fn loads_the_documented_schema() {
        let overrides = load(FILE).unwrap();
        assert_eq!(overrides.len(), 2);
        let first = overrides.get(&id("0016100001AbCdEAAV")).unwrap();
        assert_eq!(first.reason, "https://tracker.example/issues/123");
        assert_eq!(first.expires, Some("2027-01-31".parse().unwrap()));
        assert_eq!(first.fields["support_level"], json!("ultimate"));
        assert_eq!(first.fields["sub_sm_ultimate"], json!(true));
        assert_eq!(first.fields["expiration_date"], json!("2027-01-31"));
        let second = overrides.get(&id("0011U00000V0tkDQAR")).unwrap();
        assert_eq!(second.expires, None);
        assert_eq!(second.fields["seats_decimal"], json!(50));
    }

    #[test]
    fn expiry_is_inclusive() {
        let overrides = load(FILE).unwrap();
        let o = overrides.get(&id("0016100001AbCdEAAV")).unwrap();
        assert!(o.is_active("2027-01-30".parse().unwrap()));
        assert!(o.is_active("2027-01-31".parse().unwrap()));
        assert!(!o.is_active("2027-02-01".parse().unwrap()));
        assert!(
            overrides
                .get(&id("0011U00000V0tkDQAR"))
                .unwrap()
                .is_active("2099-01-01".parse().unwrap())
        );
    }

    #[test]
    fn empty_files_mean_no_overrides() {
        assert!(load("").unwrap().is_empty());
        assert!(load("[]").unwrap().is_empty());
        assert!(load("# nothing yet\n").unwrap().is_empty());
    }

    fn error_of(text: &str) -> LoadError {
        load(text).unwrap_err()
    }

    #[test]
    fn a_missing_reason_is_an_error_with_the_line() {
        let err = error_of(&FILE.replace("  reason: Gold for life, per the 2019 contract\n", ""));
        assert_eq!(err.line, Some(6), "{err}");
        assert!(err.message.contains("0011U00000V0tkDQAR") && err.message.contains("no reason"));
        assert!(
            error_of(&FILE.replace("reason: https://tracker.example/issues/123", "reason: '  '"))
                .message
                .contains("no reason")
        );
    }

    #[test]
    fn bad_ids_dates_fields_and_values_are_errors() {
        let err = error_of(&FILE.replace("0011U00000V0tkD", "0011U00000V0tk'"));
        assert!(err.message.contains("override #2"), "{err}");
        let err = error_of(&FILE.replace("expires: 2027-01-31", "expires: 31/01/2027"));
        assert!(err.message.contains("expires \"31/01/2027\""), "{err}");
        assert_eq!(err.line, Some(4));
        for (replacement, expected) in [
            ("seats_decimal: \"fifty\"", "seats_decimal must be a number"),
            (
                "sub_platinum: true",
                "sub_platinum is not an organization field",
            ),
            ("sub_usgov_24x7: true", "not a Global field"),
            ("usgov_fedramp: true", "not a Global field"),
            ("account_type: customer", "derived from support_level"),
            ("aar: 5", "derived from support_level"),
            ("salesforce_id: 0011U00000V0tkDQAR", "cannot be overridden"),
            ("mark_for_deletion: false", "cannot be overridden"),
            ("notes: hello", "not an organization field the sync writes"),
            ("org_region: AMER", "amer, apj, emea"),
            ("sub_sm_ultimate: \"yes\"", "true or false"),
        ] {
            let err = error_of(&FILE.replace("seats_decimal: 50", replacement));
            assert!(err.message.contains(expected), "{replacement}: {err}");
            assert!(err.line.is_some(), "{replacement}: {err}");
        }
        let err = error_of(&FILE.replace("support_level: gold", "support_level: platinum"));
        assert!(err.message.contains("support level"), "{err}");
        let err = error_of("- salesforce_id: 0011U00000V0tkD\n  reason: x\n  fields: {}\n");
        assert!(err.message.contains("overrides no fields"), "{err}");
        assert!(
            error_of("- salesforce_id: 0011U00000V0tkD\n  reason: x\n  feilds: {a: 1}\n")
                .to_string()
                .contains("feilds")
        );
    }

    #[test]
    fn the_same_account_twice_is_an_error() {
        let text = format!(
            "{FILE}- salesforce_id: 0016100001AbCdE\n  reason: again\n  fields: {{ sub_oss: true }}\n"
        );
        let err = error_of(&text);
        assert!(
            err.message.contains("listed twice (first at line 2)"),
            "{err}"
        );
        assert_eq!(err.line, Some(11));
    }
}
