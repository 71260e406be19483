//! `report.md`: the run in words for a support-ops admin, written by the summarize stage beside
//! `summary.json` for every run, failed ones included.
//!
//! Two halves: [`load`] reads what the report needs from the run's artifacts (light types for
//! what it only counts: a first run's creates set is tens of megabytes), and [`render_report`]
//! is a pure function of that. The numbers of the sync table are the summary's own, so the
//! report and `summary.json` can never disagree.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::artifacts;
use crate::model::{
    ChangeSet, Conflict, HeldBack, RecordError, RunFailure, RunSummary, SkipReason, StageSummary,
    SyncKind,
};
use crate::store::{ArtifactStore, RunKeys, StoreError, read_json_opt};

/// Records listed per list (errors, conflicts, held back); the artifacts hold all of them.
pub const LISTED: usize = 200;

/// Field keys in the most-changed-fields table.
pub const TOP_FIELDS: usize = 15;

/// Everything the report shows, read from the run's artifacts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportInputs {
    pub summary: RunSummary,
    /// The run stopped after compare: the numbers are what the syncs would do.
    pub dry_run: bool,
    /// Where the run's artifacts are: the store and the run's prefix.
    pub artifacts_at: String,
    /// Per sync whose compare or sync left anything.
    pub syncs: BTreeMap<SyncKind, SyncDetails>,
    /// `process_report.json`, when the process stage got that far.
    pub process: Option<ProcessCounts>,
    /// Field key → how many planned updates change it, per sync.
    pub field_changes: BTreeMap<String, BTreeMap<SyncKind, u64>>,
    /// Artifacts that exist but could not be read (failure path only: the report of a failed
    /// run is written with what could be read), with why.
    pub unreadable: Vec<String>,
}

/// What one sync's artifacts say record by record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncDetails {
    /// Every record Zendesk refused (from the sync result).
    pub errors: Vec<RecordError>,
    /// Keys on several Zendesk records (from compare's change sets).
    pub conflicts: Vec<Conflict>,
    /// Creates and renames not sent: the sync's, or compare's when the sync did not run.
    pub held_back: Vec<HeldBack>,
    pub warnings: Vec<String>,
}

/// The part of `process_report.json` the report shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessCounts {
    pub unmapped_charges: BTreeMap<String, u64>,
    pub skipped_by_reason: BTreeMap<&'static str, usize>,
}

/// The run's artifacts the report reads, decoded only as far as it needs them.
#[derive(Deserialize)]
struct ProcessReportView {
    #[serde(default)]
    unmapped_charges: BTreeMap<String, u64>,
    #[serde(default)]
    skipped_accounts: Vec<SkippedView>,
}

#[derive(Deserialize)]
struct SkippedView {
    reason: SkipReason,
}

#[derive(Deserialize)]
struct SyncResultView {
    #[serde(default)]
    errors: Vec<RecordError>,
    #[serde(default)]
    held_back: Vec<HeldBack>,
    #[serde(default)]
    warnings: Vec<String>,
}

/// An update of an org or a user, as far as which fields it changes.
#[derive(Deserialize)]
struct UpdateFields {
    #[serde(default)]
    name: Option<IgnoredAny>,
    #[serde(default)]
    organization_id: Option<IgnoredAny>,
    #[serde(default)]
    organization_fields: BTreeMap<String, IgnoredAny>,
    #[serde(default)]
    user_fields: BTreeMap<String, IgnoredAny>,
}

impl UpdateFields {
    fn keys(&self) -> impl Iterator<Item = &str> {
        let top = [
            self.name.as_ref().map(|_| "name"),
            self.organization_id.as_ref().map(|_| "organization_id"),
        ];
        top.into_iter()
            .flatten()
            .chain(self.organization_fields.keys().map(String::as_str))
            .chain(self.user_fields.keys().map(String::as_str))
    }
}

/// How the loader treats an artifact it cannot decode: the succeeded run's report fails naming
/// it; a failed run's report notes it and goes on, so the run still reports itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corrupt {
    Fail,
    Note,
}

/// Reads what the report of `summary`'s run needs. A missing artifact is fine (a run that
/// failed early has few).
pub async fn load(
    store: &dyn ArtifactStore,
    keys: &RunKeys,
    summary: RunSummary,
    dry_run: bool,
    corrupt: Corrupt,
) -> Result<ReportInputs, StoreError> {
    let mut inputs = ReportInputs {
        summary,
        dry_run,
        artifacts_at: artifacts_at(store, keys),
        ..ReportInputs::default()
    };
    let mut reader = Reader {
        store,
        keys,
        corrupt,
        unreadable: Vec::new(),
    };
    if let Some(report) = reader
        .read::<ProcessReportView>(artifacts::PROCESS_REPORT)
        .await?
    {
        inputs.process = Some(process_counts(report));
    }
    for sync in SyncKind::ALL {
        let result = reader
            .read::<SyncResultView>(&artifacts::sync_result(sync))
            .await?;
        let updates = reader
            .read::<ChangeSet<UpdateFields>>(&artifacts::updates(sync))
            .await?;
        // Held-back creates travel in the creates set, which is only needed when the sync
        // did not report them itself (a dry run, a sync that never ran).
        let creates = match result {
            Some(_) => None,
            None => {
                reader
                    .read::<ChangeSet<IgnoredAny>>(&artifacts::creates(sync))
                    .await?
            }
        };
        if result.is_none() && updates.is_none() && creates.is_none() {
            continue;
        }
        let mut details = SyncDetails::default();
        if let Some(updates) = &updates {
            for item in &updates.items {
                for key in item.keys() {
                    *inputs
                        .field_changes
                        .entry(key.to_owned())
                        .or_default()
                        .entry(sync)
                        .or_default() += 1;
                }
            }
        }
        match result {
            Some(result) => {
                details.errors = result.errors;
                details.held_back = result.held_back;
                details.warnings = result.warnings;
            }
            None => {
                details.held_back = creates
                    .iter()
                    .flat_map(|c| c.held_back.iter().cloned())
                    .chain(updates.iter().flat_map(|u| u.held_back.iter().cloned()))
                    .collect();
            }
        }
        // Every change set carries the compare's conflicts; either one will do.
        details.conflicts = updates
            .map(|u| u.conflicts)
            .or_else(|| creates.map(|c| c.conflicts))
            .unwrap_or_default();
        inputs.syncs.insert(sync, details);
    }
    inputs.unreadable = reader.unreadable;
    Ok(inputs)
}

struct Reader<'a> {
    store: &'a dyn ArtifactStore,
    keys: &'a RunKeys,
    corrupt: Corrupt,
    unreadable: Vec<String>,
}

impl Reader<'_> {
    async fn read<T: serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = self.keys.key(name)?;
        match read_json_opt(self.store, &key).await {
            Ok(value) => Ok(value),
            Err(e @ StoreError::InvalidArtifact { .. }) if self.corrupt == Corrupt::Note => {
                self.unreadable.push(e.to_string());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

fn process_counts(report: ProcessReportView) -> ProcessCounts {
    let mut skipped_by_reason = BTreeMap::new();
    for skipped in &report.skipped_accounts {
        *skipped_by_reason
            .entry(skipped.reason.describe())
            .or_default() += 1;
    }
    ProcessCounts {
        unmapped_charges: report.unmapped_charges,
        skipped_by_reason,
    }
}

/// One row of the sync table: each cell a count of the summary, `None` when the stage it comes
/// from did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRow {
    pub sync: SyncKind,
    pub creates: Option<u64>,
    pub updates: Option<u64>,
    pub marks: Option<u64>,
    pub errors: Option<u64>,
    pub held_back: Option<u64>,
    pub conflicts: Option<u64>,
    /// The user sync only.
    pub ambiguous: Option<u64>,
    /// "1200 creates, 3 updates"; empty when nothing was left.
    pub left_for_next_run: String,
}

/// A sync's row from the summary: a dry run shows what compare would have the sync do; a real
/// run what the sync did, with compare's conflicts (the sync never sees them). None when
/// neither its compare nor its sync ran.
pub fn sync_row(summary: &RunSummary, sync: SyncKind, dry_run: bool) -> Option<SyncRow> {
    let compare = summary.stages.get(&format!("compare_{sync}"));
    let synced = summary.stages.get(&format!("sync_{sync}"));
    if compare.is_none() && synced.is_none() {
        return None;
    }
    let count = |stage: Option<&StageSummary>, key: &str| {
        stage.map(|s| s.counts.get(key).copied().unwrap_or(0))
    };
    let (done, creates, updates, marks, held_back) = if dry_run {
        (compare, "creates", "updates", "marks", "held_back")
    } else {
        (synced, "created", "updated", "marked", "held_back")
    };
    let ambiguous = (sync == SyncKind::Users)
        .then(|| {
            count(compare, "ambiguous_emails")
                .or_else(|| count(summary.stages.get("gather_contacts"), "ambiguous_emails"))
        })
        .flatten();
    let left: Vec<String> = [
        ("creates_left", "create"),
        ("updates_left", "update"),
        ("marks_left", "mark"),
    ]
    .into_iter()
    .filter_map(|(key, what)| {
        let n = count(synced, key).unwrap_or(0);
        (n > 0).then(|| plural(n, what))
    })
    .collect();
    Some(SyncRow {
        sync,
        creates: count(done, creates),
        updates: count(done, updates),
        marks: count(done, marks),
        // Nothing is sent in a dry run, so nothing can be refused: no count, not zero.
        errors: count(synced, "errors"),
        held_back: count(done, held_back),
        conflicts: count(compare, "conflicts"),
        ambiguous,
        left_for_next_run: left.join(", "),
    })
}

fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The report, in Markdown.
pub fn render_report(inputs: &ReportInputs) -> String {
    let mut out = String::new();
    headline(&mut out, inputs);
    sync_table(&mut out, inputs);
    attempts(&mut out, &inputs.summary);
    api_use(&mut out, &inputs.summary);
    gathers(&mut out, &inputs.summary);
    guard_decisions(&mut out, &inputs.summary);
    process_section(&mut out, inputs.process.as_ref());
    field_table(&mut out, &inputs.field_changes);
    record_lists(&mut out, inputs);
    warnings(&mut out, inputs);
    let _ = writeln!(out, "## Artifacts\n");
    let _ = writeln!(
        out,
        "All of this run's artifacts are in `{}`: `summary.json` (the counts of every stage), \
         the compare sets (`*creates.json`, `*updates.json`, `*not_in_sync.json`), the sync \
         results (`*sync_result.json`, every record) and `process_report.json`.",
        inputs.artifacts_at
    );
    out
}

fn headline(out: &mut String, inputs: &ReportInputs) {
    let summary = &inputs.summary;
    let _ = writeln!(out, "# zdsync run {}\n", summary.run_id);
    let as_of = summary
        .as_of
        .map(|d| d.to_string())
        .unwrap_or_else(|| "unknown".into());
    let _ = writeln!(out, "- as of: {as_of}");
    let _ = writeln!(out, "- status: **{}**", summary.status.as_str());
    if inputs.dry_run {
        let _ = writeln!(
            out,
            "- dry run: gather and compare only; Zendesk was not written. The numbers below are what the syncs would do."
        );
    }
    if let Some(failure) = &summary.failure {
        failure_lines(out, &summary.run_id, failure);
    }
    let _ = writeln!(out);
}

fn failure_lines(out: &mut String, run_id: &str, failure: &RunFailure) {
    let _ = writeln!(
        out,
        "- failed state: {}",
        failure.state.as_deref().unwrap_or("(not known)")
    );
    let _ = writeln!(out, "- error: `{}`", failure.error);
    if !failure.cause.is_empty() {
        let _ = writeln!(out, "- cause: {}", one_line(&failure.cause));
    }
    if !failure.running.is_empty() {
        let _ = writeln!(
            out,
            "- still running when it stopped (let them finish before a redrive): {}",
            failure.running.join(", ")
        );
    }
    let guard = if failure.error == "DeletionGuardTripped" {
        " If the marks listed in the sync's `not_in_sync.json` are right, redrive with the \
         allowance (`--allow-deletions SYNC=N`)."
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "- what to do: fix the cause named above, then redrive: Step Functions' Redrive \
         (`zdsync cloud redrive <execution ARN>`), or locally `zdsync redrive {run_id}`. States \
         that succeeded are not run again.{guard}"
    );
}

fn sync_table(out: &mut String, inputs: &ReportInputs) {
    let rows: Vec<SyncRow> = SyncKind::ALL
        .into_iter()
        .filter_map(|sync| sync_row(&inputs.summary, sync, inputs.dry_run))
        .collect();
    let _ = writeln!(out, "## Syncs\n");
    if rows.is_empty() {
        let _ = writeln!(out, "No compare or sync ran.\n");
        return;
    }
    let verb = if inputs.dry_run { "would " } else { "" };
    let _ = writeln!(
        out,
        "| sync | {verb}create | {verb}update | {verb}mark | errors | held back | conflicts | ambiguous | left for the next run |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|---|");
    let shown = |n: Option<u64>| n.map_or_else(|| "–".to_owned(), |n| n.to_string());
    for row in &rows {
        let ambiguous = if row.sync == SyncKind::Users {
            shown(row.ambiguous)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {ambiguous} | {} |",
            row.sync.label(),
            shown(row.creates),
            shown(row.updates),
            shown(row.marks),
            shown(row.errors),
            shown(row.held_back),
            shown(row.conflicts),
            row.left_for_next_run
        );
    }
    let _ = writeln!(
        out,
        "\n*Held back*: creates and renames not sent (a name already taken, a record another \
         sync owns); never errors, reported every run until a person resolves them. \
         *Conflicts*: a key on several Zendesk records; none of them is written until they are \
         merged. *Ambiguous*: emails on several Salesforce contacts, left alone. \
         `–`: the stage did not run.\n"
    );
}

/// Salesforce's daily allowance (a warning over 80 %).
fn api_use(out: &mut String, summary: &RunSummary) {
    let Some(api) = summary.salesforce_api else {
        return;
    };
    let _ = writeln!(out, "## API use\n");
    let mark = if api.is_high() { "**Warning:** " } else { "" };
    let _ = writeln!(out, "- {mark}{}\n", api.describe());
}

/// How the gathers read their sources: in full (why) or only the changes since their
/// snapshots.
fn gathers(out: &mut String, summary: &RunSummary) {
    let notes: Vec<(&String, &crate::model::GatherNote)> = summary
        .stages
        .iter()
        .flat_map(|(stage, s)| s.gathers.iter().map(move |note| (stage, note)))
        .collect();
    if notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Gathers\n");
    for (stage, note) in notes {
        let _ = writeln!(out, "- {stage}: {note}");
    }
    let _ = writeln!(out);
}

/// A redriven run: what the redrive did and what the attempts before it did, per sync.
fn attempts(out: &mut String, summary: &RunSummary) {
    if summary.attempts.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Redrive\n");
    let _ = writeln!(
        out,
        "The table counts the whole run; what each attempt applied:\n"
    );
    for line in &summary.attempts {
        let _ = writeln!(out, "- {}", one_line(line));
    }
    let _ = writeln!(out);
}

fn guard_decisions(out: &mut String, summary: &RunSummary) {
    if summary.guard_decisions.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Deletion guard\n");
    for decision in &summary.guard_decisions {
        let _ = writeln!(out, "- {}", one_line(decision));
    }
    let _ = writeln!(out);
}

fn process_section(out: &mut String, process: Option<&ProcessCounts>) {
    let Some(process) = process else {
        return;
    };
    let _ = writeln!(out, "## Salesforce accounts\n");
    if process.unmapped_charges.is_empty() {
        let _ = writeln!(out, "Every charge name is in `plans.yaml`.\n");
    } else {
        let _ = writeln!(
            out,
            "Charge names in no tier of `plans.yaml` (add them there):\n\n| charge name | charges |\n|---|--:|"
        );
        let mut charges: Vec<(&String, &u64)> = process.unmapped_charges.iter().collect();
        charges.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (name, n) in charges {
            let _ = writeln!(out, "| {} | {n} |", cell(name));
        }
        let _ = writeln!(out);
    }
    if process.skipped_by_reason.is_empty() {
        let _ = writeln!(out, "No account was skipped.\n");
    } else {
        let _ = writeln!(out, "Skipped accounts:\n\n| reason | accounts |\n|---|--:|");
        for (reason, n) in &process.skipped_by_reason {
            let _ = writeln!(out, "| {reason} | {n} |");
        }
        let _ = writeln!(out);
    }
}

/// The field keys most updates change, most first (ties by name), at most [`TOP_FIELDS`].
pub fn most_changed(
    fields: &BTreeMap<String, BTreeMap<SyncKind, u64>>,
) -> Vec<(&str, u64, &BTreeMap<SyncKind, u64>)> {
    let mut ranked: Vec<(&str, u64, &BTreeMap<SyncKind, u64>)> = fields
        .iter()
        .map(|(key, per_sync)| (key.as_str(), per_sync.values().sum(), per_sync))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.truncate(TOP_FIELDS);
    ranked
}

fn field_table(out: &mut String, fields: &BTreeMap<String, BTreeMap<SyncKind, u64>>) {
    if fields.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Most-changed fields\n\nUpdates compare planned, per field they change:\n\n| field | updates | by sync |\n|---|--:|---|"
    );
    for (key, total, per_sync) in most_changed(fields) {
        let by_sync: Vec<String> = per_sync
            .iter()
            .map(|(sync, n)| format!("{sync} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | {total} | {} |",
            cell(key),
            by_sync.join(", ")
        );
    }
    if fields.len() > TOP_FIELDS {
        let _ = writeln!(
            out,
            "\n{} more fields changed less often.",
            fields.len() - TOP_FIELDS
        );
    }
    let _ = writeln!(out);
}

fn record_lists(out: &mut String, inputs: &ReportInputs) {
    for (sync, details) in &inputs.syncs {
        if details.errors.is_empty() && details.conflicts.is_empty() && details.held_back.is_empty()
        {
            continue;
        }
        let _ = writeln!(out, "## {}: records\n", sync.label());
        listed(
            out,
            "Errors (Zendesk refused the record)",
            details.errors.iter().map(RecordError::describe),
            &artifacts::sync_result(*sync),
        );
        listed(
            out,
            "Conflicts",
            details.conflicts.iter().map(Conflict::describe),
            &artifacts::updates(*sync),
        );
        listed(
            out,
            "Held back",
            details
                .held_back
                .iter()
                .map(|h| format!("{} {}: {}", h.action.as_str(), h.key, h.describe())),
            &held_back_artifact(*sync, inputs.dry_run),
        );
    }
}

/// Where all held-back records of a sync are listed.
fn held_back_artifact(sync: SyncKind, dry_run: bool) -> String {
    if dry_run {
        format!(
            "{} and {}",
            artifacts::creates(sync),
            artifacts::updates(sync)
        )
    } else {
        artifacts::sync_result(sync)
    }
}

/// A titled list of at most [`LISTED`] lines, saying how many more the artifact holds.
fn listed(
    out: &mut String,
    title: &str,
    lines: impl ExactSizeIterator<Item = String>,
    artifact: &str,
) {
    let total = lines.len();
    if total == 0 {
        return;
    }
    let _ = writeln!(out, "{title} ({total}):\n");
    for line in lines.take(LISTED) {
        let _ = writeln!(out, "- {}", one_line(&line));
    }
    if total > LISTED {
        let _ = writeln!(
            out,
            "- … and {} more: all of them are in `{artifact}`",
            total - LISTED
        );
    }
    let _ = writeln!(out);
}

fn warnings(out: &mut String, inputs: &ReportInputs) {
    let warnings: Vec<String> = inputs
        .syncs
        .iter()
        .flat_map(|(sync, d)| d.warnings.iter().map(move |w| format!("{sync}: {w}")))
        .chain(
            inputs
                .unreadable
                .iter()
                .map(|u| format!("not in this report, the artifact could not be read: {u}")),
        )
        .collect();
    if warnings.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Warnings\n");
    for warning in warnings {
        let _ = writeln!(out, "- {}", one_line(&warning));
    }
    let _ = writeln!(out);
}

/// Text as one Markdown line: record names and Zendesk messages may hold newlines.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text as one table cell.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// Where the run's artifacts are, for people: the store and the run's prefix.
pub fn artifacts_at(store: &dyn ArtifactStore, keys: &RunKeys) -> String {
    format!(
        "{}/{}",
        store.describe().trim_end_matches('/'),
        keys.prefix()
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{HoldReason, RunStatus, SyncAction};
    use crate::store::{DirStore, write_json};

    fn stage(counts: &[(&str, u64)]) -> StageSummary {
        StageSummary {
            counts: counts.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
            ..StageSummary::default()
        }
    }

    fn summary(stages: &[(&str, StageSummary)]) -> RunSummary {
        RunSummary {
            run_id: "r1".into(),
            as_of: Some("2026-11-23".parse().unwrap()),
            stages: stages
                .iter()
                .map(|(k, s)| ((*k).to_owned(), s.clone()))
                .collect(),
            ..RunSummary::default()
        }
    }

    fn compare_and_sync() -> RunSummary {
        summary(&[
            (
                "compare_users",
                stage(&[
                    ("creates", 5),
                    ("updates", 4),
                    ("marks", 3),
                    ("held_back", 2),
                    ("conflicts", 1),
                    ("ambiguous_emails", 7),
                ]),
            ),
            (
                "sync_users",
                stage(&[
                    ("created", 50),
                    ("updated", 40),
                    ("marked", 0),
                    ("errors", 6),
                    ("held_back", 2),
                    ("creates_left", 1200),
                    ("marks_left", 1),
                ]),
            ),
            ("compare_usgov", stage(&[("creates", 9)])),
        ])
    }

    #[test]
    fn a_real_run_counts_what_the_sync_did_and_compares_conflicts() {
        let row = sync_row(&compare_and_sync(), SyncKind::Users, false).unwrap();
        assert_eq!(
            (
                row.creates,
                row.updates,
                row.marks,
                row.errors,
                row.held_back
            ),
            (Some(50), Some(40), Some(0), Some(6), Some(2))
        );
        assert_eq!((row.conflicts, row.ambiguous), (Some(1), Some(7)));
        assert_eq!(row.left_for_next_run, "1200 creates, 1 mark");
        // US Gov's compare ran, its sync did not: the sync's cells are unknown, not zero.
        let usgov = sync_row(&compare_and_sync(), SyncKind::Usgov, false).unwrap();
        assert_eq!((usgov.creates, usgov.errors), (None, None));
        assert_eq!((usgov.conflicts, usgov.ambiguous), (Some(0), None));
        assert_eq!(sync_row(&compare_and_sync(), SyncKind::Global, false), None);
    }

    #[test]
    fn a_dry_run_counts_what_compare_would_have_the_sync_do() {
        let row = sync_row(&compare_and_sync(), SyncKind::Users, true).unwrap();
        assert_eq!(
            (row.creates, row.updates, row.marks, row.held_back),
            (Some(5), Some(4), Some(3), Some(2))
        );
        let text = render_report(&ReportInputs {
            summary: compare_and_sync(),
            dry_run: true,
            ..ReportInputs::default()
        });
        assert!(text.contains("| sync | would create | would update | would mark |"));
        assert!(text.contains("Zendesk was not written"), "{text}");
    }

    #[test]
    fn a_failed_run_says_where_it_stopped_and_how_to_go_on() {
        let mut summary = compare_and_sync();
        summary.status = RunStatus::Failed;
        summary.failure = Some(RunFailure {
            status: RunStatus::Failed,
            state: Some("Instances[0].SyncGlobal".into()),
            error: "DeletionGuardTripped".into(),
            cause: "3 orgs would be marked,\nmore than 2".into(),
            running: vec!["Instances[1].SyncUsgov".into()],
        });
        let text = render_report(&ReportInputs {
            summary,
            artifacts_at: "s3://b/runs/r1/".into(),
            unreadable: vec!["runs/r1/partner/updates.json is broken".into()],
            ..ReportInputs::default()
        });
        for part in [
            "- status: **FAILED**",
            "- failed state: Instances[0].SyncGlobal",
            "- error: `DeletionGuardTripped`",
            "- cause: 3 orgs would be marked, more than 2",
            "let them finish before a redrive): Instances[1].SyncUsgov",
            "`zdsync redrive r1`",
            "--allow-deletions SYNC=N",
            "the artifact could not be read: runs/r1/partner/updates.json is broken",
            "are in `s3://b/runs/r1/`",
        ] {
            assert!(text.contains(part), "{part:?} in\n{text}");
        }
    }

    fn error(n: usize) -> RecordError {
        RecordError {
            key: format!("k{n}"),
            action: SyncAction::Update,
            error: "RecordInvalid".into(),
            details: Some("a | b".into()),
            attempt: 0,
        }
    }

    #[test]
    fn every_record_is_listed_up_to_the_limit_and_the_rest_counted() {
        let held = HeldBack {
            key: "pat@x.example".into(),
            name: "Pat".into(),
            action: SyncAction::Create,
            reason: HoldReason::OwnedElsewhere,
            holder_id: Some(9),
            holder_key: None,
        };
        let details = SyncDetails {
            errors: (0..LISTED + 5).map(error).collect(),
            held_back: vec![held],
            ..SyncDetails::default()
        };
        let text = render_report(&ReportInputs {
            summary: compare_and_sync(),
            syncs: BTreeMap::from([(SyncKind::Users, details)]),
            ..ReportInputs::default()
        });
        assert!(text.contains("## US Gov users: records"), "{text}");
        assert!(text.contains(&format!(
            "Errors (Zendesk refused the record) ({}):",
            LISTED + 5
        )));
        assert!(text.contains(&format!("- update k{}: RecordInvalid a | b", LISTED - 1)));
        assert!(!text.contains(&format!("- update k{}:", LISTED)));
        assert!(text.contains("- … and 5 more: all of them are in `users/sync_result.json`"));
        assert!(text.contains(
            "- create pat@x.example: Zendesk record 9 already has this key but is not this sync's to write"
        ));
    }

    #[test]
    fn the_most_changed_fields_come_first_and_only_the_top_ones() {
        let mut fields: BTreeMap<String, BTreeMap<SyncKind, u64>> = BTreeMap::new();
        for n in 0..TOP_FIELDS as u64 + 3 {
            fields.insert(format!("f{n:02}"), BTreeMap::from([(SyncKind::Global, n)]));
        }
        fields.get_mut("f00").unwrap().insert(SyncKind::Usgov, 100);
        let ranked = most_changed(&fields);
        assert_eq!(ranked.len(), TOP_FIELDS);
        assert_eq!((ranked[0].0, ranked[0].1), ("f00", 100));
        assert_eq!((ranked[1].0, ranked[1].1), ("f17", 17));
        let text = render_report(&ReportInputs {
            field_changes: fields,
            ..ReportInputs::default()
        });
        assert!(
            text.contains("| `f00` | 100 | global 0, usgov 100 |"),
            "{text}"
        );
        assert!(text.contains("3 more fields changed less often."));
    }

    async fn put(store: &DirStore, name: &str, value: serde_json::Value) {
        write_json(store, &format!("runs/r1/{name}"), &value)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_loader_counts_fields_and_reads_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let keys = RunKeys::new("r1").unwrap();
        // Nothing yet: a run that failed at its first stage still gets its report.
        let empty = load(&store, &keys, summary(&[]), false, Corrupt::Fail)
            .await
            .unwrap();
        assert_eq!((&empty.process, empty.syncs.len()), (&None, 0));
        assert!(render_report(&empty).contains("No compare or sync ran."));

        let id = "0011U00000V0tkDQAR";
        put(&store, "global_updates.json", json!({"sync": "global", "items": [
            {"id": 1, "salesforce_id": id, "name": "New", "organization_fields": {"aar": 1, "support_level": "x"}},
            {"id": 2, "salesforce_id": id, "organization_fields": {"aar": 2}}
        ], "conflicts": [{"key": id, "records": [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}], "desired_name": null}]})).await;
        put(&store, "users/updates.json", json!({"sync": "users", "items": [
            {"id": 3, "email": "a@x.example", "organization_id": 4, "user_fields": {"not_in_sfdc": false}}
        ]})).await;
        put(&store, "users/creates.json", json!({"sync": "users", "items": [{"anything": 1}],
            "held_back": [{"key": "b@x.example", "name": "B", "action": "create", "reason": "owned_elsewhere", "holder_id": 5, "holder_key": null}]})).await;
        put(&store, "process_report.json", json!({"accounts": 3, "global_objects": 2, "usgov_objects": 0,
            "unmapped_charges": {"Old Plan": 4},
            "skipped_accounts": [{"salesforce_id": null, "name": null, "reason": "partner"}, {"salesforce_id": null, "name": null, "reason": "partner"}],
            "overrides": {"applied": [], "expired": [], "unused": []}})).await;
        let inputs = load(&store, &keys, summary(&[]), true, Corrupt::Fail)
            .await
            .unwrap();
        assert_eq!(
            inputs.field_changes["aar"],
            BTreeMap::from([(SyncKind::Global, 2)])
        );
        assert_eq!(inputs.field_changes["name"][&SyncKind::Global], 1);
        assert_eq!(inputs.field_changes["organization_id"][&SyncKind::Users], 1);
        assert_eq!(inputs.field_changes["not_in_sfdc"][&SyncKind::Users], 1);
        assert_eq!(inputs.syncs[&SyncKind::Global].conflicts.len(), 1);
        // No sync result (a dry run): compare's held-back creates are the ones shown.
        assert_eq!(
            inputs.syncs[&SyncKind::Users].held_back[0].key,
            "b@x.example"
        );
        let process = inputs.process.clone().unwrap();
        assert_eq!(process.unmapped_charges["Old Plan"], 4);
        assert_eq!(process.skipped_by_reason[SkipReason::Partner.describe()], 2);
        let text = render_report(&inputs);
        assert!(text.contains("| Old Plan | 4 |"), "{text}");
        assert!(text.contains(&format!("{id} is on Zendesk records 1 (\"A\"), 2 (\"B\")")));

        // A corrupt artifact: named in the error, or noted in a failed run's report.
        store
            .put(
                "runs/r1/partner/sync_result.json",
                bytes::Bytes::from("{\"errors\": 7"),
            )
            .await
            .unwrap();
        let err = load(&store, &keys, summary(&[]), false, Corrupt::Fail)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidArtifact { key, .. } if key == "runs/r1/partner/sync_result.json"),
            "{err}"
        );
        let noted = load(&store, &keys, summary(&[]), false, Corrupt::Note)
            .await
            .unwrap();
        assert_eq!(noted.unreadable.len(), 1);
        assert!(noted.unreadable[0].contains("runs/r1/partner/sync_result.json"));
        assert_eq!(noted.syncs[&SyncKind::Global].conflicts.len(), 1);
    }
}
