//! The end of a run: one `summary.json` an operator reads first — what each stage counted, what
//! each sync did, which guard decisions were taken, and the first record errors.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::{RunInput, Stage, StageContext, StageOutput, artifacts};
use crate::error::StageError;
use crate::model::{
    ChangeSet, DesiredOrg, Instance, OrgMark, OrgUpdate, ProcessReport, RunSummary, StageSummary,
    SyncResult,
};
use crate::rules::GuardDecision;
use crate::store::{RunKeys, read_json_opt, write_json};

/// Record errors copied into the summary (the sync results hold all of them).
const ERRORS_SHOWN: usize = 20;

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let summary = summarize(ctx, &keys, &input).await?;
    let key = keys.key(artifacts::SUMMARY)?;
    write_json(ctx.store.as_ref(), &key, &summary).await?;

    let mut output = StageOutput::new(Stage::Summarize, None).with_artifact(key);
    for (stage, s) in &summary.stages {
        for (name, value) in &s.counts {
            output.counts.insert(format!("{stage}.{name}"), *value);
        }
    }
    Ok(output)
}

async fn summarize(
    ctx: &StageContext,
    keys: &RunKeys,
    input: &RunInput,
) -> Result<RunSummary, StageError> {
    let mut summary = RunSummary {
        run_id: input.run_id.clone(),
        as_of: Some(input.as_of),
        ..RunSummary::default()
    };
    if input.dry_run {
        summary
            .guard_decisions
            .push("dry run: compare only, Zendesk was not written".into());
    }
    if let Some(report) = optional::<ProcessReport>(ctx, keys, artifacts::PROCESS_REPORT).await? {
        summary.stages.insert(
            "process".into(),
            counts(&[
                ("accounts", report.accounts),
                ("global_objects", report.global_objects),
                ("usgov_objects", report.usgov_objects),
                ("skipped_accounts", report.skipped_accounts.len()),
                ("unmapped_charge_names", report.unmapped_charges.len()),
                ("overrides_applied", report.overrides.applied.len()),
                ("overrides_expired", report.overrides.expired.len()),
            ]),
        );
    }
    for instance in Instance::ALL {
        let creates =
            optional::<ChangeSet<DesiredOrg>>(ctx, keys, &artifacts::creates(instance)).await?;
        let updates =
            optional::<ChangeSet<OrgUpdate>>(ctx, keys, &artifacts::updates(instance)).await?;
        let marks =
            optional::<ChangeSet<OrgMark>>(ctx, keys, &artifacts::not_in_sync(instance)).await?;
        if let (Some(creates), Some(updates), Some(marks)) = (creates, updates, marks) {
            summary.stages.insert(
                format!("compare_{instance}"),
                counts(&[
                    ("creates", creates.items.len()),
                    ("updates", updates.items.len()),
                    ("marks", marks.items.len()),
                    ("conflicts", marks.conflicts.len()),
                ]),
            );
        }
        if let Some(result) =
            optional::<SyncResult>(ctx, keys, &artifacts::sync_result(instance)).await?
        {
            let mut stage = counts(&[
                ("created", result.created.len()),
                ("updated", result.updated.len()),
                ("marked", result.marked.len()),
                ("errors", result.errors.len()),
                ("warnings", result.warnings.len()),
            ]);
            stage.errors = result
                .errors
                .iter()
                .take(ERRORS_SHOWN)
                .map(|e| {
                    format!(
                        "{:?} {}: {} {}",
                        e.action,
                        e.key,
                        e.error,
                        e.details.as_deref().unwrap_or("")
                    )
                    .trim_end()
                    .to_owned()
                })
                .collect();
            if let Some(decision) = &result.deletion_guard {
                summary
                    .guard_decisions
                    .push(format!("{instance}: {}", describe_guard(decision)));
            }
            summary
                .errors
                .extend(stage.errors.iter().map(|e| format!("{instance}: {e}")));
            summary.stages.insert(format!("sync_{instance}"), stage);
        }
    }
    summary.errors.truncate(ERRORS_SHOWN);
    Ok(summary)
}

fn describe_guard(decision: &GuardDecision) -> String {
    match decision {
        GuardDecision::Allowed { marks, limit } => {
            format!("deletion guard passed: {marks} marks, limit {limit}")
        }
        GuardDecision::AllowedByOperator {
            marks,
            limit,
            allowed,
        } => {
            format!(
                "deletion guard: {marks} marks over the limit of {limit}, allowed by the operator (up to {allowed})"
            )
        }
        GuardDecision::Tripped {
            marks,
            limit,
            managed,
        } => {
            format!(
                "deletion guard TRIPPED: {marks} marks over the limit of {limit} ({managed} managed orgs); nothing marked"
            )
        }
    }
}

/// A missing artifact is fine here (a dry run has no sync results); a corrupt one is not.
async fn optional<T: DeserializeOwned>(
    ctx: &StageContext,
    keys: &RunKeys,
    name: &str,
) -> Result<Option<T>, StageError> {
    Ok(read_json_opt(ctx.store.as_ref(), &keys.key(name)?).await?)
}

fn counts(pairs: &[(&str, usize)]) -> StageSummary {
    StageSummary {
        counts: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), *v as u64))
            .collect::<BTreeMap<_, _>>(),
        errors: Vec::new(),
    }
}
