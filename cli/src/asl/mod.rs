//! A local executor for the Amazon States Language subset `statemachine/sync.asl.json` uses, so
//! `zdsync run` exercises the real orchestration (paths, parameters, retries, parallel branches,
//! redrive) rather than a copy of it.

pub mod definition;
pub mod exec;
pub mod path;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use definition::StateMachine;
pub use exec::{
    Checkpoint, Event, ExecutionOptions, ExecutionRecord, ExecutionStatus, Observer, Quiet,
    StateRecord, StateStatus, TaskInvoker, redrive, start,
};

/// A failure as Step Functions names it: an error name (what Retry and Catch match) and a cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct ExecError {
    pub error: String,
    pub cause: String,
}

impl ExecError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> ExecError {
        ExecError {
            error: error.into(),
            cause: cause.into(),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> ExecError {
        ExecError::new("States.Runtime", cause)
    }
}

/// The `${Name}` placeholders of a definition (SAM `DefinitionSubstitutions`).
pub fn placeholders(definition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = definition;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                names.insert(after[..end].to_owned());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

/// The definition with every `${Name}` replaced, as CloudFormation's `DefinitionSubstitutions`
/// does. An unresolved placeholder is an error.
pub fn substitute(
    definition: &str,
    substitutions: &BTreeMap<String, String>,
) -> Result<String, String> {
    let missing: Vec<String> = placeholders(definition)
        .into_iter()
        .filter(|name| !substitutions.contains_key(name))
        .collect();
    if !missing.is_empty() {
        return Err(format!("no substitution for {}", missing.join(", ")));
    }
    let mut text = definition.to_owned();
    for (name, value) in substitutions {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    Ok(text)
}

/// Resolves every `${Name}` and parses the definition. An unresolved placeholder is an error.
pub fn load(
    definition: &str,
    substitutions: &BTreeMap<String, String>,
) -> Result<StateMachine, String> {
    let text = substitute(definition, substitutions)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("the state machine is not valid JSON: {e}"))?;
    StateMachine::parse(&value)
}

#[cfg(test)]
mod tests;
