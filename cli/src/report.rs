//! The end-of-run summary on the terminal: a table per sync and where the artifacts and the
//! run's report.md are.

use std::fmt::Write;

use zdsync::model::{RunSummary, StageSummary, SyncKind};

use crate::asl::ExecutionStatus;
use crate::local::Outcome;

pub fn render(outcome: &Outcome, elapsed: std::time::Duration) -> String {
    let record = &outcome.record;
    let mut out = String::new();
    let status = match record.status {
        ExecutionStatus::Succeeded => "SUCCEEDED",
        ExecutionStatus::Failed => "FAILED",
        ExecutionStatus::TimedOut => "TIMED OUT",
        ExecutionStatus::Running => "RUNNING",
        ExecutionStatus::Aborted => "ABORTED",
    };
    let _ = writeln!(
        out,
        "\nRun {} — {status} in {:.1} s",
        record.name,
        elapsed.as_secs_f64()
    );
    if record.states.contains_key("Skipped") {
        let _ = writeln!(
            out,
            "  An older execution is still running; this one stopped without writing anything."
        );
    }
    if record.status != ExecutionStatus::Succeeded {
        let failed = record.failed_states();
        let _ = writeln!(
            out,
            "  failed at {}: {}\n  {}",
            failed.first().copied().unwrap_or("(execution)"),
            record.error.as_deref().unwrap_or("?"),
            record.cause.as_deref().unwrap_or("")
        );
        // States stopped while they ran: their work is done, but not on the execution's
        // record, so a redrive runs them again. A Parallel stopped around one is not named.
        let aborted = record.aborted_states();
        let innermost: Vec<&str> = aborted
            .iter()
            .copied()
            .filter(|p| !aborted.iter().any(|q| q.starts_with(&format!("{p}["))))
            .collect();
        if !innermost.is_empty() {
            let _ = writeln!(
                out,
                "  stopped while running (they ran to their end; a redrive runs them again): {}",
                innermost.join(", ")
            );
        }
    }
    // A stopped run has its summary too: what each stage did before it stopped.
    if let Some(summary) = &outcome.summary {
        table(&mut out, summary);
    }
    if record.status != ExecutionStatus::Succeeded {
        let _ = writeln!(
            out,
            "\n  After fixing the cause, resume from the failed state:  zdsync redrive {}",
            record.name
        );
    }
    let _ = writeln!(
        out,
        "\n  Artifacts and execution history: {}/",
        outcome.run_dir.display()
    );
    // Written by the summarize stage, so a run that stopped before it (a skipped one) has none.
    let report = outcome.run_dir.join(zdsync::stages::artifacts::REPORT);
    if report.is_file() {
        let _ = writeln!(
            out,
            "  Report (every record, warning and guard decision): {}   (zdsync report {})",
            report.display(),
            record.name
        );
    }
    out
}

fn table(out: &mut String, summary: &RunSummary) {
    let dry = summary
        .guard_decisions
        .iter()
        .any(|d| d.starts_with("dry run"));
    if let Some(process) = summary.stages.get("process") {
        let c = |k: &str| process.counts.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "  {} accounts → {} Global and {} US Gov objects ({} accounts skipped, {} unmapped charge names, {} overrides applied)",
            c("accounts"),
            c("global_objects"),
            c("usgov_objects"),
            c("skipped_accounts"),
            c("unmapped_charge_names"),
            c("overrides_applied")
        );
    }
    let verb = if dry { "would " } else { "" };
    let headers = [
        format!("{verb}create"),
        format!("{verb}update"),
        format!("{verb}mark"),
        "errors".to_owned(),
        "held back".to_owned(),
        "conflicts".to_owned(),
    ];
    // Every column at least two blanks wider than its header, so headers never run together.
    let widths: Vec<usize> = headers
        .iter()
        .map(|h| h.chars().count().max(8) + 2)
        .collect();
    let row = |out: &mut String, label: &str, cells: &[String]| {
        let _ = write!(out, "  {label:<18}");
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(out, "{cell:>width$}");
        }
        let _ = writeln!(out);
    };
    let _ = writeln!(out);
    row(out, "", &headers);
    let count = |stage: Option<&StageSummary>, key: &str| {
        stage.and_then(|s| s.counts.get(key)).copied().unwrap_or(0)
    };
    // The same rows as report.md: one rule for what a dry and a real run count.
    let shown = |n: Option<u64>| n.map_or_else(|| "–".to_owned(), |n| n.to_string());
    for sync in SyncKind::ALL {
        let Some(r) = zdsync::stages::report::sync_row(summary, sync, dry) else {
            continue;
        };
        let cells = [
            r.creates,
            r.updates,
            r.marks,
            r.errors,
            r.held_back,
            r.conflicts,
        ]
        .map(shown);
        row(out, sync.label(), &cells);
    }
    let partners = summary.stages.get("gather_accounts_partners");
    if partners.is_some() {
        let _ = writeln!(
            out,
            "  partners: {} partner accounts, {} rejected",
            count(partners, "partners"),
            count(partners, "rejected")
        );
    }
    let users = summary.stages.get("gather_users");
    let contacts = summary.stages.get("gather_contacts");
    if users.is_some() || contacts.is_some() {
        let _ = writeln!(
            out,
            "  users: {} contacts for {} end-users; {} ambiguous emails and {} held left alone; {} protected users and {} protected contacts skipped; {} contacts without email",
            count(contacts, "contacts"),
            count(users, "end_users"),
            count(contacts, "ambiguous_emails"),
            count(contacts, "held"),
            count(users, "protected"),
            count(contacts, "protected"),
            count(contacts, "without_email"),
        );
    }
    let retries = summary.calls.retries();
    if retries > 0 {
        let by_service: Vec<String> = summary
            .calls
            .0
            .iter()
            .filter(|(_, c)| c.retries > 0)
            .map(|(service, c)| format!("{service} {}", c.retries))
            .collect();
        let _ = writeln!(
            out,
            "  {retries} requests repeated after throttling, 5xx or lost connections ({})",
            by_service.join(", ")
        );
    }
    for decision in &summary.guard_decisions {
        let _ = writeln!(out, "  {decision}");
    }
    for left in &summary.left_for_next_run {
        let _ = writeln!(out, "  {left}");
    }
    for attempts in &summary.attempts {
        let _ = writeln!(out, "  {attempts}");
    }
    if let Some(api) = summary.salesforce_api {
        let warning = if api.is_high() { "warning: " } else { "" };
        let _ = writeln!(out, "  {warning}{}", api.describe());
    }
    for error in summary.errors.iter().take(10) {
        let _ = writeln!(out, "  error: {error}");
    }
}

/// The sandbox's request counters in one line: how many calls the run made, and how many wrote.
pub fn api_calls(counters: &zdsync_sandbox::Counters) -> String {
    let zendesk = |instance: zdsync_sandbox::ZendeskInstance| {
        format!(
            "Zendesk {instance} {} ({} writes)",
            counters.total(instance.as_str()),
            counters.zendesk_write_calls(instance)
        )
    };
    format!(
        "API calls: Salesforce {}, {}, {}, Slack {}",
        counters.total("salesforce"),
        zendesk(zdsync_sandbox::ZendeskInstance::Global),
        zendesk(zdsync_sandbox::ZendeskInstance::Usgov),
        counters.total("slack")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(value: serde_json::Value) -> RunSummary {
        serde_json::from_value(value).expect("a run summary")
    }

    fn table_of(summary: &RunSummary) -> String {
        let mut out = String::new();
        table(&mut out, summary);
        out
    }

    #[test]
    fn a_dry_runs_columns_stay_apart_and_show_what_compare_planned() {
        let dry = summary(serde_json::json!({
            "run_id": "r", "as_of": "2026-12-01",
            "stages": {
                "compare_global": {"counts": {"creates": 19, "updates": 6, "marks": 3,
                                              "held_back": 1, "conflicts": 2}}
            },
            "guard_decisions": ["dry run: global: 3 marks would be checked, limit 25"]
        }));
        let out = table_of(&dry);
        let header = out
            .lines()
            .find(|l| l.contains("would create"))
            .expect(&out);
        for pair in ["would createwould", "would updatewould", "markerrors"] {
            assert!(!header.contains(pair), "{header}");
        }
        let global = out.lines().find(|l| l.contains("Global orgs")).expect(&out);
        let cells: Vec<&str> = global.split_whitespace().skip(2).collect();
        // Nothing was sent in a dry run, so there is no error count: "–", not 0.
        assert_eq!(cells, ["19", "6", "3", "–", "1", "2"], "{out}");
    }

    #[test]
    fn a_stopped_run_names_the_states_it_stopped_for_the_redrive() {
        let mut record = crate::asl::ExecutionRecord::new(
            "arn:aws:states:local:0:stateMachine:zdsync-sync",
            "r",
            serde_json::json!({}),
            chrono::Utc::now(),
        );
        record.status = ExecutionStatus::Failed;
        record.error = Some("DeletionGuardTripped".into());
        let state = |status| crate::asl::StateRecord {
            status,
            input: serde_json::json!({}),
            output: None,
            next: None,
            error: None,
            cause: None,
            attempts: 1,
            entered_at: String::new(),
            exited_at: String::new(),
        };
        use crate::asl::StateStatus::{Aborted, Failed};
        for (path, status) in [
            ("Instances", Failed),
            ("Instances[1].SyncUsgov", Failed),
            ("Instances[0].GatherPartners", Aborted),
            ("Instances[0].GatherPartners[1].GatherPartnerOrgs", Aborted),
        ] {
            record.states.insert(path.into(), state(status));
        }
        let outcome = Outcome {
            record,
            summary: None,
            run_dir: std::path::PathBuf::from("/nowhere"),
        };
        let out = render(&outcome, std::time::Duration::ZERO);
        assert!(
            out.contains("failed at Instances[1].SyncUsgov: DeletionGuardTripped"),
            "{out}"
        );
        assert!(
            out.contains(
                "stopped while running (they ran to their end; a redrive runs them again): \
                 Instances[0].GatherPartners[1].GatherPartnerOrgs\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn a_real_run_shows_what_the_sync_did() {
        let real = summary(serde_json::json!({
            "run_id": "r", "as_of": "2026-12-01",
            "stages": {
                "compare_usgov": {"counts": {"creates": 5, "updates": 5, "marks": 5, "conflicts": 0}},
                "sync_usgov": {"counts": {"created": 1, "updated": 2, "marked": 0,
                                           "errors": 4, "held_back": 0}}
            }
        }));
        let out = table_of(&real);
        assert!(!out.contains("would"), "{out}");
        let usgov = out.lines().find(|l| l.contains("US Gov orgs")).expect(&out);
        let cells: Vec<&str> = usgov.split_whitespace().skip(3).collect();
        assert_eq!(cells, ["1", "2", "0", "4", "0", "0"], "{out}");
    }
}
