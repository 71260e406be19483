use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Value, json};
use zdsync_sandbox::{Fixture, GeneratorOptions, ZendeskInstance};

use crate::support::Harness;

fn options(accounts: usize, seed: u64) -> GeneratorOptions {
    GeneratorOptions::new(
        accounts,
        seed,
        NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"),
    )
}

/// apis.md B4, restated here so the test does not trust the generator's own code.
fn has_valid_checksum(id: &str) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    if id.len() != 18 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let expected: String = id.as_bytes()[..15]
        .chunks(5)
        .map(|chunk| {
            let bits = (0..5)
                .filter(|i| chunk[*i].is_ascii_uppercase())
                .fold(0, |acc, i| acc | (1 << i));
            ALPHABET[bits] as char
        })
        .collect();
    id[15..] == expected
}

fn accounts(fixture: &Fixture) -> &Vec<Value> {
    &fixture.salesforce.objects["Account"]
}

#[tokio::test]
async fn generated_fixture_is_deterministic_and_round_trips_through_a_file() {
    let a = Fixture::generate(&options(40, 11));
    let b = Fixture::generate(&options(40, 11));
    assert_eq!(a.to_json_pretty(), b.to_json_pretty());
    let dir = std::env::temp_dir().join(format!("zdsync-sandbox-fixture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("fixture.json");
    std::fs::write(&path, a.to_json_pretty()).expect("write");
    let read = Fixture::from_path(&path).expect("reads back");
    std::fs::remove_dir_all(&dir).expect("cleanup");
    assert_eq!(read, a);
}

#[tokio::test]
async fn generated_fixture_has_the_mix_the_sync_must_handle() {
    let fixture = Fixture::generate(&options(120, 5));
    let info = fixture.generated.as_ref().expect("generator info");
    for scenario in [
        "federal_exception",
        "usgov_only",
        "usgov_fedramp",
        "partner_open",
        "partner_select",
        "partner_alliance",
        "partner_new",
        "partner_lapsed",
        "expired_within_15_days",
        "expired_over_15_days",
        "expired_over_3_years",
        "no_subscriptions",
        "shared_name",
        "salesforce_id_on_two_orgs",
        "sold_to_user_without_org",
        "sold_to_user_in_other_org",
        "unmapped_charge",
        "unmanaged_orgs",
        "global_account_gone",
        "global_account_gone_already_marked",
        "usgov_account_gone",
        "global_in_sync",
        "global_new_customer",
        "usgov_user_in_sync",
        "usgov_user_not_in_salesforce",
        "contact_email_shared",
        "protected_users",
    ] {
        assert!(
            info.scenarios.contains_key(scenario),
            "missing scenario {scenario}"
        );
    }
    assert!(
        info.scenarios
            .keys()
            .any(|k| k.starts_with("global_stale_"))
    );
    assert_eq!(
        info.alliance_account_id,
        info.scenarios["partner_alliance"][0]
    );

    let accounts = accounts(&fixture);
    assert_eq!(accounts.len(), 120);
    assert!(
        accounts
            .iter()
            .all(|a| has_valid_checksum(a["Id"].as_str().expect("Id")))
    );
    assert!(accounts.iter().all(|a| a["Id"] == a["Account_ID_18__c"]));
    let child_ids = accounts.iter().flat_map(|a| {
        a["Zuora__R00N40000001lGjTEAU__r"]
            .as_array()
            .expect("charges")
            .iter()
            .map(|c| &c["Id"])
    });
    assert!(
        child_ids
            .into_iter()
            .all(|id| has_valid_checksum(id.as_str().expect("charge Id")))
    );

    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for account in accounts {
        *by_name
            .entry(account["Name"].as_str().expect("Name"))
            .or_default() += 1;
    }
    assert_eq!(
        by_name.values().filter(|n| **n > 1).count(),
        1,
        "exactly one shared name"
    );
    let null_lookup = accounts
        .iter()
        .any(|a| a["Solutions_Architect_Lookup__r"].is_null());
    let null_hold = accounts.iter().any(|a| a["Support_Hold__c"].is_null());
    let no_children = accounts
        .iter()
        .any(|a| a["Zuora__Subscriptions__r"] == json!([]));
    assert!(null_lookup && null_hold && no_children);
    assert!(
        accounts
            .iter()
            .any(|a| a["Support_Instance__c"] == json!("federal-support"))
    );
    let types: Vec<&str> = accounts
        .iter()
        .map(|a| a["Type"].as_str().expect("Type"))
        .collect();
    for expected in ["Customer", "Former Customer", "Partner", "Prospect"] {
        assert!(types.contains(&expected), "{expected}");
    }

    let contacts = &fixture.salesforce.objects["Contact"];
    assert!(
        contacts
            .iter()
            .any(|c| c["Inactive_Contact__c"] == json!(true))
    );
    assert!(contacts.iter().any(|c| c["Email"].is_null()));
    assert!(
        contacts
            .iter()
            .any(|c| c["Role__c"] == json!("Gitlab Admin;Billing"))
    );
    let mut emails: BTreeMap<String, usize> = BTreeMap::new();
    for email in contacts.iter().filter_map(|c| c["Email"].as_str()) {
        *emails.entry(email.to_lowercase()).or_default() += 1;
    }
    assert!(
        emails.values().any(|n| *n > 1),
        "two contacts share an email"
    );

    let global_orgs = &fixture.zendesk.global.organizations;
    let mut by_salesforce_id: BTreeMap<&str, usize> = BTreeMap::new();
    for org in global_orgs {
        if let Some(id) = org["organization_fields"]["salesforce_id"].as_str() {
            *by_salesforce_id.entry(id).or_default() += 1;
        }
    }
    assert_eq!(
        by_salesforce_id.values().filter(|n| **n > 1).count(),
        1,
        "one conflict"
    );
    let partner_types: Vec<&Value> = global_orgs
        .iter()
        .map(|o| &o["organization_fields"]["account_type"])
        .collect();
    for kind in [
        "alliance_partner",
        "open_partner",
        "select_partner",
        "customer",
    ] {
        assert!(partner_types.contains(&&json!(kind)), "{kind}");
    }
    assert!(
        global_orgs
            .iter()
            .any(|o| o["organization_fields"]["mark_for_deletion"] == json!(true))
    );
    assert!(!fixture.zendesk.usgov.organizations.is_empty());
    assert!(
        fixture
            .zendesk
            .usgov
            .users
            .iter()
            .any(|u| u["role"] == json!("agent"))
    );
}

#[tokio::test]
async fn generated_fixture_loads_into_the_sandbox() {
    let fixture = Fixture::generate(&options(60, 9));
    let orgs = fixture.zendesk.global.organizations.len();
    let users = fixture.zendesk.usgov.users.len();
    let h = Harness::start(fixture).await;
    let listed = h.global().get("/api/v2/organizations?page[size]=100").await;
    assert_eq!(
        listed.body["organizations"].as_array().map(Vec::len),
        Some(orgs)
    );
    assert_eq!(
        h.sandbox.zendesk(ZendeskInstance::Usgov).users().len(),
        users
    );
    let dump = h.sandbox.dump_state();
    assert_eq!(
        dump["salesforce"]["objects"]["Account"]
            .as_array()
            .map(Vec::len),
        Some(60)
    );
}
