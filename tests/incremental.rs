//! Incremental gathers (SPEC §12) of Zendesk organizations and users and of Salesforce accounts,
//! partners and contacts: a run after the first reads only what changed since the snapshot, its artifacts equal what a full gather returns at that
//! moment, the sync's own writes are in the snapshot the next run starts from (the change feed
//! shows them only a minute later), a dry run never advances a snapshot, and a full read can be
//! asked for.

use std::time::Duration;

use serde_json::{Value, json};
use zdsync::model::{GatherKind, GatherNote, Instance, RunSummary, SyncKind};
use zdsync::snapshot::Source;
use zdsync::stages::{Stage, StageStats, artifacts};
use zdsync_e2e::{AS_OF, Harness, succeeded};
use zdsync_sandbox::ZendeskInstance;

/// The gathered artifacts of a run that come from snapshots, as (gather stage, sync, name).
fn gathered_artifacts() -> [(Stage, Option<SyncKind>, String); 8] {
    [
        (
            Stage::GatherOrgs,
            Some(SyncKind::Global),
            artifacts::zendesk_orgs(Instance::Global),
        ),
        (
            Stage::GatherOrgs,
            Some(SyncKind::Usgov),
            artifacts::zendesk_orgs(Instance::Usgov),
        ),
        (
            Stage::GatherOrgs,
            Some(SyncKind::Partners),
            artifacts::PARTNER_ORGS.to_owned(),
        ),
        (
            Stage::GatherOrgs,
            Some(SyncKind::Users),
            artifacts::USER_ORGS.to_owned(),
        ),
        (
            Stage::GatherUsers,
            Some(SyncKind::Users),
            artifacts::USERS.to_owned(),
        ),
        (
            Stage::GatherAccounts,
            None,
            artifacts::SALESFORCE_ACCOUNTS.to_owned(),
        ),
        (
            Stage::GatherAccounts,
            Some(SyncKind::Partners),
            artifacts::PARTNER_ACCOUNTS.to_owned(),
        ),
        (
            Stage::GatherContacts,
            Some(SyncKind::Users),
            artifacts::CONTACTS.to_owned(),
        ),
    ]
}

/// What a full gather returns now for `run`'s artifact `name`, without touching the snapshot (a
/// dry run of the gather stage alone, under a run id of its own; the contact gather is given
/// the run's US Gov orgs and users it reads).
async fn full_gather(
    h: &Harness,
    run: &str,
    (stage, sync, name): &(Stage, Option<SyncKind>, String),
) -> Value {
    let check = format!(
        "check-{run}-{}",
        name.replace('/', "-").replace(".json", "")
    );
    if *stage == Stage::GatherContacts {
        for input in [artifacts::USER_ORGS, artifacts::USERS] {
            let to = h.data_path().join(format!("runs/{check}/{input}"));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(h.data_path().join(format!("runs/{run}/{input}")), to).unwrap();
        }
    }
    let mut input = json!({"run_id": check, "as_of": AS_OF, "full": true, "dry_run": true});
    if let Some(sync) = sync {
        input["sync"] = json!(sync);
    }
    h.stage(*stage, input).await.unwrap();
    h.artifact(&check, name).await
}

async fn summary(h: &Harness, run: &str) -> RunSummary {
    h.artifact(run, artifacts::SUMMARY).await
}

/// How the gather of `stage` (`gather_orgs_global`, `gather_orgs_partners`, …) read its source.
fn note<'a>(summary: &'a RunSummary, stage: &str) -> &'a GatherNote {
    summary
        .stages
        .get(stage)
        .and_then(|s| s.gathers.first())
        .unwrap_or_else(|| panic!("no gather note of {stage}: {:#?}", summary.stages))
}

/// Organization listings (not the change feed, not targeted reads) the sandbox answered.
fn org_listings(h: &Harness) -> u64 {
    let counters = h.sandbox().counters();
    ["global", "usgov"]
        .iter()
        .map(|i| counters.get(&format!("{i} GET /api/v2/organizations")))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_runs_read_only_the_changes_and_gather_what_a_full_read_would() {
    let h = Harness::generated(40, 11).await;
    succeeded(&h.run("first").await);
    let first = summary(&h, "first").await;
    // Nothing to start from: the first gather of each instance lists every org; the gathers
    // after a sync start from the snapshot the sync folded its writes into.
    let global = note(&first, "gather_orgs_global");
    assert_eq!(global.mode, GatherKind::Full, "{global}");
    assert_eq!(global.reason.as_deref(), Some("no snapshot yet"));
    assert_eq!(note(&first, "gather_orgs_partners").mode, GatherKind::Delta);
    assert_eq!(note(&first, "gather_orgs_users").mode, GatherKind::Delta);
    assert_eq!(note(&first, "gather_users").mode, GatherKind::Full);
    let report = zdsync_e2e::report_md(&h, "first");
    assert!(report.contains("## Gathers"), "{report}");
    assert!(
        report.contains("gather_orgs_global: zendesk_global_orgs: full (no snapshot yet)"),
        "{report}"
    );

    // A person edits a managed org in Zendesk; a minute later the next run starts.
    let edited = h
        .orgs(Instance::Global)
        .into_iter()
        .find(|o| {
            let fields = &o["organization_fields"];
            fields["salesforce_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
                && fields["support_level"].is_string()
                && fields["support_level"] != "expired"
        })
        .unwrap();
    let id = edited["id"].as_u64().unwrap();
    let fields = edited["organization_fields"].clone();
    h.sandbox()
        .zendesk(ZendeskInstance::Global)
        .update_organization(
            id,
            json!({"organization_fields": {"support_level": "expired", "aar": 123456}}),
        )
        .unwrap();
    h.sandbox().advance_clock(Duration::from_secs(61));
    h.sandbox().reset_counters();
    succeeded(&h.run("second").await);
    assert_eq!(
        org_listings(&h),
        0,
        "{:#?}",
        h.sandbox().counters().requests
    );
    let second = summary(&h, "second").await;
    let global = note(&second, "gather_orgs_global");
    assert_eq!(global.mode, GatherKind::Delta, "{global}");
    assert!(global.read >= 1, "{global}");
    let users = note(&second, "gather_users");
    assert_eq!(users.mode, GatherKind::Delta, "{users}");
    for stage in [
        "gather_accounts",
        "gather_accounts_partners",
        "gather_contacts",
    ] {
        let salesforce = note(&second, stage);
        assert_eq!(salesforce.mode, GatherKind::Delta, "{salesforce}");
    }
    // The edit was seen, and undone as a full run would.
    assert_eq!(
        h.sandbox()
            .zendesk(ZendeskInstance::Global)
            .organization(id)
            .unwrap()["organization_fields"],
        fields
    );
    // Every org artifact of the run equals what a full gather returned at its moment: now,
    // for the gathers after the last write of each branch (partners, users) — and for the
    // first gathers, now less what the run's syncs wrote.
    for gathered in gathered_artifacts().iter().skip(2) {
        let delta: Value = h.artifact("second", &gathered.2).await;
        let full = full_gather(&h, "second", gathered).await;
        assert_eq!(delta, full, "{}", gathered.2);
    }

    // A run at once after (the feed does not show the last minute yet) neither redoes nor
    // misses anything: the second run's writes are in the snapshot.
    let writes = h.zendesk_writes(Instance::Global) + h.zendesk_writes(Instance::Usgov);
    let asked = h.sandbox().salesforce().queries().len();
    succeeded(&h.run("third").await);
    // Salesforce, asked what changed: three questions for the accounts, one for the partners,
    // one for the contacts — and nothing read again.
    let queries = h.sandbox().salesforce().queries();
    let recent = &queries[asked..];
    assert_eq!(recent.len(), 5, "{recent:#?}");
    assert!(
        recent.iter().all(|q| q.contains("SystemModstamp >=")),
        "{recent:#?}"
    );
    assert_eq!(
        h.zendesk_writes(Instance::Global) + h.zendesk_writes(Instance::Usgov),
        writes,
        "{:#?}",
        h.sandbox().counters().requests
    );
    // Nothing changed for the third run: no snapshot was written again (a mark moving a
    // watermark, a few hundred bytes, may be).
    for stage in [
        "gather-accounts",
        "gather-accounts-partners",
        "gather-contacts",
        "gather-orgs-global",
        "gather-orgs-usgov",
        "gather-users",
        "sync-global",
        "sync-usgov",
        "sync-users",
    ] {
        let stats: StageStats = h.artifact("third", &format!("stages/{stage}.json")).await;
        assert!(
            stats
                .artifacts
                .written
                .keys()
                .all(|k| !k.starts_with("state/") || k.ends_with(".mark.json")),
            "{stage}: {:?}",
            stats.artifacts.written
        );
    }
    for gathered in &gathered_artifacts() {
        let delta: Value = h.artifact("third", &gathered.2).await;
        let full = full_gather(&h, "third", gathered).await;
        assert_eq!(delta, full, "{}", gathered.2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reads_snapshots_and_never_advances_them_and_full_can_be_asked_for() {
    let h = Harness::generated(20, 5).await;
    succeeded(&h.run("first").await);
    let key = Source::ZendeskOrgs(Instance::Global).key();
    let snapshot = std::fs::read(h.data_path().join(&key)).unwrap();

    h.sandbox()
        .zendesk(ZendeskInstance::Global)
        .insert_organization(json!({"name": "Made by a person"}))
        .unwrap();
    h.sandbox().advance_clock(Duration::from_secs(61));
    succeeded(&h.run_with("dry", true, Default::default()).await);
    let dry = summary(&h, "dry").await;
    let global = note(&dry, "gather_orgs_global");
    assert_eq!(global.mode, GatherKind::Delta, "{global}");
    assert!(global.dry_run);
    assert_eq!(std::fs::read(h.data_path().join(&key)).unwrap(), snapshot);
    let gathered: Value = h
        .artifact("dry", &artifacts::zendesk_orgs(Instance::Global))
        .await;
    assert!(
        gathered["orgs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "Made by a person"),
        "the dry run's delta saw the new org"
    );

    let outcome = h.run_full("full").await;
    succeeded(&outcome);
    let full = summary(&h, "full").await;
    for stage in [
        "gather_orgs_global",
        "gather_orgs_usgov",
        "gather_accounts",
        "gather_accounts_partners",
        "gather_contacts",
        "gather_users",
    ] {
        let first = note(&full, stage);
        assert_eq!(first.mode, GatherKind::Full, "{first}");
        assert_eq!(first.reason.as_deref(), Some("asked for"));
    }
    // Each source is read in full once: the gathers after the org syncs start from the
    // picture the org syncs' gathers read in full minutes before, in this execution.
    for stage in ["gather_orgs_partners", "gather_orgs_users"] {
        let after_sync = note(&full, stage);
        assert_eq!(after_sync.mode, GatherKind::Delta, "{after_sync}");
    }
    assert_ne!(std::fs::read(h.data_path().join(&key)).unwrap(), snapshot);
}

/// A delta run whose org sync crashes at its first Zendesk write is redriven: the redrive
/// finishes the run from the delta's artifacts, Zendesk ends as a full run leaves it, and the
/// next delta run starts from snapshots that miss nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_run_that_failed_mid_sync_is_redriven_to_a_full_runs_end() {
    let fixture = zdsync_sandbox::Fixture::generate(&zdsync_sandbox::GeneratorOptions::new(
        30,
        9,
        zdsync_e2e::as_of(),
    ));
    let delta = Harness::from_fixture(fixture.clone()).await;
    let full = Harness::from_fixture(fixture).await;
    succeeded(&delta.run("r0").await);
    succeeded(&full.run_full("r0").await);
    // Edits in Salesforce and in Zendesk: orgs to update (and a prospect given a subscription
    // and made a customer); the org sync dies as it sends its first write.
    let mut accounts: Vec<(String, String, bool)> = delta.sandbox().salesforce().snapshot().objects
        ["Account"]
        .iter()
        .map(|a| {
            let subscribed = a[SUBSCRIPTIONS].as_array().is_some_and(|s| !s.is_empty());
            (
                a["Account_ID_18__c"].as_str().unwrap().to_owned(),
                a["Type"].as_str().unwrap_or_default().to_owned(),
                subscribed,
            )
        })
        .collect();
    accounts.sort();
    let prospect = accounts.iter().position(|a| a.1 == "Prospect").unwrap();
    let subscribed = accounts
        .iter()
        .position(|a| a.1 == "Customer" && a.2)
        .unwrap();
    let changes = [
        Change::SubscriptionCreated {
            account: prospect,
            from: subscribed,
            n: 1,
        },
        Change::AccountBack { account: prospect },
        Change::AccountRenamed {
            account: 1,
            suffix: 7,
        },
        Change::AccountRenamed {
            account: 4,
            suffix: 7,
        },
        Change::ChargeQuantity {
            account: 2,
            quantity: 77,
        },
        Change::AccountGone { account: 6 },
        Change::PersonEditsField { org: 3, aar: 4242 },
    ];
    for h in [&delta, &full] {
        for change in &changes {
            apply(h, change);
        }
        h.sandbox().advance_clock(Duration::from_secs(61));
    }
    let crashed = delta
        .run_crashing(
            "r1",
            zdsync_cli::local::CrashPlan {
                stage: Stage::Sync,
                sync: SyncKind::Global,
                after_writes: 0,
            },
        )
        .await;
    let first = summary(&delta, "r1").await;
    assert_eq!(
        crashed.record.status,
        zdsync_cli::asl::ExecutionStatus::Failed,
        "{:#?} {:#?}",
        first.stages.get("sync_global"),
        first.stages.get("gather_accounts")
    );
    assert_eq!(note(&first, "gather_accounts").mode, GatherKind::Delta);
    assert_eq!(note(&first, "gather_orgs_global").mode, GatherKind::Delta);
    succeeded(&delta.redrive("r1").await);
    succeeded(&full.run_full("r1").await);
    let same = |round: &str| {
        let (a, b) = (
            zdsync_e2e::zendesk_end_state(delta.sandbox()),
            zdsync_e2e::zendesk_end_state(full.sandbox()),
        );
        if let Some(diff) = zdsync_e2e::first_difference(&a, &b, "zendesk") {
            panic!("{round}: {diff}");
        }
    };
    same("after the redrive");
    for h in [&delta, &full] {
        apply(
            h,
            &Change::AccountRenamed {
                account: 8,
                suffix: 9,
            },
        );
        h.sandbox().advance_clock(Duration::from_secs(61));
    }
    succeeded(&delta.run("r2").await);
    succeeded(&full.run_full("r2").await);
    assert_eq!(
        note(&summary(&delta, "r2").await, "gather_orgs_global").mode,
        GatherKind::Delta
    );
    same("the delta run after");
}

// ----- equivalence, as a property ------------------------------------------------------------

/// A change between runs, made the same way in two worlds.
#[derive(Debug, Clone)]
enum Change {
    /// A person sets a managed field of an org (picked among the world's first orgs).
    PersonEditsField { org: usize, aar: u32 },
    /// A person renames an org.
    PersonRenames { org: usize, suffix: u8 },
    /// A person creates an org the sync does not manage.
    PersonCreates { n: u16 },
    /// A person renames a US Gov user (picked among the first users); the user sync renames
    /// them back when their contact is in Salesforce.
    PersonRenamesUser { user: usize, suffix: u8 },
    /// Salesforce renames an account: the sync renames its org (the sync's own write).
    AccountRenamed { account: usize, suffix: u8 },
    /// Salesforce turns an account into a prospect: the sync marks its org.
    AccountGone { account: usize },
    /// Salesforce turns an account (back) into a customer.
    AccountBack { account: usize },
    /// A subscription's end date moves: past the 3-year horizon (it drops out of the query) or
    /// further out.
    SubscriptionEndMoves {
        account: usize,
        sub: usize,
        ended: bool,
    },
    /// A charge's quantity changes (a change of the charge alone, not of its account).
    ChargeQuantity { account: usize, quantity: u16 },
    /// A subscription and its charges are deleted.
    SubscriptionDeleted { account: usize },
    /// A subscription (with a charge) is created on an account, copied from another account's.
    SubscriptionCreated { account: usize, from: usize, n: u16 },
    /// Two accounts are merged: the loser is deleted, its rows move to the master.
    AccountsMerged { master: usize, loser: usize },
}

/// One round: the changes, then a run — a minute after them, or at once (no changes by
/// others then: what a person changed in the last minute is, by design, for the next run).
#[derive(Debug, Clone)]
struct Round {
    changes: Vec<Change>,
    a_minute_later: bool,
}

fn change() -> impl proptest::strategy::Strategy<Value = Change> {
    use proptest::prelude::*;
    prop_oneof![
        (0..12usize, 1..1_000_000u32).prop_map(|(org, aar)| Change::PersonEditsField { org, aar }),
        (0..12usize, any::<u8>()).prop_map(|(org, suffix)| Change::PersonRenames { org, suffix }),
        any::<u16>().prop_map(|n| Change::PersonCreates { n }),
        (0..15usize, any::<u8>())
            .prop_map(|(account, suffix)| Change::AccountRenamed { account, suffix }),
        (0..10usize, any::<u8>())
            .prop_map(|(user, suffix)| Change::PersonRenamesUser { user, suffix }),
        (0..15usize).prop_map(|account| Change::AccountGone { account }),
        (0..15usize).prop_map(|account| Change::AccountBack { account }),
        (0..15usize, 0..3usize, any::<bool>()).prop_map(|(account, sub, ended)| {
            Change::SubscriptionEndMoves {
                account,
                sub,
                ended,
            }
        }),
        (0..15usize, 1..500u16)
            .prop_map(|(account, quantity)| Change::ChargeQuantity { account, quantity }),
        (0..15usize).prop_map(|account| Change::SubscriptionDeleted { account }),
        (0..15usize, 0..15usize, any::<u16>())
            .prop_map(|(account, from, n)| Change::SubscriptionCreated { account, from, n }),
        (0..15usize, 0..15usize)
            .prop_map(|(master, loser)| Change::AccountsMerged { master, loser }),
    ]
}

fn rounds() -> impl proptest::strategy::Strategy<Value = Vec<Round>> {
    use proptest::prelude::*;
    prop::collection::vec(
        (prop::collection::vec(change(), 0..4), any::<bool>()).prop_map(|(changes, later)| Round {
            a_minute_later: later || !changes.is_empty(),
            changes,
        }),
        1..4,
    )
}

fn apply(h: &Harness, change: &Change) {
    let global = h.sandbox().zendesk(ZendeskInstance::Global);
    let mut orgs = h.orgs(Instance::Global);
    orgs.sort_by_key(|o| o["id"].as_u64());
    // The accounts Salesforce has now (a merge removes some), in a stable order.
    let mut accounts: Vec<String> = h.sandbox().salesforce().snapshot().objects["Account"]
        .iter()
        .filter(|a| a["IsDeleted"] != json!(true))
        .filter_map(|a| a["Account_ID_18__c"].as_str().map(str::to_owned))
        .collect();
    accounts.sort();
    let pick = |n: usize| accounts[n % accounts.len()].clone();
    match *change {
        Change::PersonEditsField { org, aar } => {
            let id = orgs[org % orgs.len()]["id"].as_u64().unwrap();
            global
                .update_organization(id, json!({"organization_fields": {"aar": aar}}))
                .unwrap();
        }
        Change::PersonRenames { org, suffix } => {
            let picked = &orgs[org % orgs.len()];
            let name = format!("{} (edited {suffix})", picked["name"].as_str().unwrap());
            // A name another org has is refused, as in Zendesk; then nothing changed.
            let _ =
                global.update_organization(picked["id"].as_u64().unwrap(), json!({"name": name}));
        }
        Change::PersonCreates { n } => {
            let _ = global.insert_organization(json!({"name": format!("Made by a person {n}")}));
        }
        Change::PersonRenamesUser { user, suffix } => {
            let usgov = h.sandbox().zendesk(ZendeskInstance::Usgov);
            let mut users = usgov.users();
            users.sort_by_key(|u| u["id"].as_u64());
            if let Some(picked) = users.get(user % users.len().max(1)) {
                let name = format!(
                    "{} (edited {suffix})",
                    picked["name"].as_str().unwrap_or("User")
                );
                usgov
                    .update_user(picked["id"].as_u64().unwrap(), json!({"name": name}))
                    .unwrap();
            }
        }
        Change::AccountRenamed { account, suffix } => {
            let id = &pick(account);
            h.edit_account(id, |a| {
                let name = format!("{} {suffix}", a["Name"].as_str().unwrap_or("Account"));
                a["Name"] = json!(name);
            });
        }
        Change::AccountGone { account } => {
            h.edit_account(&pick(account), |a| a["Type"] = json!("Prospect"));
        }
        Change::AccountBack { account } => {
            h.edit_account(&pick(account), |a| a["Type"] = json!("Customer"));
        }
        Change::SubscriptionEndMoves {
            account,
            sub,
            ended,
        } => {
            h.edit_account(&pick(account), |a| {
                let subs = rows(a, SUBSCRIPTIONS);
                if !subs.is_empty() {
                    let n = sub % subs.len();
                    let end = if ended { "2019-01-31" } else { "2031-06-30" };
                    subs[n]["Zuora__SubscriptionEndDate__c"] = json!(end);
                }
            });
        }
        Change::ChargeQuantity { account, quantity } => {
            h.edit_account(&pick(account), |a| {
                if let Some(charge) = rows(a, CHARGES).first_mut() {
                    charge["Zuora__Quantity__c"] = json!(quantity);
                }
            });
        }
        Change::SubscriptionDeleted { account } => {
            h.edit_account(&pick(account), |a| {
                let subs = rows(a, SUBSCRIPTIONS);
                if subs.is_empty() {
                    return;
                }
                let gone = subs.remove(0)["Id"].clone();
                rows(a, CHARGES).retain(|c| c["Zuora__Subscription__c"] != gone);
            });
        }
        Change::SubscriptionCreated { account, from, n } => {
            let mut source = None;
            h.edit_account(&pick(from), |a| {
                let sub = rows(a, SUBSCRIPTIONS).first().cloned();
                let charges = rows(a, CHARGES).clone();
                source = sub.map(|sub| (sub, charges));
            });
            let Some((mut sub, charges)) = source else {
                return;
            };
            let sub_id = salesforce_id("a1x", n);
            let old_id = sub["Id"].clone();
            sub["Id"] = json!(sub_id);
            sub["Subscription_ID_18__c"] = json!(sub_id);
            sub["Name"] = json!(format!("A-S9{n:05}"));
            let charges: Vec<Value> = charges
                .into_iter()
                .filter(|c| c["Zuora__Subscription__c"] == old_id)
                .take(1)
                .map(|mut c| {
                    c["Id"] = json!(salesforce_id("a1y", n));
                    c["Zuora__Subscription__c"] = json!(sub_id);
                    c
                })
                .collect();
            h.edit_account(&pick(account), |a| {
                let taken = rows(a, SUBSCRIPTIONS)
                    .iter()
                    .any(|s| s["Id"] == json!(sub_id));
                if !taken {
                    rows(a, SUBSCRIPTIONS).push(sub);
                    rows(a, CHARGES).extend(charges);
                }
            });
        }
        Change::AccountsMerged { master, loser } => {
            let (master, loser) = (pick(master), pick(loser));
            if master != loser && accounts.len() > 3 {
                h.sandbox()
                    .salesforce()
                    .merge_accounts(&master, &[loser.as_str()])
                    .unwrap();
            }
        }
    }
}

const SUBSCRIPTIONS: &str = "Zuora__Subscriptions__r";
const CHARGES: &str = "Zuora__R00N40000001lGjTEAU__r";

/// An account's rows of a child relationship (an array in the emulated org).
fn rows<'a>(account: &'a mut Value, relationship: &str) -> &'a mut Vec<Value> {
    if !account[relationship].is_array() {
        account[relationship] = json!([]);
    }
    account[relationship].as_array_mut().unwrap()
}

/// A valid 18-character id of a record made by a test (`n` keeps ids of one kind apart).
fn salesforce_id(prefix: &str, n: u16) -> String {
    zdsync::model::SalesforceId::parse(&format!("{prefix}7T{n:010}"))
        .unwrap()
        .to_string()
}

/// An org artifact without what two worlds cannot share: when things happened, and where
/// (each sandbox has its own port).
fn timeless(mut artifact: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(object) => {
                object.remove("created_at");
                object.remove("updated_at");
                object.remove("url");
                object.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut artifact);
    artifact
}

/// Two worlds from one fixture take the same changes; one runs as scheduled (deltas), the other
/// always reads in full. After every run the org artifacts and Zendesk agree.
async fn delta_runs_equal_full_runs(rounds: Vec<Round>) {
    let fixture = zdsync_sandbox::Fixture::generate(&zdsync_sandbox::GeneratorOptions::new(
        15,
        3,
        zdsync_e2e::as_of(),
    ));
    let delta = Harness::from_fixture(fixture.clone()).await;
    let full = Harness::from_fixture(fixture).await;
    succeeded(&delta.run("r0").await);
    succeeded(&full.run_full("r0").await);
    for (i, round) in rounds.iter().enumerate() {
        for change in &round.changes {
            apply(&delta, change);
            apply(&full, change);
        }
        if round.a_minute_later {
            delta.sandbox().advance_clock(Duration::from_secs(61));
            full.sandbox().advance_clock(Duration::from_secs(61));
        }
        let run = format!("r{}", i + 1);
        let d = delta.run(&run).await;
        let f = full.run_full(&run).await;
        assert_eq!(
            d.summary.as_ref().map(|s| s.status),
            f.summary.as_ref().map(|s| s.status),
            "round {i}: {round:?}"
        );
        for (_, _, name) in gathered_artifacts() {
            let (a, b): (Value, Value) = (
                timeless(delta.artifact(&run, &name).await),
                timeless(full.artifact(&run, &name).await),
            );
            if let Some(diff) = zdsync_e2e::first_difference(&a, &b, &name) {
                panic!("round {i} ({round:?}): {diff}");
            }
        }
        let (a, b) = (
            zdsync_e2e::zendesk_end_state(delta.sandbox()),
            zdsync_e2e::zendesk_end_state(full.sandbox()),
        );
        if let Some(diff) = zdsync_e2e::first_difference(&a, &b, "zendesk") {
            panic!("round {i} ({round:?}): {diff}");
        }
    }
}

proptest::proptest! {
    // Two cases in CI (each runs two worlds through up to four runs); `scripts/bench.sh` runs
    // the long version (PROPTEST_CASES=200).
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2),
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]
    #[test]
    fn delta_gathers_and_full_gathers_give_the_same_artifacts_and_zendesk(rounds in rounds()) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(delta_runs_equal_full_runs(rounds));
    }
}
