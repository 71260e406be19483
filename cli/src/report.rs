//! The end-of-run report: a table per instance and where the artifacts are.

use std::fmt::Write;

use zdsync::model::{Instance, RunSummary};

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
    match record.status {
        ExecutionStatus::Succeeded => {
            if let Some(summary) = &outcome.summary {
                table(&mut out, summary);
            }
        }
        _ => {
            let failed = record.failed_states();
            let _ = writeln!(
                out,
                "  failed at {}: {}\n  {}",
                failed.first().copied().unwrap_or("(execution)"),
                record.error.as_deref().unwrap_or("?"),
                record.cause.as_deref().unwrap_or("")
            );
            let _ = writeln!(
                out,
                "\n  After fixing the cause, resume from the failed state:  zdsync redrive {}",
                record.name
            );
        }
    }
    let _ = writeln!(
        out,
        "\n  Artifacts and execution history: {}/",
        outcome.run_dir.display()
    );
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
    let _ = writeln!(
        out,
        "\n  {:<16}{:>10}{:>10}{:>10}{:>10}{:>11}",
        "",
        format!("{verb}create"),
        format!("{verb}update"),
        format!("{verb}mark"),
        "errors",
        "conflicts"
    );
    for instance in Instance::ALL {
        let compare = summary.stages.get(&format!("compare_{instance}"));
        let sync = summary.stages.get(&format!("sync_{instance}"));
        let count = |stage: Option<&zdsync::model::StageSummary>, key: &str| {
            stage.and_then(|s| s.counts.get(key)).copied().unwrap_or(0)
        };
        let (creates, updates, marks) = if dry {
            (
                count(compare, "creates"),
                count(compare, "updates"),
                count(compare, "marks"),
            )
        } else {
            (
                count(sync, "created"),
                count(sync, "updated"),
                count(sync, "marked"),
            )
        };
        let _ = writeln!(
            out,
            "  {:<16}{:>10}{:>10}{:>10}{:>10}{:>11}",
            format!("Zendesk {instance}"),
            creates,
            updates,
            marks,
            count(sync, "errors"),
            count(compare, "conflicts")
        );
    }
    for decision in &summary.guard_decisions {
        let _ = writeln!(out, "  {decision}");
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
