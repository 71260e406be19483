//! Equality by meaning (SPEC §7): Zendesk gives values back in other spellings than the sync
//! sent (`12345.0` for `12345`, a missing checkbox for `false`, `""` for null). Comparing text
//! would produce an update for every such org every hour; comparing meaning produces none.

use chrono::{DateTime, NaiveDate};
use serde_json::Value;

/// Whether two field values mean the same. `None` is a missing key. Symmetric.
pub fn same_meaning(a: Option<&Value>, b: Option<&Value>) -> bool {
    use Value::{Bool, Null, Number, String as Text};
    match (a.unwrap_or(&Null), b.unwrap_or(&Null)) {
        (Number(x), Number(y)) => x.as_f64() == y.as_f64(),
        (Number(n), Text(s)) | (Text(s), Number(n)) => {
            number_in_text(s).is_some_and(|x| Some(x) == n.as_f64())
        }
        (Bool(x), other) | (other, Bool(x)) => as_checkbox(other) == Some(*x),
        (Text(x), Text(y)) => same_text(x, y),
        (Null, Text(s)) | (Text(s), Null) => s.trim().is_empty(),
        (x, y) => x == y,
    }
}

/// A checkbox: missing, null and blank mean unchecked; the text `true`/`false` is tolerated
/// because some API paths return checkbox values as strings.
fn as_checkbox(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Null => Some(false),
        Value::String(s) => match s.trim() {
            "" | "false" => Some(false),
            "true" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

fn number_in_text(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Trimmed text; two dates are equal when they name the same day even if one came back as a
/// midnight timestamp (`2027-01-31` vs `2027-01-31T00:00:00Z`).
fn same_text(x: &str, y: &str) -> bool {
    let (x, y) = (x.trim(), y.trim());
    x == y || matches!((as_date(x), as_date(y)), (Some(a), Some(b)) if a == b)
}

fn as_date(s: &str) -> Option<NaiveDate> {
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(date);
    }
    let stamp = DateTime::parse_from_rfc3339(s).ok()?;
    let utc = stamp.naive_utc();
    (utc.time() == chrono::NaiveTime::MIN).then(|| utc.date())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn same(a: Value, b: Value) -> bool {
        same_meaning(Some(&a), Some(&b))
    }

    #[test]
    fn numbers_compare_numerically() {
        assert!(same(json!(12345), json!(12345.0)));
        assert!(same(json!(12345), json!("12345.0")));
        assert!(same(json!("12345.0"), json!(12345)));
        assert!(same(json!(0.1), json!(" 0.1 ")));
        assert!(!same(json!(12345), json!(12346)));
        assert!(!same(json!(12345), json!("12,345")));
        assert!(!same(json!(0), json!(null)));
        assert!(!same(json!(0), json!("")));
        assert!(!same_meaning(Some(&json!(0)), None));
    }

    #[test]
    fn text_is_trimmed_and_null_missing_empty_are_equal() {
        assert!(same(json!("Jane Doe"), json!("  Jane Doe ")));
        assert!(!same(json!("Jane Doe"), json!("jane doe")));
        assert!(same(json!(null), json!("")));
        assert!(same(json!(""), json!("   ")));
        assert!(same_meaning(Some(&json!(null)), None));
        assert!(same_meaning(Some(&json!("")), None));
        assert!(same_meaning(None, None));
        assert!(!same(json!("x"), json!(null)));
    }

    #[test]
    fn a_missing_checkbox_is_false() {
        assert!(same_meaning(Some(&json!(false)), None));
        assert!(same(json!(false), json!(null)));
        assert!(same(json!(false), json!("false")));
        assert!(same(json!(true), json!("true")));
        assert!(!same_meaning(Some(&json!(true)), None));
        assert!(!same(json!(true), json!(false)));
        assert!(!same(json!(false), json!("no")));
        assert!(!same(json!(false), json!(0)));
    }

    #[test]
    fn dates_match_midnight_timestamps() {
        assert!(same(json!("2027-01-31"), json!("2027-01-31T00:00:00Z")));
        assert!(same(
            json!("2027-01-31"),
            json!("2027-01-31T00:00:00+00:00")
        ));
        assert!(!same(json!("2027-01-31"), json!("2027-01-31T10:00:00Z")));
        assert!(!same(json!("2027-01-31"), json!("2027-02-01")));
    }

    #[test]
    fn other_values_compare_exactly() {
        assert!(same(json!(["a"]), json!(["a"])));
        assert!(!same(json!(["a"]), json!(["b"])));
        assert!(!same(json!({"a": 1}), json!("a")));
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e9f64..1e9).prop_map(|n| json!(n)),
            "[ a-z0-9.:TZ+-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reflexive(v in any_json()) {
            prop_assert!(same_meaning(Some(&v), Some(&v)));
        }

        #[test]
        fn symmetric(a in any_json(), b in any_json()) {
            prop_assert_eq!(same_meaning(Some(&a), Some(&b)), same_meaning(Some(&b), Some(&a)));
        }
    }
}
