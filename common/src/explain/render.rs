//! An explanation as a person reads it.

use std::fmt::Write;

use serde_json::Value;

use super::Explanation;
use super::story::{
    ChargeStory, ContactStory, Decision, Gathered, InstanceStory, Outcome, PartnerStory,
    ProcessStory, RecordMatch, RecordRole, SyncStory,
};
use crate::model::Instance;

pub fn render(e: &Explanation) -> String {
    let mut out = String::new();
    let as_of = e.as_of.map(|d| format!(" (as of {d})")).unwrap_or_default();
    let _ = writeln!(out, "{} in run {}{as_of}", e.subject, e.run_id);
    if let Some(account) = &e.account {
        gathered(&mut out, account);
    }
    if let Some(process) = &e.process {
        processed(&mut out, process, e.as_of);
    }
    if let Some(partner) = &e.partner {
        section(&mut out, "Salesforce partner record");
        match partner {
            PartnerStory::Mapped { name, account_type } => {
                let _ = writeln!(out, "  {name:?}: {account_type}");
            }
            PartnerStory::Rejected { name, reason } => {
                let _ = writeln!(
                    out,
                    "  {}: rejected — {reason}",
                    name.as_deref().unwrap_or("?")
                );
            }
        }
    }
    if let Some(contact) = &e.contact {
        contact_section(&mut out, contact);
    }
    for sync in &e.syncs {
        sync_section(&mut out, sync);
    }
    if e.account.is_none() && e.partner.is_none() && e.contact.is_none() && e.syncs.is_empty() {
        let _ = writeln!(out, "\n  Nothing in this run mentions it.");
    }
    if !e.notes.is_empty() {
        section(&mut out, "Notes");
        for note in &e.notes {
            let _ = writeln!(out, "  ! {note}");
        }
    }
    out
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}");
}

fn gathered(out: &mut String, account: &Gathered) {
    section(out, "Salesforce account");
    match account {
        Gathered::Mapped {
            name,
            federal_support_exception,
            subscriptions,
            charges,
            sold_to_emails,
        } => {
            let _ = writeln!(
                out,
                "  {name:?}: mapped; {subscriptions} subscription(s), {charges} charge(s); federal-support exception: {}",
                if *federal_support_exception {
                    "yes"
                } else {
                    "no"
                }
            );
            if !sold_to_emails.is_empty() {
                let _ = writeln!(out, "  sold-to: {}", sold_to_emails.join(", "));
            }
        }
        Gathered::Rejected { name, reason } => {
            let _ = writeln!(
                out,
                "  {}: REJECTED by the gather — {reason}\n  Its Zendesk org is held: neither updated nor marked until the record is fixed.",
                name.as_deref()
                    .map_or("(no name)".to_owned(), |n| format!("{n:?}"))
            );
        }
        Gathered::NotGathered => {
            let _ = writeln!(
                out,
                "  not among the gathered customer accounts (no subscription in the last three years, or not a customer account)"
            );
        }
    }
}

fn processed(out: &mut String, p: &ProcessStory, as_of: Option<chrono::NaiveDate>) {
    if !p.charges.is_empty() {
        section(out, "Charges (plans.yaml)");
        for c in &p.charges {
            charge_line(out, c);
        }
        if let Some(as_of) = as_of {
            let grace = crate::rules::RunDates::new(as_of).expired_end_date;
            let _ = writeln!(
                out,
                "  (active: ends on or after {grace}, {as_of} less 15 days of grace)"
            );
        }
    }
    section(out, "Processor");
    if let Some(skipped) = &p.skipped {
        let _ = writeln!(out, "  skipped: {skipped}");
    }
    for i in &p.instances {
        instance_lines(out, i);
    }
}

fn charge_line(out: &mut String, c: &ChargeStory) {
    let state = match (&c.tier, c.active) {
        (None, _) => "unmapped",
        (Some(_), true) => "active  ",
        (Some(_), false) => "expired ",
    };
    let tier = match &c.tier {
        None => "no tier lists this name: ignored".to_owned(),
        Some(tier) => format!(
            "tier {tier} → {}{}; {}",
            c.support_level.map_or("?", |l| l.as_str()),
            c.flag
                .as_deref()
                .map(|f| format!(", {f}"))
                .unwrap_or_default(),
            c.route.unwrap_or("?")
        ),
    };
    let _ = writeln!(
        out,
        "  {state} {:?} {}–{} qty {}: {tier}",
        c.charge.name,
        c.charge
            .effective_start
            .map_or("?".to_owned(), |d| d.to_string()),
        c.charge.effective_end,
        c.charge.quantity.map_or("-".to_owned(), |q| q.to_string())
    );
}

fn instance_name(instance: Instance) -> &'static str {
    match instance {
        Instance::Global => "Global",
        Instance::Usgov => "US Gov",
    }
}

fn instance_lines(out: &mut String, i: &InstanceStory) {
    let _ = writeln!(
        out,
        "  {} object: support level {}, expires {}, seats {}, flags [{}]",
        instance_name(i.instance),
        i.support_level.as_str(),
        i.expiration_date,
        i.seats.map_or("-".to_owned(), |s| s.to_string()),
        i.flags.join(", ")
    );
    let _ = writeln!(out, "    override: {}", i.override_use);
    for rule in &i.post_rules {
        let _ = writeln!(out, "    post-rule: {rule}");
    }
    match (&i.desired, &i.dropped) {
        (_, Some(dropped)) => {
            let _ = writeln!(out, "    dropped: {dropped} (its org, if any, is marked)");
        }
        (Some(desired), None) => {
            let _ = writeln!(out, "    desired {:?}:", desired.name);
            fields(out, &desired.organization_fields, "      ");
        }
        (None, None) => {}
    }
    if i.same_as_run == Some(false) {
        let _ = writeln!(
            out,
            "    (differs from the object the run's processor wrote: see the notes)"
        );
    }
}

fn fields(out: &mut String, fields: &serde_json::Map<String, Value>, indent: &str) {
    for (key, value) in fields {
        let _ = writeln!(out, "{indent}{key} = {value}");
    }
}

fn contact_section(out: &mut String, contact: &ContactStory) {
    section(out, "Salesforce contacts (US Gov accounts)");
    let line = match contact {
        ContactStory::Contact {
            name,
            salesforce_id,
            organization_id,
        } => format!(
            "{name:?}, contact of account {salesforce_id}: belongs in US Gov org {organization_id}"
        ),
        ContactStory::Ambiguous { salesforce_ids } => format!(
            "AMBIGUOUS: {} contacts share this email (accounts {}); its user is neither created, moved nor marked",
            salesforce_ids.len(),
            salesforce_ids.join(", ")
        ),
        ContactStory::Held {
            salesforce_id,
            reason,
        } => format!(
            "held ({}): {reason}",
            salesforce_id.as_deref().unwrap_or("account unknown")
        ),
        ContactStory::Protected => {
            "protected (staff domain or listed email): the sync never touches this user".into()
        }
        ContactStory::NotAContact => "no contact of a US Gov account has this email".into(),
    };
    let _ = writeln!(out, "  {line}");
}

fn record(r: &RecordMatch) -> String {
    let role = match r.role {
        RecordRole::Owned { marked: false } => "this sync's",
        RecordRole::Owned { marked: true } => "this sync's, marked",
        RecordRole::OwnedElsewhere => "not this sync's to write",
        RecordRole::Unmanaged => "unmanaged: no Salesforce id, never written",
    };
    format!("{} {:?} ({role})", r.id, r.name)
}

fn sync_section(out: &mut String, s: &SyncStory) {
    section(out, &format!("{} ({} sync)", s.sync.label(), s.sync));
    if s.records.is_empty() {
        let _ = writeln!(out, "  Zendesk: no record has this key");
    }
    for r in &s.records {
        let _ = writeln!(out, "  Zendesk: {}", record(r));
    }
    for r in &s.name_taken_by {
        let _ = writeln!(out, "  same name: {}", record(r));
    }
    if s.protected {
        let _ = writeln!(out, "  protected id (protected_ids): never marked");
    }
    if let Some(held) = &s.held {
        let _ = writeln!(out, "  held: {held}");
    }
    if s.desired.is_none() && !s.records.is_empty() {
        let _ = writeln!(out, "  Salesforce wants no record for it in this sync");
    }
    for d in &s.compare {
        let line = match d {
            Decision::Create => "create".to_owned(),
            Decision::Update { changes } => format!("update: {}", changed_keys(changes)),
            Decision::Mark => "mark (not in Salesforce any more)".into(),
            Decision::InSync => "in sync: nothing differs".into(),
            Decision::HeldBack { why } => format!("held back: {why}"),
            Decision::Conflict { why } => format!("CONFLICT: {why}"),
            Decision::NotCreated { why } => format!("not created: {why}"),
            Decision::Left { why } => format!("left alone: {why}"),
            Decision::Nothing => "nothing to do".into(),
            Decision::NotCompared => "not compared in this run".into(),
        };
        let _ = writeln!(out, "  compare: {line}");
    }
    for o in &s.sync_did {
        let id = |id: &Option<u64>| id.map(|i| format!(" {i}")).unwrap_or_default();
        let line = match o {
            Outcome::Created {
                id: i,
                already: false,
            } => format!("created{}", id(i)),
            Outcome::Created {
                id: i,
                already: true,
            } => {
                format!("created{} (it had landed in an earlier attempt)", id(i))
            }
            Outcome::Updated { id: i } => format!("updated{}", id(i)),
            Outcome::Marked { id: i } => format!("marked{}", id(i)),
            Outcome::Error { what } => format!("ERROR {what}"),
            Outcome::HeldByGuard { decision } => format!("not marked: {decision}"),
            Outcome::LeftForNextRun => "left for the next run (the run's time ran out)".into(),
            Outcome::NotWritten { why } => format!("not written: {why}"),
        };
        let _ = writeln!(out, "  sync: {line}");
    }
}

/// `name = "Acme", support_level = "ultimate"` from an update's JSON.
fn changed_keys(update: &Value) -> String {
    let mut parts = Vec::new();
    for (key, value) in update.as_object().into_iter().flatten() {
        match value {
            Value::Object(fields) => {
                parts.extend(fields.iter().map(|(k, v)| format!("{k} = {v}")));
            }
            _ if matches!(key.as_str(), "id" | "salesforce_id" | "email") => {}
            other => parts.push(format!("{key} = {other}")),
        }
    }
    parts.join(", ")
}
