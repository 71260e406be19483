//! The partner sync (Global) and the user sync (US Gov) end to end: the real state machine,
//! every stage in-process, real HTTP against the sandbox. Expected Zendesk states are written
//! out here from SPEC §9 and the Salesforce records, not taken from the code under test.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use zdsync::explain;
use zdsync::model::{ChangeSet, Instance, OrgUpdate, SalesforceContacts, SyncKind, SyncResult};
use zdsync::stages::artifacts;
use zdsync_e2e::{Harness, succeeded, zendesk};

fn one_org(h: &Harness, id: &str) -> Value {
    let orgs = h.orgs_of(Instance::Global, id);
    assert_eq!(orgs.len(), 1, "Global orgs of {id}: {orgs:#?}");
    orgs[0].clone()
}

fn salesforce(h: &Harness, object: &str) -> Vec<Value> {
    h.sandbox()
        .salesforce()
        .with_objects_mut(|objects| objects.get(object).cloned().unwrap_or_default())
}

fn account(h: &Harness, id: &str) -> Value {
    salesforce(h, "Account")
        .into_iter()
        .find(|a| a["Account_ID_18__c"] == json!(id))
        .unwrap_or_else(|| panic!("no account {id}"))
}

/// SPEC §9: the partner org of a partner record.
fn partner_fields(record: &Value, account_type: &str) -> Value {
    let id = record["Account_ID_18__c"].as_str().unwrap();
    json!({
        "salesforce_id": id,
        "sfdc_short_id": &id[..15],
        "account_type": account_type,
        "account_owner": record["Account_Owner_Calc__c"],
        "technical_account_manager": record["Technical_Account_Manager_Name__c"],
        "solutions_architect": record["Solutions_Architect_Lookup__r"].get("Name").cloned().unwrap_or(Value::Null),
        "restricted_account": record["Restricted_Account__c"] == json!("Restricted Party"),
        "org_in_escalated_state": record["Account_Risk_Level__c"] == json!("At Risk - Escalated"),
        "support_hold": record["Support_Hold__c"] == json!(true),
        "mark_for_deletion": false,
    })
}

fn global_orgs_by_id(h: &Harness) -> BTreeMap<u64, Value> {
    h.orgs(Instance::Global)
        .into_iter()
        .map(|o| (o["id"].as_u64().unwrap(), o))
        .collect()
}

fn assert_no_writes(h: &Harness) {
    for instance in Instance::ALL {
        assert_eq!(
            h.zendesk_writes(instance),
            0,
            "{instance}: {:#?}",
            h.sandbox().counters().requests
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_sync_creates_updates_and_marks_partner_orgs_as_salesforce_says() {
    let h = Harness::generated(60, 7).await;
    let before = global_orgs_by_id(&h);
    h.sandbox().reset_counters();
    let outcome = h.run("e2e-partners").await;
    succeeded(&outcome);

    for (scenario, account_type) in [
        ("partner_open", "open_partner"),
        ("partner_select", "select_partner"),
        ("partner_alliance", "alliance_partner"),
        ("partner_new", "open_partner"),
        ("partner_returning", "select_partner"),
    ] {
        for id in h.scenario(scenario) {
            let org = one_org(&h, &id);
            let record = account(&h, &id);
            assert_eq!(org["name"], record["Name"], "{scenario}");
            for (key, value) in partner_fields(&record, account_type).as_object().unwrap() {
                assert_eq!(
                    &org["organization_fields"][key], value,
                    "{scenario} {id}: {key}"
                );
            }
        }
    }
    // In sync already: not written at all.
    for scenario in ["partner_open", "partner_alliance"] {
        for id in h.scenario(scenario) {
            let org = one_org(&h, &id);
            assert_eq!(org, before[&org["id"].as_u64().unwrap()], "{scenario}");
        }
    }
    // A stale partner org gets only the key that differs.
    let updates: ChangeSet<OrgUpdate> = h
        .artifact("e2e-partners", &artifacts::updates(SyncKind::Partners))
        .await;
    let select = &h.scenario("partner_select")[0];
    let update = updates
        .items
        .iter()
        .find(|u| u.salesforce_id.as_str() == select)
        .unwrap();
    assert_eq!(update.name, None);
    assert_eq!(
        update.organization_fields.keys().collect::<Vec<_>>(),
        vec!["account_owner"]
    );
    // No longer authorized ("Former"): marked. Technology track: never an org.
    for id in h.scenario("partner_lapsed") {
        assert_eq!(
            one_org(&h, &id)["organization_fields"]["mark_for_deletion"],
            json!(true)
        );
    }
    for id in h.scenario("partner_technology") {
        assert!(h.orgs_of(Instance::Global, &id).is_empty(), "{id}");
    }

    let result: SyncResult = h
        .artifact("e2e-partners", &artifacts::sync_result(SyncKind::Partners))
        .await;
    let keys = |outcomes: &[zdsync::model::RecordOutcome]| {
        outcomes
            .iter()
            .map(|o| o.key.clone())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        keys(&result.created),
        h.scenario("partner_new").into_iter().collect()
    );
    assert_eq!(
        keys(&result.marked),
        h.scenario("partner_lapsed").into_iter().collect()
    );
    assert_eq!(
        keys(&result.updated),
        ["partner_select", "partner_returning"]
            .iter()
            .flat_map(|s| h.scenario(s))
            .collect()
    );
    assert!(result.errors.is_empty(), "{:#?}", result.errors);
    let summary = outcome.summary.unwrap();
    let counts = &summary.stages["sync_partners"].counts;
    assert_eq!(
        (counts["created"], counts["updated"], counts["marked"]),
        (1, 2, 1)
    );
    assert_eq!(
        summary.stages["gather_accounts_partners"].counts["partners"],
        5
    );
    let counters = h.sandbox().counters();
    println!(
        "partner sync calls: create_many {}, update_many {} (updates and marks of the org and partner syncs together)",
        counters.get("global POST /api/v2/organizations/create_many"),
        counters.get("global PUT /api/v2/organizations/update_many"),
    );

    h.sandbox().reset_counters();
    succeeded(&h.run("e2e-partners-again").await);
    assert_no_writes(&h);
}

/// The Gitlab Admin contacts the contact query returns for the accounts with a US Gov org,
/// by lower-cased email (a contact list per email: two or more make it ambiguous).
fn admin_contacts(h: &Harness, accounts: &BTreeSet<String>) -> BTreeMap<String, Vec<Value>> {
    let mut by_email: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for contact in salesforce(h, "Contact") {
        let admin = contact["Role__c"]
            .as_str()
            .is_some_and(|roles| roles.split(';').any(|r| r == "Gitlab Admin"));
        let email = contact["Email"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        let account = contact["Account"]["Account_ID_18__c"]
            .as_str()
            .unwrap_or_default();
        if admin
            && contact["Inactive_Contact__c"] == json!(false)
            && !email.is_empty()
            && accounts.contains(account)
        {
            by_email.entry(email).or_default().push(contact);
        }
    }
    by_email
}

fn users_by_email(h: &Harness) -> BTreeMap<String, Value> {
    h.sandbox()
        .zendesk(zendesk(Instance::Usgov))
        .users()
        .into_iter()
        .filter_map(|u| Some((u["email"].as_str()?.to_lowercase(), u)))
        .collect()
}

fn usgov_org_ids(h: &Harness) -> BTreeMap<String, Vec<u64>> {
    let mut orgs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for org in h.orgs(Instance::Usgov) {
        if let Some(id) = org["organization_fields"]["salesforce_id"]
            .as_str()
            .filter(|s| s.len() == 18)
        {
            orgs.entry(id.to_owned())
                .or_default()
                .push(org["id"].as_u64().unwrap());
        }
    }
    orgs
}

fn protected(email: &str) -> bool {
    email.ends_with("@gitlab.com")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_sync_makes_us_gov_end_users_the_admin_contacts_of_their_accounts() {
    let h = Harness::generated(60, 7).await;
    let before = users_by_email(&h);
    h.sandbox().reset_counters();
    let outcome = h.run("e2e-users").await;
    succeeded(&outcome);
    let after = users_by_email(&h);

    // The oracle: each unambiguous, unprotected admin contact of an account with one US Gov org
    // (after the US Gov org sync) is an end-user in that org, with its name, not flagged.
    let orgs = usgov_org_ids(&h);
    let accounts: BTreeSet<String> = orgs.keys().cloned().collect();
    let contacts = admin_contacts(&h, &accounts);
    let agents: BTreeSet<&String> = before
        .iter()
        .filter(|(_, u)| u["role"] != json!("end-user"))
        .map(|(email, _)| email)
        .collect();
    let mut expected = BTreeSet::new();
    for (email, records) in &contacts {
        let account = records[0]["Account"]["Account_ID_18__c"].as_str().unwrap();
        if records.len() > 1
            || protected(email)
            || agents.contains(email)
            || orgs[account].len() != 1
        {
            continue;
        }
        let user = after
            .get(email)
            .unwrap_or_else(|| panic!("no US Gov user for contact {email}"));
        assert_eq!(user["organization_id"], json!(orgs[account][0]), "{email}");
        assert_eq!(user["name"], records[0]["Name"], "{email}");
        assert_eq!(user["role"], json!("end-user"), "{email}");
        assert_eq!(user["user_fields"]["not_in_sfdc"], json!(false), "{email}");
        expected.insert(email.clone());
    }
    assert!(
        expected.len() >= 6,
        "the fixture has users to check: {expected:?}"
    );
    // Every other end-user the sync owns is flagged not_in_sfdc; ambiguous, protected and
    // agent users are exactly as they were.
    let ambiguous: BTreeSet<&String> = contacts
        .iter()
        .filter(|(_, c)| c.len() > 1)
        .map(|(e, _)| e)
        .collect();
    assert!(!ambiguous.is_empty(), "the fixture has an ambiguous email");
    for (email, user) in &after {
        if expected.contains(email) {
            continue;
        }
        if ambiguous.contains(email) || protected(email) || user["role"] != json!("end-user") {
            assert_eq!(Some(user), before.get(email), "{email} untouched");
        } else {
            assert_eq!(
                user["user_fields"]["not_in_sfdc"],
                json!(true),
                "{email} marked"
            );
        }
    }

    // The named cases.
    let email = |scenario: &str| h.scenario(scenario)[0].to_lowercase();
    let fedramp_org = orgs[&h.scenario("federal_exception")[0]][0];
    let moved = &after[&email("usgov_user_wrong_org")];
    assert_eq!(
        moved["organization_id"],
        json!(fedramp_org),
        "moved to the org of its account"
    );
    assert_ne!(
        before[&email("usgov_user_wrong_org")]["organization_id"],
        moved["organization_id"]
    );
    assert_eq!(
        after[&email("usgov_user_returning")]["user_fields"]["not_in_sfdc"],
        json!(false)
    );
    assert_eq!(
        after[&email("usgov_user_not_in_salesforce")]["user_fields"]["not_in_sfdc"],
        json!(true)
    );
    for untouched in [
        "usgov_user_already_marked",
        "usgov_user_in_sync",
        "usgov_agent_contact",
        "contact_protected",
    ] {
        let e = email(untouched);
        assert_eq!(after[&e], before[&e], "{untouched}");
    }
    assert_ne!(
        after[&email("usgov_user_stale_name")]["name"],
        before[&email("usgov_user_stale_name")]["name"]
    );
    for scenario in [
        "contact_inactive",
        "contact_not_admin",
        "contact_without_usgov_org",
    ] {
        for e in h.scenario(scenario) {
            assert!(
                !after.contains_key(&e.to_lowercase()),
                "{scenario} {e} has no user"
            );
        }
    }
    // The US Gov-only account's org was created by this run's org sync; its admins are in it.
    let usgov_only = &h.scenario("usgov_only")[0];
    let created_org = orgs[usgov_only][0];
    assert!(
        after
            .values()
            .any(|u| u["organization_id"] == json!(created_org))
    );

    let summary = outcome.summary.unwrap();
    let counts = |stage: &str, key: &str| summary.stages[stage].counts[key];
    assert_eq!(
        counts("gather_contacts", "ambiguous_emails"),
        ambiguous.len() as u64
    );
    assert_eq!(counts("gather_contacts", "protected"), 1);
    assert_eq!(counts("gather_users", "protected"), 2);
    assert_eq!(
        counts("compare_users", "held_back"),
        1,
        "the agent who is a contact"
    );
    let result: SyncResult = h
        .artifact("e2e-users", &artifacts::sync_result(SyncKind::Users))
        .await;
    assert_eq!(counts("sync_users", "created"), result.created.len() as u64);
    assert!(result.errors.is_empty(), "{:#?}", result.errors);
    let counters = h.sandbox().counters();
    println!(
        "user sync calls: GET users {}, create_many {}, update_many {}",
        counters.get("usgov GET /api/v2/users"),
        counters.get("usgov POST /api/v2/users/create_many"),
        counters.get("usgov PUT /api/v2/users/update_many"),
    );

    h.sandbox().reset_counters();
    succeeded(&h.run("e2e-users-again").await);
    assert_no_writes(&h);
}

/// The Salesforce contact record of `email` (case-insensitive).
fn contact_mut<'a>(objects: &'a mut BTreeMap<String, Vec<Value>>, email: &str) -> &'a mut Value {
    objects
        .get_mut("Contact")
        .unwrap()
        .iter_mut()
        .find(|c| {
            c["Email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .unwrap_or_else(|| panic!("no contact {email}"))
}

/// Moves contact `email` to the account `to` in Salesforce.
fn move_contact(h: &Harness, email: &str, to: &str) {
    h.sandbox().salesforce().with_objects_mut(|objects| {
        let contact = contact_mut(objects, email);
        contact["AccountId"] = json!(to);
        contact["Account"] = json!({"Account_ID_18__c": to});
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_moved_to_another_us_gov_account_moves_its_user() {
    let h = Harness::generated(60, 7).await;
    succeeded(&h.run("e2e-move-1").await);
    let email = h.scenario("usgov_user_in_sync")[0].clone();
    let to = h.scenario("usgov_fedramp")[0].clone();
    move_contact(&h, &email, &to);
    h.sandbox().reset_counters();
    succeeded(&h.run("e2e-move-2").await);
    let user = h
        .sandbox()
        .zendesk(zendesk(Instance::Usgov))
        .user_by_email(&email)
        .unwrap();
    assert_eq!(user["organization_id"], json!(usgov_org_ids(&h)[&to][0]));
    let counters = h.sandbox().counters();
    assert_eq!(counters.get("usgov PUT /api/v2/users/update_many"), 1);
    assert_eq!(
        h.zendesk_writes(Instance::Usgov),
        1,
        "one Update Many Users, nothing else"
    );
    assert_eq!(h.zendesk_writes(Instance::Global), 0);
}

/// Makes the contact record of `email` unreadable: one letter of its account id changes case.
/// Salesforce compares text case-insensitively, so the contact query still returns it, but the
/// id no longer matches its checksum and the gather rejects the record.
fn garble_contact_account(h: &Harness, email: &str) -> String {
    h.sandbox().salesforce().with_objects_mut(|objects| {
        let contact = contact_mut(objects, email);
        let id = contact["Account"]["Account_ID_18__c"]
            .as_str()
            .unwrap()
            .to_owned();
        let at = id[..15]
            .find(|c: char| c.is_ascii_alphabetic())
            .expect("an id with a letter");
        let mut garbled = id.clone().into_bytes();
        garbled[at] ^= 0x20;
        let garbled = String::from_utf8(garbled).unwrap();
        contact["Account"]["Account_ID_18__c"] = json!(garbled);
        id
    })
}

/// SPEC §10: a US Gov user whose Salesforce contact could not be read is held — neither updated
/// nor marked `not_in_sfdc` — and reported as held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_of_a_contact_record_that_cannot_be_read_is_held_not_marked() {
    let mut h = Harness::generated(60, 7).await;
    // One rejected contact among the world's few is over the default 1 %.
    h.world.settings_mut().sync.max_rejected_ratio = 0.5;
    // A user whose name is stale: a readable contact would rename it, no contact would mark it.
    let email = h.scenario("usgov_user_stale_name")[0].to_lowercase();
    let account = garble_contact_account(&h, &email);
    let before = users_by_email(&h);
    let run = "e2e-unreadable-contact";
    let outcome = h.run(run).await;
    succeeded(&outcome);
    let after = users_by_email(&h);
    assert_eq!(
        after[&email], before[&email],
        "{email}: neither updated nor marked"
    );
    assert_eq!(after[&email]["user_fields"]["not_in_sfdc"], json!(false));

    // Reported: the record as rejected, its user as held with the reason.
    let contacts: SalesforceContacts = h.artifact(run, artifacts::CONTACTS).await;
    assert_eq!(contacts.rejected.len(), 1, "{:#?}", contacts.rejected);
    assert!(!contacts.contacts.iter().any(|c| c.email == email));
    let held = contacts
        .held
        .iter()
        .find(|c| c.email == email)
        .unwrap_or_else(|| panic!("{email} held: {:#?}", contacts.held));
    assert!(held.reason.contains("could not be read"), "{}", held.reason);
    let marks: Value = h
        .artifact(run, &artifacts::not_in_sync(SyncKind::Users))
        .await;
    let id = &after[&email]["id"];
    assert!(
        !marks["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| &m["id"] == id),
        "{marks:#}"
    );
    let summary = outcome.summary.unwrap();
    assert_eq!(summary.stages["gather_contacts"].counts["rejected"], 1);
    assert!(summary.stages["gather_contacts"].counts["held"] >= 1);
    // The other contacts of its account are synced as usual.
    let in_sync = h.scenario("usgov_user_in_sync")[0].to_lowercase();
    assert_eq!(
        after[&in_sync]["organization_id"],
        json!(usgov_org_ids(&h)[&account][0])
    );

    // `zdsync explain` holds it by the same rule as the compare, and says why.
    let store = h.data.store();
    let keys = zdsync::store::RunKeys::new(run).unwrap();
    let sources = explain::Sources {
        store: store.as_ref(),
        run: &keys,
        settings: h.world.settings(),
        http: &reqwest::Client::new(),
    };
    let e = explain::explain(&sources, &explain::Subject::parse(&email).unwrap())
        .await
        .unwrap();
    assert!(
        matches!(&e.contact, Some(explain::ContactStory::Held { reason, .. }) if reason.contains("could not be read")),
        "{:?}",
        e.contact
    );
    let story = e.syncs.iter().find(|s| s.sync == SyncKind::Users).unwrap();
    assert!(
        story.held.as_deref().unwrap().starts_with("held: "),
        "{:?}",
        story.held
    );
    assert!(
        matches!(&story.compare[..], [explain::Decision::Left { .. }]),
        "{:?}",
        story.compare
    );
}

/// SPEC §10 for the partner and user syncs: a Salesforce answer missing most records trips
/// the sync's own guard; creates and updates still go, marks wait for the operator's allowance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_and_user_guards_trip_and_an_allowance_lets_exactly_that_many_through() {
    let mut h = Harness::generated(60, 7).await;
    succeeded(&h.run("e2e-guards-base").await);
    // A small instance: the guard's minimum, not its share, sets the limit.
    h.world.settings_mut().sync.deletion_guard_min = 2;
    let alliance = h.scenario("partner_alliance")[0].clone();

    // Partners: Salesforce loses every partner but the alliance account, whose owner changes,
    // and gains a new Open partner.
    h.sandbox().salesforce().with_objects_mut(|objects| {
        let accounts = objects.get_mut("Account").unwrap();
        let mut newcomer = accounts
            .iter()
            .find(|a| a["Account_ID_18__c"] == json!(alliance))
            .unwrap()
            .clone();
        accounts
            .retain(|a| a["Type"] != json!("Partner") || a["Account_ID_18__c"] == json!(alliance));
        for a in accounts.iter_mut() {
            if a["Account_ID_18__c"] == json!(alliance) {
                a["Account_Owner_Calc__c"] = json!("New Alliance Owner");
            }
        }
        let id = zdsync::model::SalesforceId::parse("0014M00009ZzZzZ")
            .unwrap()
            .to_string();
        newcomer["Id"] = json!(id);
        newcomer["Account_ID_18__c"] = json!(id);
        newcomer["Name"] = json!("Newcomer Partner LLC");
        newcomer["Partner_Track__c"] = json!("Open");
        accounts.push(newcomer);
    });
    let (cause, result) = trip(&h, "e2e-guards-partners", SyncKind::Partners).await;
    // Every partner org but the alliance one: open, select, returning and the one created by the
    // base run (partner_new).
    let gone: BTreeSet<String> = [
        "partner_open",
        "partner_select",
        "partner_returning",
        "partner_new",
    ]
    .iter()
    .flat_map(|s| h.scenario(s))
    .collect();
    let listed: ChangeSet<Value> = h
        .artifact(
            "e2e-guards-partners",
            &artifacts::not_in_sync(SyncKind::Partners),
        )
        .await;
    let listed: BTreeSet<String> = listed
        .items
        .iter()
        .map(|m| m["salesforce_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, gone);
    let marks = gone.len();
    assert!(
        cause.contains(&format!("partners: {marks} orgs would be marked")),
        "{cause}"
    );
    assert!(
        cause.contains(r#"{"allow_deletions": {"partners""#),
        "{cause}"
    );
    assert!(result.marked.is_empty());
    assert_eq!(result.created.len(), 1, "the new partner is created");
    assert_eq!(
        result.updated.len(),
        1,
        "the alliance partner's owner is updated"
    );
    assert_eq!(
        one_org(&h, &alliance)["organization_fields"]["account_owner"],
        json!("New Alliance Owner")
    );
    // US Gov finished its own branch.
    assert!(h.artifact_exists(
        "e2e-guards-partners",
        &artifacts::sync_result(SyncKind::Users)
    ));

    // One short of the marks still trips.
    let short = h
        .run_with(
            "e2e-guards-partners-short",
            false,
            BTreeMap::from([(SyncKind::Partners, marks - 1)]),
        )
        .await;
    assert_eq!(short.record.error.as_deref(), Some("DeletionGuardTripped"));
    allow(&h, "e2e-guards-partners-allowed", SyncKind::Partners, marks).await;

    // Users: Salesforce loses every contact but one.
    let keep = h.scenario("usgov_user_in_sync")[0].clone();
    h.sandbox().salesforce().with_objects_mut(|objects| {
        objects
            .get_mut("Contact")
            .unwrap()
            .retain(|c| c["Email"] == json!(keep));
    });
    let not_in_sync: ChangeSet<Value> = h
        .artifact("e2e-guards-base", &artifacts::not_in_sync(SyncKind::Users))
        .await;
    assert!(not_in_sync.items.len() <= 2, "the base run marks little");
    let (cause, result) = trip(&h, "e2e-guards-users", SyncKind::Users).await;
    let not_in_sync: ChangeSet<Value> = h
        .artifact("e2e-guards-users", &artifacts::not_in_sync(SyncKind::Users))
        .await;
    let marks = not_in_sync.items.len();
    assert!(marks > 2);
    assert!(
        cause.contains(&format!("users: {marks} users would be marked")),
        "{cause}"
    );
    assert!(result.marked.is_empty());
    let users = users_by_email(&h);
    assert!(
        users
            .values()
            .all(|u| u["user_fields"]["not_in_sfdc"] != json!(true)
                || u["email"] == json!("marked.admin@departed.example.com")
                || u["email"] == json!("former.admin@departed.example.com")),
        "nothing new is marked"
    );
    allow(&h, "e2e-guards-users-allowed", SyncKind::Users, marks).await;
}

/// Runs and expects `sync`'s deletion guard to fail the run: the error and its sync result.
async fn trip(h: &Harness, run: &str, sync: SyncKind) -> (String, SyncResult) {
    let tripped = h.run(run).await;
    assert_eq!(
        tripped.record.error.as_deref(),
        Some("DeletionGuardTripped")
    );
    let state = match sync {
        SyncKind::Partners => "Instances[0].SyncPartners",
        _ => "Instances[1].SyncUsers",
    };
    assert!(tripped.record.failed_states().contains(&state), "{state}");
    let result: SyncResult = h.artifact(run, &artifacts::sync_result(sync)).await;
    assert!(result.deletion_guard.as_ref().unwrap().is_tripped());
    (tripped.record.cause.unwrap_or_default(), result)
}

/// Runs with an allowance of exactly `marks` for `sync`; every mark goes through.
async fn allow(h: &Harness, run: &str, sync: SyncKind, marks: usize) {
    succeeded(
        &h.run_with(run, false, BTreeMap::from([(sync, marks)]))
            .await,
    );
    let result: SyncResult = h.artifact(run, &artifacts::sync_result(sync)).await;
    assert_eq!(result.marked.len(), marks);
}

/// SPEC §8: one sold-to email on two orgs created in the same run gets its user once, in the
/// first org by Salesforce id; the other org is left without it and named in the one digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sold_to_email_on_two_new_orgs_is_created_once_in_the_first() {
    let h = Harness::generated(60, 7).await;
    let mut new = h.scenario("global_new_customer");
    new.sort();
    let (first, second) = (new[0].clone(), new[1].clone());
    let shared = "shared.buyer@two-new-orgs.example";
    for id in [&first, &second] {
        h.edit_account(id, |a| {
            a["Latest_Sold_To_Contact__r"] = json!({"Name": "Shared Buyer", "Email": shared});
            for sub in a["Zuora__Subscriptions__r"].as_array_mut().unwrap() {
                sub["Sold_To_Email__c"] = json!(shared);
            }
        });
    }
    succeeded(&h.run("e2e-shared-sold-to").await);
    let global = h.sandbox().zendesk(zendesk(Instance::Global));
    let users = h.users_with_email(Instance::Global, shared);
    assert_eq!(users.len(), 1, "{users:#?}");
    let first_org = one_org(&h, &first)["id"].clone();
    let second_org = one_org(&h, &second)["id"].clone();
    assert_eq!(users[0]["organization_id"], first_org);
    let in_second = global
        .organization_memberships()
        .iter()
        .any(|m| m["organization_id"] == second_org && m["user_id"] == users[0]["id"]);
    assert!(!in_second, "a user in another org is left alone");

    let result: SyncResult = h
        .artifact(
            "e2e-shared-sold-to",
            &artifacts::sync_result(SyncKind::Global),
        )
        .await;
    assert!(
        result
            .errors
            .iter()
            .all(|e| e.action != zdsync::model::SyncAction::AssociateUser),
        "{:#?}",
        result.errors
    );
    let without: Vec<&str> = result
        .without_contacts
        .iter()
        .map(|o| o.salesforce_id.as_str())
        .collect();
    assert!(
        without.contains(&second.as_str()) && !without.contains(&first.as_str()),
        "{without:?}"
    );
    let messages = h.sandbox().slack_messages();
    assert_eq!(messages.len(), 1, "one digest per sync run");
    let text = messages[0].text.clone().unwrap();
    assert!(text.contains(&second) && !text.contains(&first), "{text}");
    assert!(
        text.contains(&format!(
            "{} new Zendesk global organization",
            result.without_contacts.len()
        )),
        "{text}"
    );
    // The digest says where the run's report will be: the store and the run's prefix.
    let report = h.data_path().join("runs/e2e-shared-sold-to/report.md");
    assert!(
        text.ends_with(&format!(
            "The run's report will be at {} when the run ends.",
            report.display()
        )),
        "{text}"
    );
    assert!(report.is_file(), "and it is there when the run has ended");
}

/// SPEC §8: an account without bulk user import answers Create Many Users with 403; each user
/// is then created with its own Create User call, and the result says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bulk_user_import_each_user_is_created_with_its_own_call() {
    let h = Harness::generated(60, 7).await;
    h.sandbox()
        .zendesk(zendesk(Instance::Usgov))
        .set_bulk_user_import(false);
    h.sandbox().reset_counters();
    succeeded(&h.run("e2e-no-bulk-users").await);
    let result: SyncResult = h
        .artifact(
            "e2e-no-bulk-users",
            &artifacts::sync_result(SyncKind::Users),
        )
        .await;
    assert!(result.created.len() >= 2, "{:#?}", result.created);
    assert!(result.errors.is_empty(), "{:#?}", result.errors);
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.contains("bulk user import is disabled")),
        "{:#?}",
        result.warnings
    );
    let counters = h.sandbox().counters();
    assert_eq!(
        counters.get("usgov POST /api/v2/users"),
        result.created.len() as u64,
        "one Create User per user"
    );
    for created in &result.created {
        let user = h
            .sandbox()
            .zendesk(zendesk(Instance::Usgov))
            .user_by_email(&created.key)
            .unwrap();
        assert_eq!(Some(user["id"].as_u64().unwrap()), created.id);
    }
}
