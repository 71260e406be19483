//! The end of a run: one `summary.json` an operator reads first — what each stage counted, what
//! each of the four syncs did, which guard decisions were taken, and the first record errors.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{RunInput, Stage, StageContext, StageOutput, artifacts};
use crate::error::StageError;
use crate::model::{
    ChangeSet, PartnerAccounts, ProcessReport, RunSummary, SalesforceContacts, StageSummary,
    SyncKind, SyncResult, ZendeskUsers,
};
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
    if let Some(partners) =
        optional::<PartnerAccounts>(ctx, keys, artifacts::PARTNER_ACCOUNTS).await?
    {
        summary.stages.insert(
            "gather_partners".into(),
            counts(&[
                ("partners", partners.accounts.len()),
                ("rejected", partners.rejected.len()),
            ]),
        );
    }
    if let Some(users) = optional::<ZendeskUsers>(ctx, keys, artifacts::USERS).await? {
        summary.stages.insert(
            "gather_users".into(),
            counts(&[
                ("end_users", users.users.len()),
                ("protected_skipped", users.protected),
                ("not_end_users", users.not_end_users),
            ]),
        );
    }
    if let Some(contacts) = optional::<SalesforceContacts>(ctx, keys, artifacts::CONTACTS).await? {
        summary.stages.insert(
            "gather_contacts".into(),
            counts(&[
                ("contacts", contacts.contacts.len()),
                ("ambiguous_emails", contacts.ambiguous_emails.len()),
                ("held", contacts.held.len()),
                ("without_email", contacts.without_email),
                ("protected_skipped", contacts.protected),
                ("rejected", contacts.rejected.len()),
            ]),
        );
    }
    for sync in SyncKind::ALL {
        // The items' shape differs per sync; only their number matters here.
        let creates = optional::<ChangeSet<Value>>(ctx, keys, &artifacts::creates(sync)).await?;
        let updates = optional::<ChangeSet<Value>>(ctx, keys, &artifacts::updates(sync)).await?;
        let marks = optional::<ChangeSet<Value>>(ctx, keys, &artifacts::not_in_sync(sync)).await?;
        if let (Some(creates), Some(updates), Some(marks)) = (creates, updates, marks) {
            summary.stages.insert(
                format!("compare_{sync}"),
                counts(&[
                    ("creates", creates.items.len()),
                    ("updates", updates.items.len()),
                    ("marks", marks.items.len()),
                    ("conflicts", marks.conflicts.len()),
                    (
                        "held_back",
                        creates.held_back.len() + updates.held_back.len(),
                    ),
                ]),
            );
        }
        let Some(result) = optional::<SyncResult>(ctx, keys, &artifacts::sync_result(sync)).await?
        else {
            continue;
        };
        let mut stage = counts(&[
            ("created", result.created.len()),
            ("updated", result.updated.len()),
            ("marked", result.marked.len()),
            ("errors", result.errors.len()),
            ("held_back", result.held_back.len()),
            ("warnings", result.warnings.len()),
        ]);
        if sync == SyncKind::Global {
            stage.counts.insert(
                "without_contacts".into(),
                result.without_contacts.len() as u64,
            );
        }
        stage.errors = result
            .errors
            .iter()
            .take(ERRORS_SHOWN)
            .map(|e| e.describe())
            .collect();
        if let Some(decision) = &result.deletion_guard {
            summary
                .guard_decisions
                .push(format!("{sync}: {}", decision.describe(sync.records())));
        }
        summary
            .errors
            .extend(stage.errors.iter().map(|e| format!("{sync}: {e}")));
        summary.stages.insert(format!("sync_{sync}"), stage);
    }
    summary.errors.truncate(ERRORS_SHOWN);
    Ok(summary)
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
