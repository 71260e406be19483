//! The JSONPath subset Amazon States Language uses for reference paths: `$`, `$.a.b`,
//! `$['a']`, `$.a[0]`, and `$$.…` for the context object.

use serde_json::{Map, Value};

use super::ExecError;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Parses a reference path into its root (`$` or `$$`) and segments.
fn parse(path: &str) -> Result<(bool, Vec<Segment>), String> {
    let (context, mut rest) = if let Some(rest) = path.strip_prefix("$$") {
        (true, rest)
    } else if let Some(rest) = path.strip_prefix('$') {
        (false, rest)
    } else {
        return Err(format!("{path:?} does not start with $"));
    };
    let mut segments = Vec::new();
    while !rest.is_empty() {
        if let Some(after_dot) = rest.strip_prefix('.') {
            let end = after_dot.find(['.', '[']).unwrap_or(after_dot.len());
            let key = &after_dot[..end];
            if key.is_empty() {
                return Err(format!("{path:?} has an empty field name"));
            }
            segments.push(Segment::Key(key.to_owned()));
            rest = &after_dot[end..];
        } else if let Some(after_bracket) = rest.strip_prefix('[') {
            let end = after_bracket
                .find(']')
                .ok_or_else(|| format!("{path:?} has an unclosed ["))?;
            let inner = &after_bracket[..end];
            let segment =
                if let Some(quoted) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    Segment::Key(quoted.to_owned())
                } else {
                    Segment::Index(
                        inner.parse().map_err(|_| {
                            format!("{path:?} has an unsupported selector [{inner}]")
                        })?,
                    )
                };
            segments.push(segment);
            rest = &after_bracket[end + 1..];
        } else {
            return Err(format!(
                "{path:?} is not a reference path this executor supports"
            ));
        }
    }
    Ok((context, segments))
}

/// Checks a path's syntax at load time.
pub fn validate(path: &str) -> Result<(), String> {
    parse(path).map(|_| ())
}

/// The value at `path` in `input` (or the context object for `$$`).
pub fn select(path: &str, input: &Value, context: &Value) -> Result<Value, ExecError> {
    let (use_context, segments) = parse(path).map_err(ExecError::runtime)?;
    let mut current = if use_context { context } else { input };
    for segment in &segments {
        let next = match (segment, current) {
            (Segment::Key(key), Value::Object(map)) => map.get(key),
            (Segment::Index(i), Value::Array(items)) => items.get(*i),
            _ => None,
        };
        current = next.ok_or_else(|| {
            ExecError::runtime(format!(
                "The JSONPath {path:?} could not be found in the input"
            ))
        })?;
    }
    Ok(current.clone())
}

/// Whether `path` resolves (for the `IsPresent` choice operator).
pub fn is_present(path: &str, input: &Value, context: &Value) -> bool {
    select(path, input, context).is_ok()
}

/// `ResultPath`: places `result` into `input` at `path`, creating objects on the way.
pub fn place(path: &str, input: Value, result: Value) -> Result<Value, ExecError> {
    let (use_context, segments) = parse(path).map_err(ExecError::runtime)?;
    if use_context {
        return Err(ExecError::runtime(format!(
            "ResultPath {path:?} cannot target the context object"
        )));
    }
    let mut root = input;
    if segments.is_empty() {
        return Ok(result);
    }
    let mut slot = &mut root;
    for segment in &segments {
        let Segment::Key(key) = segment else {
            return Err(ExecError::runtime(format!(
                "ResultPath {path:?} may only name fields"
            )));
        };
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        slot = slot
            .as_object_mut()
            .expect("just made an object")
            .entry(key.clone())
            .or_insert(Value::Null);
    }
    *slot = result;
    Ok(root)
}

/// Payload templates (`Parameters`, `ResultSelector`): fields ending in `.$` take the value
/// at their path; everything else is literal.
pub fn render(template: &Value, input: &Value, context: &Value) -> Result<Value, ExecError> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, value) in fields {
                match key.strip_suffix(".$") {
                    Some(name) => {
                        let path = value.as_str().ok_or_else(|| {
                            ExecError::runtime(format!(
                                "the value of {key:?} must be a path string"
                            ))
                        })?;
                        if path.starts_with("States.") {
                            return Err(ExecError::runtime(format!(
                                "intrinsic functions are not supported by the local executor ({key:?})"
                            )));
                        }
                        out.insert(name.to_owned(), select(path, input, context)?);
                    }
                    None => {
                        out.insert(key.clone(), render(value, input, context)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| render(item, input, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_fields_indexes_and_the_context() {
        let input = json!({"a": {"b": [10, {"c": "x"}]}, "odd key": 1});
        let ctx = json!({"Execution": {"Name": "run-1"}});
        assert_eq!(select("$", &input, &ctx).unwrap(), input);
        assert_eq!(select("$.a.b[1].c", &input, &ctx).unwrap(), json!("x"));
        assert_eq!(select("$['odd key']", &input, &ctx).unwrap(), json!(1));
        assert_eq!(
            select("$$.Execution.Name", &input, &ctx).unwrap(),
            json!("run-1")
        );
        let err = select("$.a.missing", &input, &ctx).unwrap_err();
        assert_eq!(err.error, "States.Runtime");
        assert!(err.cause.contains("$.a.missing"));
        assert!(validate("a.b").is_err());
        assert!(validate("$..a").is_err());
        assert!(validate("$.a[*]").is_err());
    }

    #[test]
    fn places_results() {
        let input = json!({"run_id": "r"});
        assert_eq!(place("$", input.clone(), json!(1)).unwrap(), json!(1));
        assert_eq!(
            place("$.stages.process", input.clone(), json!({"n": 1})).unwrap(),
            json!({"run_id": "r", "stages": {"process": {"n": 1}}})
        );
        assert_eq!(
            place("$.run_id", input, json!(2)).unwrap(),
            json!({"run_id": 2})
        );
    }

    #[test]
    fn renders_payload_templates() {
        let template = json!({"run_id.$": "$.id", "instance": "global", "nested": {"name.$": "$$.Execution.Name"}, "list": [{"x.$": "$.id"}]});
        let out = render(
            &template,
            &json!({"id": 7}),
            &json!({"Execution": {"Name": "n"}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"run_id": 7, "instance": "global", "nested": {"name": "n"}, "list": [{"x": 7}]})
        );
        assert!(render(&json!({"a.$": "$.nope"}), &json!({}), &json!({})).is_err());
        assert!(
            render(
                &json!({"a.$": "States.Format('x')"}),
                &json!({}),
                &json!({})
            )
            .is_err()
        );
    }
}
