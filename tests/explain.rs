//! `zdsync explain` against a real run: every case an admin asks about, each with the reason the
//! run's own rules gave, and the processor's objects reproduced for every account of a world.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use zdsync::explain::{
    ContactStory, Decision, Explanation, Gathered, Outcome, PartnerStory, RecordRole, Sources,
    Subject, SyncStory, explain,
};
use zdsync::model::{DesiredOrgs, Instance, SalesforceAccounts, SyncKind};
use zdsync::stages::artifacts;
use zdsync::store::RunKeys;
use zdsync_e2e::{Harness, succeeded};

const RUN: &str = "explain-run";
/// The charges of an account record (a child relationship of the account query).
const CHARGES: &str = "Zuora__R00N40000001lGjTEAU__r";

fn charges_of(h: &Harness, id: &str) -> Vec<Value> {
    h.sandbox().salesforce().with_objects_mut(|objects| {
        objects["Account"]
            .iter()
            .find(|a| a["Account_ID_18__c"] == json!(id))
            .unwrap()[CHARGES]
            .as_array()
            .unwrap()
            .clone()
    })
}

async fn why(h: &Harness, subject: &str) -> Explanation {
    let store = h.data.store();
    let run = RunKeys::new(RUN).unwrap();
    let sources = Sources {
        store: store.as_ref(),
        run: &run,
        settings: h.world.settings(),
        http: &reqwest::Client::new(),
    };
    explain(&sources, &Subject::parse(subject).unwrap())
        .await
        .unwrap()
}

fn sync_of(e: &Explanation, sync: SyncKind) -> &SyncStory {
    e.syncs
        .iter()
        .find(|s| s.sync == sync)
        .unwrap_or_else(|| panic!("no {sync} story for {}: {e:#?}", e.subject))
}

fn first(h: &Harness, scenario: &str) -> String {
    h.scenario(scenario)
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("the world has no {scenario}"))
}

/// One world with every case, one real run, then a question per case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_tells_each_case_with_the_reason_the_run_gave() {
    let mut h = Harness::generated(60, 7).await;
    let in_sync = h.scenario("global_in_sync");
    let (overridden, expired_override, rejected) =
        (in_sync[0].clone(), in_sync[1].clone(), in_sync[2].clone());
    let protected = first(&h, "global_account_gone");
    let unmanaged_name_taker = first(&h, "global_new_customer");
    let overrides = h.dir.path().join("overrides.yaml");
    std::fs::write(
        &overrides,
        format!(
            "- salesforce_id: {overridden}\n  reason: contract 42\n  fields: {{ sub_ss_enterprise: true }}\n\
             - salesforce_id: {expired_override}\n  reason: old deal\n  expires: 2026-01-31\n  fields: {{ support_level: ultimate }}\n"
        ),
    )
    .unwrap();
    let sync = &mut h.world.settings_mut().sync;
    sync.overrides = Some(overrides.display().to_string());
    sync.protected_ids = vec![protected.clone()];
    // One record of 60 rejected is over the default share (1 %) that fails the gather.
    sync.max_rejected_ratio = 0.05;
    h.edit_account(&rejected, |a| a["Name"] = json!("  "));
    // A second, expired charge of another tier on an account in sync.
    let active_until = |id: &String| {
        charges_of(&h, id).iter().any(|c| {
            c["Zuora__EffectiveEndDate__c"]
                .as_str()
                .is_some_and(|end| end > "2027-01-01")
        })
    };
    let mixed = in_sync[3..]
        .iter()
        .find(|id| active_until(id))
        .expect("an active account in sync")
        .clone();
    let other_charge =
        charges_of(&h, &in_sync[4])[0]["Zuora__SubscriptionRatePlanChargeName__c"].clone();
    h.edit_account(&mixed, |a| {
        let charges = a[CHARGES].as_array_mut().unwrap();
        let mut expired = charges[0].clone();
        expired["Id"] = json!("a1y000000000EXPIRED");
        expired["Zuora__SubscriptionRatePlanChargeName__c"] = other_charge;
        expired["Zuora__EffectiveStartDate__c"] = json!("2024-09-01");
        expired["Zuora__EffectiveEndDate__c"] = json!("2025-08-31");
        charges.push(expired);
    });
    h.edit_account(&unmanaged_name_taker, |a| {
        a["Name"] = json!("Channel Reseller Ltd")
    });
    succeeded(&h.run(RUN).await);

    // A multi-charge account with an expired and an active charge: both shown with their tier,
    // only the active one counts.
    let accounts: SalesforceAccounts = h.artifact(RUN, artifacts::SALESFORCE_ACCOUNTS).await;
    let grace = zdsync::rules::RunDates::new(accounts.as_of).expired_end_date;
    let e = why(&h, &mixed).await;
    let process = e.process.as_ref().unwrap();
    assert!(process.charges.iter().any(|c| c.active && c.tier.is_some()));
    assert!(process.charges.iter().any(|c| !c.active));
    for c in &process.charges {
        assert_eq!(c.active, c.charge.effective_end >= grace, "{c:?}");
    }
    let expired = process
        .charges
        .iter()
        .find(|c| c.charge.id == "a1y000000000EXPIRED")
        .unwrap();
    assert!(!expired.active && expired.tier.is_some());
    let global = &process.instances[0];
    let set_by_active = |flag: &String| {
        process
            .charges
            .iter()
            .any(|c| c.active && c.flag.as_ref() == Some(flag))
    };
    assert!(
        expired
            .flag
            .as_ref()
            .is_none_or(|f| !global.flags.contains(f) || set_by_active(f)),
        "an expired charge sets no flag"
    );
    assert_eq!(sync_of(&e, SyncKind::Global).compare, [Decision::InSync]);
    let text = zdsync::explain::render(&e);
    assert!(
        text.contains("active ") && text.contains("expired "),
        "{text}"
    );

    // The federal-support exception: exception tiers to US Gov, the rest to Global.
    let e = why(&h, &first(&h, "federal_exception")).await;
    let process = e.process.as_ref().unwrap();
    assert!(matches!(
        e.account,
        Some(Gathered::Mapped {
            federal_support_exception: true,
            ..
        })
    ));
    let routes: Vec<_> = process.charges.iter().filter_map(|c| c.route).collect();
    assert!(
        routes.iter().any(|r| r.contains("exception tier")),
        "{routes:?}"
    );
    assert!(routes.iter().any(|r| r.starts_with("Global")), "{routes:?}");
    let instances: Vec<Instance> = process.instances.iter().map(|i| i.instance).collect();
    assert_eq!(instances, [Instance::Global, Instance::Usgov]);

    // An override applied (and the post-rule it triggers: enterprise ⇒ ASE), and an expired one.
    let e = why(&h, &overridden).await;
    let global = &e.process.as_ref().unwrap().instances[0];
    assert!(
        global.override_use.starts_with("applied (contract 42"),
        "{}",
        global.override_use
    );
    assert!(
        global
            .post_rules
            .iter()
            .any(|r| r.contains("sub_ss_enterprise ⇒ sub_ss_ase"))
    );
    assert_eq!(
        global.desired.as_ref().unwrap().organization_fields["sub_ss_ase"],
        json!(true)
    );
    let story = sync_of(&e, SyncKind::Global);
    let Decision::Update { changes } = &story.compare[0] else {
        panic!("{:?}", story.compare)
    };
    assert_eq!(changes["organization_fields"]["sub_ss_ase"], json!(true));
    assert!(
        matches!(story.sync_did[..], [Outcome::Updated { .. }]),
        "{:?}",
        story.sync_did
    );
    let e = why(&h, &expired_override).await;
    let global = &e.process.as_ref().unwrap().instances[0];
    assert!(
        global
            .override_use
            .starts_with("ignored: expired on 2026-01-31"),
        "{}",
        global.override_use
    );
    assert_eq!(sync_of(&e, SyncKind::Global).compare, [Decision::InSync]);

    // FedRAMP: the internal flag implies Dedicated and 24x7 on US Gov.
    let e = why(&h, &first(&h, "usgov_fedramp")).await;
    let usgov = e
        .process
        .as_ref()
        .unwrap()
        .instances
        .iter()
        .find(|i| i.instance == Instance::Usgov)
        .unwrap();
    assert!(
        usgov.post_rules.iter().any(|r| r.starts_with("FedRAMP")),
        "{:?}",
        usgov.post_rules
    );
    let fields = &usgov.desired.as_ref().unwrap().organization_fields;
    assert_eq!(
        (&fields["sub_gitlab_dedicated"], &fields["sub_usgov_24x7"]),
        (&json!(true), &json!(true))
    );

    // An unmapped charge: shown, ignored, the mapped one decides.
    let e = why(&h, &first(&h, "unmapped_charge")).await;
    let charges = &e.process.as_ref().unwrap().charges;
    assert!(
        charges
            .iter()
            .any(|c| c.tier.is_none() && c.charge.name == "Legacy Starter - 1 Year")
    );
    assert!(charges.iter().any(|c| c.tier.is_some()));

    // A rejected record: why, and its org held as it is.
    let e = why(&h, &rejected).await;
    assert!(
        matches!(&e.account, Some(Gathered::Rejected { reason, .. }) if reason.contains("Name")),
        "{:?}",
        e.account
    );
    let story = sync_of(&e, SyncKind::Global);
    assert!(
        matches!(&story.compare[..], [Decision::Left { why }] if why.contains("rejected")),
        "{:?}",
        story.compare
    );
    assert_eq!(story.records.len(), 1);

    // A conflict: two orgs with one Salesforce id, neither written.
    let e = why(&h, &first(&h, "salesforce_id_on_two_orgs")).await;
    let story = sync_of(&e, SyncKind::Global);
    assert_eq!(story.records.len(), 2);
    assert!(
        matches!(&story.compare[..], [Decision::Conflict { .. }]),
        "{:?}",
        story.compare
    );
    assert!(story.sync_did.is_empty());

    // An unmanaged org holding the name a new account wants: the create is held back.
    let e = why(&h, &unmanaged_name_taker).await;
    let story = sync_of(&e, SyncKind::Global);
    assert!(story.records.is_empty());
    assert!(
        story
            .name_taken_by
            .iter()
            .any(|r| r.role == RecordRole::Unmanaged && r.name == "Channel Reseller Ltd"),
        "{:?}",
        story.name_taken_by
    );
    assert!(
        matches!(&story.compare[..], [Decision::HeldBack { why }] if why.contains("is taken")),
        "{:?}",
        story.compare
    );

    // A protected id: gone from Salesforce, never marked.
    let e = why(&h, &protected).await;
    let story = sync_of(&e, SyncKind::Global);
    assert!(story.protected && story.desired.is_none());
    assert!(
        matches!(&story.compare[..], [Decision::Left { why }] if why.contains("protected")),
        "{:?}",
        story.compare
    );

    // The second of two accounts sharing one name: held back, the first is created.
    let shared = h.scenario("shared_name");
    let stories: Vec<Decision> = [why(&h, &shared[0]).await, why(&h, &shared[1]).await]
        .iter()
        .map(|e| sync_of(e, SyncKind::Global).compare[0].clone())
        .collect();
    assert!(
        stories
            .iter()
            .any(|d| matches!(d, Decision::HeldBack { .. })),
        "{stories:?}"
    );

    // A gone account: marked by the sync.
    let e = why(&h, &h.scenario("global_account_gone")[1]).await;
    let story = sync_of(&e, SyncKind::Global);
    assert_eq!(story.compare, [Decision::Mark]);
    assert!(
        matches!(story.sync_did[..], [Outcome::Marked { .. }]),
        "{:?}",
        story.sync_did
    );

    // A partner: the customer processor skips it, the partner sync owns it.
    let e = why(&h, &first(&h, "partner_select")).await;
    assert!(
        matches!(&e.partner, Some(PartnerStory::Mapped { account_type, .. }) if account_type == "select_partner"),
        "{:?}",
        e.partner
    );
    let story = sync_of(&e, SyncKind::Partners);
    assert!(story.desired.is_some() && !story.compare.is_empty());

    // An ambiguous US Gov email: held, neither created, moved nor marked.
    let e = why(&h, "pat.lee@shared-contact.example.com").await;
    assert!(
        matches!(&e.contact, Some(ContactStory::Ambiguous { salesforce_ids }) if salesforce_ids.len() >= 2),
        "{:?}",
        e.contact
    );
    let story = sync_of(&e, SyncKind::Users);
    assert!(story.held.as_deref().unwrap().starts_with("ambiguous"));
    assert!(
        matches!(&story.compare[..], [Decision::Left { .. }]),
        "{:?}",
        story.compare
    );
    assert!(story.sync_did.is_empty());

    // A US Gov user in sync, and one whose name is stale (updated by the sync).
    let e = why(&h, &first(&h, "usgov_user_in_sync")).await;
    assert!(matches!(e.contact, Some(ContactStory::Contact { .. })));
    assert_eq!(sync_of(&e, SyncKind::Users).compare, [Decision::InSync]);
    let e = why(&h, &first(&h, "usgov_user_stale_name")).await;
    let story = sync_of(&e, SyncKind::Users);
    assert!(
        matches!(&story.compare[..], [Decision::Update { changes }] if changes.get("name").is_some()),
        "{:?}",
        story.compare
    );

    // The command tells the same story, for people and as JSON, of the latest run by default.
    let federal = first(&h, "federal_exception");
    let text = zdsync_cli::runs::explain(None, h.data_path(), Some(RUN), &federal, false)
        .await
        .unwrap();
    assert!(
        text.contains("exception tier on a federal-support account"),
        "{text}"
    );
    assert!(text.contains("US Gov orgs (usgov sync)"), "{text}");
    let json: Value = serde_json::from_str(
        &zdsync_cli::runs::explain(None, h.data_path(), None, &federal, true)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&json["run_id"], &json["subject"]),
        (&json!(RUN), &json!(federal))
    );
    let error = zdsync_cli::runs::explain(None, h.data_path(), Some(RUN), "Acme Corp", false)
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("neither a Salesforce account id nor an email"));

    // Bad subjects are named.
    assert!(
        Subject::parse("not-an-id")
            .unwrap_err()
            .contains("\"not-an-id\"")
    );
    assert!(Subject::parse("a@@b").is_err());
}

/// Explain's desired objects are the processor's, for every account of a generated world: the
/// same code path, so they cannot drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_gives_the_processors_object_for_every_account() {
    let h = Harness::generated(120, 11).await;
    let outcome = h.run_with(RUN, true, BTreeMap::new()).await;
    succeeded(&outcome);
    let accounts: SalesforceAccounts = h.artifact(RUN, artifacts::SALESFORCE_ACCOUNTS).await;
    let mut ran: BTreeMap<(Instance, String), Value> = BTreeMap::new();
    for instance in Instance::ALL {
        let desired: DesiredOrgs = h.artifact(RUN, &artifacts::desired_orgs(instance)).await;
        for org in desired.orgs {
            ran.insert(
                (instance, org.salesforce_id.to_string()),
                serde_json::to_value(&org).unwrap(),
            );
        }
    }
    let mut explained = BTreeMap::new();
    for account in &accounts.accounts {
        let e = why(&h, account.salesforce_id.as_str()).await;
        assert!(e.notes.is_empty(), "{:?}", e.notes);
        for instance in &e.process.as_ref().unwrap().instances {
            if let Some(desired) = &instance.desired {
                explained.insert(
                    (instance.instance, account.salesforce_id.to_string()),
                    serde_json::to_value(desired).unwrap(),
                );
            }
            assert_eq!(
                instance.same_as_run,
                Some(true),
                "{}",
                account.salesforce_id
            );
        }
    }
    assert!(ran.len() > 100, "{} objects", ran.len());
    assert_eq!(explained, ran);
}

/// The run's stage stats: every artifact key each stage wrote, with its bytes.
fn written_by(h: &Harness, run_id: &str) -> BTreeMap<String, u64> {
    let mut written = BTreeMap::new();
    let dir = h.data_path().join("runs").join(run_id).join("stages");
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let stats: Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
        for (key, bytes) in stats["artifacts"]["written"].as_object().unwrap() {
            *written.entry(key.clone()).or_default() += bytes.as_u64().unwrap();
        }
    }
    written
}

fn blob_of(h: &Harness, run_id: &str, name: &str) -> String {
    let body = std::fs::read(h.data_path().join("runs").join(run_id).join(name)).unwrap();
    zdsync::store::blob::pointer_target(name, &body)
        .unwrap()
        .unwrap_or_else(|| panic!("{run_id}/{name} is not a pointer to a blob"))
        .key
}

/// Big artifacts are blobs behind pointers: a quiet delta run shares the blobs of the run
/// before and writes none, and explain, report and redrive read such runs as any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_runs_share_blobs_and_explain_report_and_redrive_read_them() {
    let h = Harness::generated(300, 5).await;
    for run in ["blobs-1", "blobs-2", "blobs-3"] {
        succeeded(&h.run(run).await);
    }
    // blobs-2 saw run 1's writes; blobs-3 is quiet: the same blobs, none written again.
    for name in [
        artifacts::SALESFORCE_ACCOUNTS.to_owned(),
        artifacts::desired_orgs(Instance::Global),
        artifacts::zendesk_orgs(Instance::Global),
    ] {
        assert_eq!(
            blob_of(&h, "blobs-2", &name),
            blob_of(&h, "blobs-3", &name),
            "{name}"
        );
    }
    let quiet = written_by(&h, "blobs-3");
    assert!(
        quiet.keys().all(|key| !key.starts_with("blobs/")),
        "{quiet:?}"
    );
    let quiet_bytes: u64 = quiet.values().sum();
    let first_bytes: u64 = written_by(&h, "blobs-1").values().sum();
    assert!(
        quiet_bytes * 4 < first_bytes,
        "quiet {quiet_bytes} bytes, first run {first_bytes}"
    );

    // explain and report of the quiet run.
    let store = h.data.store();
    let run = RunKeys::new("blobs-3").unwrap();
    let sources = Sources {
        store: store.as_ref(),
        run: &run,
        settings: h.world.settings(),
        http: &reqwest::Client::new(),
    };
    let accounts: SalesforceAccounts = h.artifact("blobs-3", artifacts::SALESFORCE_ACCOUNTS).await;
    assert!(accounts.accounts.len() > 200);
    let subject = accounts.accounts[0].salesforce_id.to_string();
    let e = explain(&sources, &Subject::parse(&subject).unwrap())
        .await
        .unwrap();
    assert!(e.notes.is_empty(), "{:?}", e.notes);
    let process = e.process.as_ref().unwrap();
    assert!(
        process
            .instances
            .iter()
            .all(|i| i.desired.is_none() || i.same_as_run == Some(true)),
        "{process:#?}"
    );
    let summary: zdsync::model::RunSummary = h.artifact("blobs-3", artifacts::SUMMARY).await;
    zdsync_e2e::assert_report_counts_are_the_summarys(
        &zdsync_e2e::report_md(&h, "blobs-3"),
        &summary,
        false,
    );

    // A delta run that crashes mid-sync is redriven from its blob-backed artifacts.
    // A person edits three synced orgs in Zendesk: the next (delta) run puts them back.
    let gathered: zdsync::model::ZendeskOrgs = h
        .artifact("blobs-3", &artifacts::zendesk_orgs(Instance::Global))
        .await;
    let global = h.sandbox().zendesk(zdsync_sandbox::ZendeskInstance::Global);
    for org in gathered
        .orgs
        .iter()
        .filter(|o| {
            o.salesforce_id.is_some()
                && o.organization_fields["support_level"].is_string()
                && o.organization_fields["support_level"] != "expired"
        })
        .take(3)
    {
        global
            .update_organization(
                org.id,
                json!({"organization_fields": {"support_level": "expired", "aar": 123456}}),
            )
            .unwrap();
    }
    // The change feed shows a change a minute later.
    h.sandbox()
        .advance_clock(std::time::Duration::from_secs(61));
    let crashed = h
        .run_crashing(
            "blobs-4",
            zdsync_cli::local::CrashPlan {
                stage: zdsync::stages::Stage::Sync,
                sync: SyncKind::Global,
                // The one Update Many is carried out, its answer never comes.
                after_writes: 0,
            },
        )
        .await;
    assert_eq!(
        crashed.record.status,
        zdsync_cli::asl::ExecutionStatus::Failed
    );
    blob_of(&h, "blobs-4", &artifacts::desired_orgs(Instance::Global));
    succeeded(&h.redrive("blobs-4").await);
}
