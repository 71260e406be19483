//! Parsing and checking an ASL definition. Only the subset the executor implements is accepted;
//! anything else is an error naming the state and field, never silently ignored, so the local run
//! cannot quietly diverge from what Step Functions would do.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path;

#[derive(Debug, Clone, PartialEq)]
pub struct StateMachine {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub name: String,
    pub kind: StateKind,
    /// `None` for terminal states (End, Succeed, Fail).
    pub next: Option<String>,
    pub input_path: Option<Option<String>>,
    pub output_path: Option<Option<String>>,
    pub parameters: Option<Value>,
    pub result_selector: Option<Value>,
    /// `None`: default `$`; `Some(None)`: `null` (discard the result).
    pub result_path: Option<Option<String>>,
    pub retry: Vec<Retrier>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StateKind {
    Task {
        resource: String,
    },
    Parallel {
        branches: Vec<StateMachine>,
    },
    Pass {
        result: Option<Value>,
    },
    Choice {
        choices: Vec<ChoiceRule>,
        default: Option<String>,
    },
    Succeed,
    Fail {
        error: Option<String>,
        cause: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub full_jitter: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        variable: String,
        op: CompareOp,
        value: Value,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    StringEquals,
    BooleanEquals,
    NumericEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    NumericLessThan,
    NumericLessThanEquals,
    IsPresent,
    IsNull,
}

impl CompareOp {
    fn parse(name: &str) -> Option<CompareOp> {
        Some(match name {
            "StringEquals" => CompareOp::StringEquals,
            "BooleanEquals" => CompareOp::BooleanEquals,
            "NumericEquals" => CompareOp::NumericEquals,
            "NumericGreaterThan" => CompareOp::NumericGreaterThan,
            "NumericGreaterThanEquals" => CompareOp::NumericGreaterThanEquals,
            "NumericLessThan" => CompareOp::NumericLessThan,
            "NumericLessThanEquals" => CompareOp::NumericLessThanEquals,
            "IsPresent" => CompareOp::IsPresent,
            "IsNull" => CompareOp::IsNull,
            _ => return None,
        })
    }
}

type Fields<'a> = &'a Map<String, Value>;

impl StateMachine {
    /// Parses a definition whose `${…}` substitutions were already resolved.
    pub fn parse(definition: &Value) -> Result<StateMachine, String> {
        let machine = parse_machine(definition, "")?;
        machine.check_transitions("")?;
        Ok(machine)
    }

    /// Every Task `Resource`, including those inside Parallel branches.
    pub fn task_resources(&self) -> BTreeSet<String> {
        let mut resources = BTreeSet::new();
        for state in self.states.values() {
            match &state.kind {
                StateKind::Task { resource } => {
                    resources.insert(resource.clone());
                }
                StateKind::Parallel { branches } => {
                    for branch in branches {
                        resources.extend(branch.task_resources());
                    }
                }
                _ => {}
            }
        }
        resources
    }

    /// States no path from `StartAt` reaches (in this machine and every branch).
    pub fn unreachable_states(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![self.start_at.clone()];
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(state) = self.states.get(&name) {
                todo.extend(state.successors());
            }
        }
        let mut unreachable: Vec<String> = self
            .states
            .keys()
            .filter(|name| !seen.contains(*name))
            .cloned()
            .collect();
        for state in self.states.values() {
            if let StateKind::Parallel { branches } = &state.kind {
                unreachable.extend(branches.iter().flat_map(StateMachine::unreachable_states));
            }
        }
        unreachable
    }

    fn check_transitions(&self, scope: &str) -> Result<(), String> {
        if !self.states.contains_key(&self.start_at) {
            return Err(format!("{scope}StartAt {:?} names no state", self.start_at));
        }
        for state in self.states.values() {
            for target in state.successors() {
                if !self.states.contains_key(&target) {
                    return Err(format!(
                        "state {:?} transitions to {target:?}, which does not exist",
                        state.name
                    ));
                }
            }
            if let StateKind::Parallel { branches } = &state.kind {
                for (i, branch) in branches.iter().enumerate() {
                    branch.check_transitions(&format!("{}.Branches[{i}]: ", state.name))?;
                }
            }
        }
        Ok(())
    }
}

impl State {
    fn successors(&self) -> Vec<String> {
        let mut next: Vec<String> = self.next.iter().cloned().collect();
        if let StateKind::Choice { choices, default } = &self.kind {
            next.extend(choices.iter().map(|c| c.next.clone()));
            next.extend(default.iter().cloned());
        }
        next
    }
}

fn parse_machine(value: &Value, scope: &str) -> Result<StateMachine, String> {
    let fields = value
        .as_object()
        .ok_or(format!("{scope}a state machine must be an object"))?;
    allow_only(
        fields,
        &["Comment", "StartAt", "States", "TimeoutSeconds", "Version"],
        scope,
    )?;
    let start_at = string(fields, "StartAt", scope)?.ok_or(format!("{scope}StartAt is missing"))?;
    let states_value = fields
        .get("States")
        .and_then(Value::as_object)
        .ok_or(format!("{scope}States is missing"))?;
    let mut states = BTreeMap::new();
    for (name, state) in states_value {
        states.insert(name.clone(), parse_state(name, state)?);
    }
    Ok(StateMachine {
        start_at,
        states,
        timeout_seconds: fields.get("TimeoutSeconds").and_then(Value::as_u64),
    })
}

fn parse_state(name: &str, value: &Value) -> Result<State, String> {
    let scope = format!("state {name:?}: ");
    let fields = value
        .as_object()
        .ok_or(format!("{scope}must be an object"))?;
    let kind_name = string(fields, "Type", &scope)?.ok_or(format!("{scope}Type is missing"))?;
    let io = ["Comment", "Type", "InputPath", "OutputPath"];
    let transition = ["Next", "End"];
    let (allowed, kind): (Vec<&str>, StateKind) = match kind_name.as_str() {
        "Task" => (
            [
                &io[..],
                &transition,
                &[
                    "Resource",
                    "Parameters",
                    "ResultSelector",
                    "ResultPath",
                    "Retry",
                ],
            ]
            .concat(),
            StateKind::Task {
                resource: string(fields, "Resource", &scope)?
                    .ok_or(format!("{scope}Resource is missing"))?,
            },
        ),
        "Parallel" => {
            let branches = fields
                .get("Branches")
                .and_then(Value::as_array)
                .ok_or(format!("{scope}Branches is missing"))?
                .iter()
                .enumerate()
                .map(|(i, b)| parse_machine(b, &format!("{scope}Branches[{i}]: ")))
                .collect::<Result<Vec<_>, _>>()?;
            (
                [
                    &io[..],
                    &transition,
                    &[
                        "Branches",
                        "Parameters",
                        "ResultSelector",
                        "ResultPath",
                        "Retry",
                    ],
                ]
                .concat(),
                StateKind::Parallel { branches },
            )
        }
        "Pass" => (
            [
                &io[..],
                &transition,
                &["Result", "Parameters", "ResultPath"],
            ]
            .concat(),
            StateKind::Pass {
                result: fields.get("Result").cloned(),
            },
        ),
        "Choice" => {
            let choices = fields
                .get("Choices")
                .and_then(Value::as_array)
                .ok_or(format!("{scope}Choices is missing"))?
                .iter()
                .map(|rule| parse_choice_rule(rule, &scope))
                .collect::<Result<Vec<_>, _>>()?;
            (
                [&io[..], &["Choices", "Default"]].concat(),
                StateKind::Choice {
                    choices,
                    default: string(fields, "Default", &scope)?,
                },
            )
        }
        "Succeed" => (io.to_vec(), StateKind::Succeed),
        "Fail" => (
            vec!["Comment", "Type", "Error", "Cause"],
            StateKind::Fail {
                error: string(fields, "Error", &scope)?,
                cause: string(fields, "Cause", &scope)?,
            },
        ),
        other => {
            return Err(format!(
                "{scope}Type {other:?} is not supported by the local executor"
            ));
        }
    };
    allow_only(fields, &allowed, &scope)?;

    let next = string(fields, "Next", &scope)?;
    let end = fields.get("End").and_then(Value::as_bool).unwrap_or(false);
    let needs_transition = matches!(
        kind,
        StateKind::Task { .. } | StateKind::Parallel { .. } | StateKind::Pass { .. }
    );
    if needs_transition && next.is_some() == end {
        return Err(format!("{scope}needs exactly one of Next or End: true"));
    }
    Ok(State {
        name: name.to_owned(),
        kind,
        next,
        input_path: nullable_path(fields, "InputPath", &scope)?,
        output_path: nullable_path(fields, "OutputPath", &scope)?,
        parameters: fields.get("Parameters").cloned(),
        result_selector: fields.get("ResultSelector").cloned(),
        result_path: nullable_path(fields, "ResultPath", &scope)?,
        retry: fields
            .get("Retry")
            .map(|r| parse_retry(r, &scope))
            .transpose()?
            .unwrap_or_default(),
    })
}

fn parse_retry(value: &Value, scope: &str) -> Result<Vec<Retrier>, String> {
    let rules = value
        .as_array()
        .ok_or(format!("{scope}Retry must be a list"))?;
    rules
        .iter()
        .map(|rule| {
            let fields = rule
                .as_object()
                .ok_or(format!("{scope}a Retry rule must be an object"))?;
            allow_only(
                fields,
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ],
                scope,
            )?;
            let error_equals = fields
                .get("ErrorEquals")
                .and_then(Value::as_array)
                .ok_or(format!("{scope}Retry needs ErrorEquals"))?
                .iter()
                .map(|e| {
                    e.as_str()
                        .map(str::to_owned)
                        .ok_or(format!("{scope}ErrorEquals must list strings"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let jitter = string(fields, "JitterStrategy", scope)?;
            if jitter
                .as_deref()
                .is_some_and(|j| j != "FULL" && j != "NONE")
            {
                return Err(format!("{scope}JitterStrategy must be FULL or NONE"));
            }
            Ok(Retrier {
                error_equals,
                interval_seconds: fields
                    .get("IntervalSeconds")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0),
                max_attempts: fields
                    .get("MaxAttempts")
                    .and_then(Value::as_u64)
                    .unwrap_or(3) as u32,
                backoff_rate: fields
                    .get("BackoffRate")
                    .and_then(Value::as_f64)
                    .unwrap_or(2.0),
                max_delay_seconds: fields.get("MaxDelaySeconds").and_then(Value::as_f64),
                full_jitter: jitter.as_deref() == Some("FULL"),
            })
        })
        .collect()
}

fn parse_choice_rule(value: &Value, scope: &str) -> Result<ChoiceRule, String> {
    let fields = value
        .as_object()
        .ok_or(format!("{scope}a choice rule must be an object"))?;
    let next = string(fields, "Next", scope)?.ok_or(format!("{scope}a choice rule needs Next"))?;
    let mut condition_fields = fields.clone();
    condition_fields.remove("Next");
    Ok(ChoiceRule {
        condition: parse_condition(&condition_fields, scope)?,
        next,
    })
}

fn parse_condition(fields: Fields, scope: &str) -> Result<Condition, String> {
    let list = |key: &str| -> Result<Vec<Condition>, String> {
        fields[key]
            .as_array()
            .ok_or(format!("{scope}{key} must be a list"))?
            .iter()
            .map(|c| {
                parse_condition(
                    c.as_object()
                        .ok_or(format!("{scope}{key} items must be objects"))?,
                    scope,
                )
            })
            .collect()
    };
    if fields.contains_key("And") {
        return Ok(Condition::And(list("And")?));
    }
    if fields.contains_key("Or") {
        return Ok(Condition::Or(list("Or")?));
    }
    if let Some(inner) = fields.get("Not") {
        let inner = inner
            .as_object()
            .ok_or(format!("{scope}Not must be an object"))?;
        return Ok(Condition::Not(Box::new(parse_condition(inner, scope)?)));
    }
    let variable =
        string(fields, "Variable", scope)?.ok_or(format!("{scope}a choice rule needs Variable"))?;
    path::validate(&variable).map_err(|e| format!("{scope}{e}"))?;
    let mut ops = fields
        .iter()
        .filter(|(k, _)| *k != "Variable" && *k != "Comment");
    let (op_name, value) = ops
        .next()
        .ok_or(format!("{scope}a choice rule needs a comparison"))?;
    if ops.next().is_some() {
        return Err(format!("{scope}a choice rule may have one comparison"));
    }
    let op = CompareOp::parse(op_name).ok_or(format!(
        "{scope}comparison {op_name} is not supported by the local executor"
    ))?;
    Ok(Condition::Compare {
        variable,
        op,
        value: value.clone(),
    })
}

fn allow_only(fields: Fields, allowed: &[&str], scope: &str) -> Result<(), String> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(field) => Err(format!(
            "{scope}field {field:?} is not supported here by the local executor"
        )),
        None => Ok(()),
    }
}

fn string(fields: Fields, key: &str, scope: &str) -> Result<Option<String>, String> {
    match fields.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{scope}{key} must be a string")),
    }
}

fn nullable_path(fields: Fields, key: &str, scope: &str) -> Result<Option<Option<String>>, String> {
    match fields.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(p)) => {
            path::validate(p).map_err(|e| format!("{scope}{key}: {e}"))?;
            Ok(Some(Some(p.clone())))
        }
        Some(_) => Err(format!("{scope}{key} must be a path or null")),
    }
}
