//! The run's one Slack message of new orgs left without contacts (SPEC §8), sent by the sync
//! whose spec [sends the digest](crate::syncs::SyncSpec::sends_digest) when it is done.

use super::super::artifacts;
use super::super::context::StageContext;
use crate::model::{Instance, NewOrgWithoutContacts, SyncKind, SyncResult};
use crate::store::RunKeys;

/// New orgs without contacts named in the Slack digest; the sync result lists all of them.
const DIGEST_NAMED: usize = 50;

/// Sends the digest of `result`'s new orgs without contacts, if there are any.
pub(super) async fn send(
    ctx: &StageContext,
    run: &RunKeys,
    instance: Instance,
    result: &mut SyncResult,
) {
    if !result.without_contacts.is_empty() {
        let text = digest(
            run,
            instance,
            &result.without_contacts,
            &ctx.store.describe(),
        );
        notify(ctx, &text, result).await;
    }
}

/// One Slack message per sync run (SPEC §8): the first [`DIGEST_NAMED`] new orgs without
/// contacts and a count of the rest; the sync result keeps the full list, and the run's report
/// (in `store_url`, written when the run ends) shows the rest of the run.
pub(crate) fn digest(
    run: &RunKeys,
    instance: Instance,
    orgs: &[NewOrgWithoutContacts],
    store_url: &str,
) -> String {
    let mut text = format!(
        "zdsync run {}: {} new Zendesk {instance} organization{} without support contacts. Please add their users:",
        run.run_id(),
        orgs.len(),
        if orgs.len() == 1 { " is" } else { "s are" },
    );
    for org in orgs.iter().take(DIGEST_NAMED) {
        let why = if org.sold_to_emails.is_empty() {
            "Salesforce lists no sold-to contact".to_owned()
        } else {
            format!("none of {} could be added", org.sold_to_emails.join(", "))
        };
        text.push_str(&format!(
            "\n• {} (Salesforce {}, Zendesk org {}): {why}",
            org.name, org.salesforce_id, org.id
        ));
    }
    if orgs.len() > DIGEST_NAMED {
        text.push_str(&format!(
            "\n… and {} more: see {}",
            orgs.len() - DIGEST_NAMED,
            run.key(&artifacts::sync_result(SyncKind::orgs(instance)))
                .unwrap_or_default()
        ));
    }
    text.push_str(&format!(
        "\nThe run's report will be at {}/{}{} when the run ends.",
        store_url.trim_end_matches('/'),
        run.prefix(),
        artifacts::REPORT
    ));
    text
}

/// Slack is best effort: no webhook, or a failed post, is a warning in the result, never fatal.
async fn notify(ctx: &StageContext, text: &str, result: &mut SyncResult) {
    match &ctx.slack {
        None => {
            tracing::warn!(%text, "Slack is not configured");
            result
                .warnings
                .push(format!("Slack not configured: {text}"));
        }
        Some(slack) => {
            if let Err(e) = slack.notify(text).await {
                tracing::warn!(error = %e, "Slack notification failed");
                result
                    .warnings
                    .push(format!("Slack notification failed ({e}): {text}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SalesforceId;

    fn org(n: u64) -> NewOrgWithoutContacts {
        NewOrgWithoutContacts {
            salesforce_id: SalesforceId::parse("0011U00000V0tkDQAR").unwrap(),
            name: format!("Org {n}"),
            id: n,
            sold_to_emails: if n.is_multiple_of(2) {
                vec![]
            } else {
                vec!["a@b.example".into()]
            },
        }
    }

    #[test]
    fn the_digest_names_the_first_fifty_and_counts_the_rest() {
        let run = RunKeys::new("r1").unwrap();
        let store = "s3://zdsync-artifacts/";
        let one = digest(&run, Instance::Global, &[org(1)], store);
        assert!(
            one.contains("1 new Zendesk global organization is without"),
            "{one}"
        );
        assert!(one.contains("Org 1 (Salesforce 0011U00000V0tkDQAR, Zendesk org 1): none of a@b.example could be added"));
        let many: Vec<_> = (0..73).map(org).collect();
        assert!(
            one.ends_with(
                "\nThe run's report will be at s3://zdsync-artifacts/runs/r1/report.md when the run ends."
            ),
            "{one}"
        );
        let text = digest(&run, Instance::Global, &many, store);
        assert_eq!(text.lines().count(), 1 + 50 + 1 + 1, "{text}");
        assert!(text.contains("Org 49 ") && !text.contains("Org 50 "));
        assert!(
            text.contains("\n… and 23 more: see runs/r1/global_sync_result.json\n"),
            "{text}"
        );
        assert!(text.contains("Org 0 (Salesforce 0011U00000V0tkDQAR, Zendesk org 0): Salesforce lists no sold-to contact"));
    }
}
