//! The first state (SPEC §2, §10): fixes the run's identity and date, checks the execution input,
//! and stops the run at once — writing nothing — when an older execution is still running (it
//! will bring Zendesk up to date; two syncs writing at once could duplicate creates).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::context::{RunningExecution, StageContext};
use crate::error::StageError;
use crate::model::SyncKind;
use crate::store::validate_run_id;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardInput {
    pub run_id: String,
    pub execution_arn: String,
    pub state_machine_arn: String,
    /// `$$.Execution.StartTime`; the same on a redrive, so `as_of` is too.
    pub started_at: DateTime<Utc>,
    /// The execution's own input (`{}`, or options such as `allow_deletions`).
    #[serde(default)]
    pub execution_input: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardOutput {
    pub run_id: String,
    pub as_of: NaiveDate,
    pub skip: bool,
    pub options: RunOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_execution: Option<String>,
}

/// What an operator may pass when starting an execution. Unknown keys are refused so a typo
/// (`allow_deletion`) does not silently do nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunOptions {
    #[serde(default)]
    pub dry_run: bool,
    /// Gathers read every source in full, whatever their snapshots (a reconcile on request).
    #[serde(default)]
    pub full: bool,
    /// Per sync (`global`, `usgov`, `partners`, `users`): the operator checked the marks and
    /// allows up to N this execution.
    #[serde(default)]
    pub allow_deletions: BTreeMap<SyncKind, usize>,
    /// The date subscriptions are judged against; default: the execution's start date (UTC).
    /// For re-running a past day, and for local runs of a world generated for a date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
}

pub async fn run(ctx: &StageContext, input: GuardInput) -> Result<GuardOutput, StageError> {
    validate_run_id(&input.run_id).map_err(|e| StageError::InvalidConfig(e.to_string()))?;
    let options = parse_options(&input.execution_input)?;
    let lister = ctx
        .executions
        .as_ref()
        .ok_or_else(|| StageError::InvalidConfig("the guard has no execution lister".into()))?;
    let running = lister.running(&input.state_machine_arn).await?;
    let older = older_execution(&input.execution_arn, input.started_at, &running);
    if let Some(arn) = &older {
        tracing::warn!(older = %arn, "an older execution is still running; this one ends without writing");
    }
    Ok(GuardOutput {
        run_id: input.run_id,
        as_of: options
            .as_of
            .unwrap_or_else(|| input.started_at.date_naive()),
        skip: older.is_some(),
        options,
        older_execution: older,
    })
}

fn parse_options(execution_input: &Value) -> Result<RunOptions, StageError> {
    let input = match execution_input {
        Value::Null => return Ok(RunOptions::default()),
        other => other.clone(),
    };
    serde_path_to_error::deserialize(input).map_err(|e| {
        StageError::InvalidConfig(format!(
            "execution input is invalid at {}: {} (accepted: {{\"dry_run\": true, \"full\": true, \"allow_deletions\": {{\"global\": N, \"usgov\": N, \"partners\": N, \"users\": N}}, \"as_of\": \"YYYY-MM-DD\"}})",
            e.path(),
            e.inner()
        ))
    })
}

/// The running execution that started before this one, if any. Ties on the start time are
/// broken by ARN so that of two simultaneous executions exactly one proceeds.
pub fn older_execution(
    me: &str,
    started_at: DateTime<Utc>,
    running: &[RunningExecution],
) -> Option<String> {
    running
        .iter()
        .filter(|other| other.execution_arn != me)
        .filter(|other| (other.start, other.execution_arn.as_str()) < (started_at, me))
        .min_by_key(|other| (other.start, other.execution_arn.clone()))
        .map(|other| other.execution_arn.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn exec(arn: &str, start: &str) -> RunningExecution {
        RunningExecution {
            execution_arn: arn.into(),
            start: at(start),
        }
    }

    #[test]
    fn only_an_older_execution_blocks() {
        let me = "arn:…:execution:sync:b";
        let t = at("2026-11-23T10:00:00Z");
        assert_eq!(older_execution(me, t, &[]), None);
        assert_eq!(
            older_execution(me, t, &[exec(me, "2026-11-23T10:00:00Z")]),
            None,
            "itself"
        );
        assert_eq!(
            older_execution(me, t, &[exec("x", "2026-11-23T10:00:01Z")]),
            None,
            "newer"
        );
        assert_eq!(
            older_execution(
                me,
                t,
                &[
                    exec("old", "2026-11-23T09:00:00Z"),
                    exec("older", "2026-11-23T08:00:00Z")
                ]
            ),
            Some("older".into())
        );
        // Same start: the smaller ARN proceeds, the other stops.
        assert_eq!(
            older_execution(
                me,
                t,
                &[exec("arn:…:execution:sync:a", "2026-11-23T10:00:00Z")]
            ),
            Some("arn:…:execution:sync:a".into())
        );
        assert_eq!(
            older_execution(
                "arn:…:execution:sync:a",
                t,
                &[exec(me, "2026-11-23T10:00:00Z")]
            ),
            None
        );
    }

    #[test]
    fn options_are_validated() {
        assert_eq!(parse_options(&json!({})).unwrap(), RunOptions::default());
        assert_eq!(parse_options(&Value::Null).unwrap(), RunOptions::default());
        let options = parse_options(&json!({"dry_run": true,
            "allow_deletions": {"global": 40, "usgov": 1, "partners": 3, "users": 30}}))
        .unwrap();
        assert!(options.dry_run);
        assert_eq!(options.allow_deletions[&SyncKind::Global], 40);
        assert_eq!(options.allow_deletions[&SyncKind::Partners], 3);
        assert_eq!(options.allow_deletions[&SyncKind::Users], 30);
        let err = parse_options(&json!({"allow_deletion": {"global": 40}})).unwrap_err();
        assert_eq!(err.name(), "InvalidConfig");
        assert!(err.to_string().contains("allow_deletion"), "{err}");
        let err = parse_options(&json!({"allow_deletions": {"partner": 4}})).unwrap_err();
        assert!(
            err.to_string().contains("partners"),
            "names the accepted keys: {err}"
        );
        assert!(parse_options(&json!({"allow_deletions": {"global": -1}})).is_err());
        assert!(parse_options(&json!([1])).is_err());
    }
}
