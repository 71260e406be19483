//! Change tracking: stamps, the recycle bin, merges, and queries over them.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn account(id: &str, subs: &[&str]) -> Value {
    let subscriptions: Vec<Value> = subs
        .iter()
        .map(|s| {
            json!({"Id": s, "Name": s, "Zuora__Status__c": "Active",
                        "Zuora__SubscriptionEndDate__c": "2030-01-01"})
        })
        .collect();
    let charges: Vec<Value> = subs
        .iter()
        .map(|s| {
            json!({"Id": format!("{s}C"), "Name": "C", "Zuora__Subscription__c": s,
                        "Subscription_Status__c": "Active",
                        "Zuora__EffectiveEndDate__c": "2030-01-01"})
        })
        .collect();
    json!({
        "Id": id, "Account_ID_18__c": id, "Name": format!("Account {id}"), "Type": "Customer",
        "Solutions_Architect_Lookup__r": {"Name": "Sam"},
        "Latest_Sold_To_Contact__r": {"Name": "Sol", "Email": "sol@example.com"},
        "Zuora__Subscriptions__r": subscriptions,
        "Zuora__R00N40000001lGjTEAU__r": charges,
    })
}

fn contact(id: &str, account: &str) -> Value {
    json!({"Id": id, "Name": format!("Contact {id}"), "Email": format!("{id}@example.com"),
           "AccountId": account, "Account": {"Account_ID_18__c": account},
           "Inactive_Contact__c": false, "Role__c": "Gitlab Admin"})
}

fn org_with(options: SalesforceOptions) -> SalesforceState {
    let fixture = SalesforceFixture {
        objects: BTreeMap::from([
            (
                "Account".to_owned(),
                vec![
                    account("001A", &["S1", "S2"]),
                    account("001B", &["S3"]),
                    account("001C", &[]),
                ],
            ),
            (
                "Contact".to_owned(),
                vec![contact("003A", "001A"), contact("003B", "001B")],
            ),
        ]),
    };
    SalesforceState::new(fixture, options)
}

fn org() -> SalesforceState {
    org_with(SalesforceOptions::default())
}

fn select(state: &SalesforceState, soql: &str, include_deleted: bool) -> Vec<Value> {
    let page = state
        .query(&QueryRequest {
            soql,
            api_version: "v62.0",
            batch_size: 2000,
            include_deleted,
        })
        .unwrap_or_else(|e| panic!("{soql}: {e:?}"));
    assert_eq!(page["done"], true);
    page["records"].as_array().unwrap().clone()
}

fn ids(records: &[Value]) -> Vec<&str> {
    let mut ids: Vec<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// `SystemModstamp > <literal>` for `at`, written as a SOQL datetime literal.
fn after(at: DateTime<Utc>) -> String {
    format!("SystemModstamp > {}", at.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
}

fn stamp_of(state: &SalesforceState, object: &str, id: &str) -> String {
    state.record(object, id).unwrap()["SystemModstamp"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An hour passes, `t` is taken, another hour passes: whatever changes next is after `t`, what
/// the org held before is before it.
fn an_hour_between(state: &SalesforceState) -> DateTime<Utc> {
    state.advance_clock(HOUR);
    let t = state.now();
    state.advance_clock(HOUR);
    t
}

#[test]
fn every_record_and_nested_row_is_stamped_at_load() {
    let state = org();
    let now = changes::format_stamp(state.now());
    let accounts = select(
        &state,
        "SELECT Id, SystemModstamp, IsDeleted, (SELECT Id, SystemModstamp, IsDeleted, \
         Zuora__Account__c FROM Zuora__Subscriptions__r) FROM Account",
        false,
    );
    assert_eq!(accounts.len(), 3);
    let stamp = accounts[0]["SystemModstamp"].as_str().unwrap();
    assert!(stamp <= now.as_str(), "{stamp} {now}");
    assert_eq!(stamp.len(), "2026-12-06T06:00:00.000+0000".len());
    assert!(stamp.ends_with("+0000"));
    assert_eq!(accounts[0]["IsDeleted"], false);
    let sub = &state.record("Zuora__Subscription__c", "S1").unwrap();
    assert_eq!(sub["SystemModstamp"], stamp);
    assert_eq!(sub["IsDeleted"], false);
    assert_eq!(sub["Zuora__Account__c"], "001A");
}

#[test]
fn initial_modstamp_stamps_unstamped_fixture_records_only() {
    let at: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
    let mut stamped = account("001S", &["S9"]);
    stamped["SystemModstamp"] = json!("2026-11-01T10:00:00.000+0000");
    let state = SalesforceState::new(
        SalesforceFixture {
            objects: BTreeMap::from([("Account".to_owned(), vec![account("001A", &[]), stamped])]),
        },
        SalesforceOptions {
            initial_modstamp: Some(at),
            ..SalesforceOptions::default()
        },
    );
    assert_eq!(
        stamp_of(&state, "Account", "001A"),
        "2026-12-01T00:00:00.000+0000"
    );
    assert_eq!(
        stamp_of(&state, "Account", "001S"),
        "2026-11-01T10:00:00.000+0000"
    );
    assert_eq!(
        stamp_of(&state, "Zuora__Subscription__c", "S9"),
        "2026-12-01T00:00:00.000+0000"
    );
    let changed = select(
        &state,
        "SELECT Id FROM Account WHERE SystemModstamp > 2026-11-15T00:00:00Z",
        false,
    );
    assert_eq!(ids(&changed), ["001A"]);
}

#[test]
fn an_own_field_change_moves_the_stamp_and_a_lookup_change_does_not() {
    let state = org();
    let t = an_hour_between(&state);
    state.with_objects_mut(|objects| {
        let accounts = objects.get_mut("Account").unwrap();
        accounts[0]["Name"] = json!("Renamed");
        // What lookups show is another record's field: no stamp moves.
        accounts[1]["Solutions_Architect_Lookup__r"]["Name"] = json!("Someone Else");
        accounts[1]["Latest_Sold_To_Contact__r"] = json!({"Name": "New", "Email": "n@x.com"});
        objects.get_mut("Contact").unwrap()[1]["Account"]["Account_ID_18__c"] = json!("001Z");
    });
    let changed = select(
        &state,
        &format!("SELECT Id FROM Account WHERE {}", after(t)),
        false,
    );
    assert_eq!(ids(&changed), ["001A"]);
    assert!(
        select(
            &state,
            &format!("SELECT Id FROM Contact WHERE {}", after(t)),
            false
        )
        .is_empty()
    );
    // Nothing changed: nothing moves.
    let before = stamp_of(&state, "Account", "001A");
    state.advance_clock(HOUR);
    state.with_objects_mut(|_| ());
    assert_eq!(stamp_of(&state, "Account", "001A"), before);
}

#[test]
fn a_child_change_moves_the_childs_stamp_not_the_accounts() {
    let state = org();
    let t = an_hour_between(&state);
    state.with_objects_mut(|objects| {
        let a = &mut objects.get_mut("Account").unwrap()[0];
        a["Zuora__Subscriptions__r"][1]["Zuora__Status__c"] = json!("Cancelled");
        a["Zuora__R00N40000001lGjTEAU__r"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Id": "NEWC", "Name": "New charge"}));
        objects.get_mut("Contact").unwrap()[0]["Email"] = json!("changed@example.com");
    });
    let accounts = select(
        &state,
        &format!("SELECT Id FROM Account WHERE {}", after(t)),
        false,
    );
    assert!(accounts.is_empty(), "{accounts:?}");
    let subs = select(
        &state,
        &format!(
            "SELECT Id, Zuora__Account__c FROM Zuora__Subscription__c WHERE {}",
            after(t)
        ),
        false,
    );
    assert_eq!(ids(&subs), ["S2"]);
    assert_eq!(subs[0]["Zuora__Account__c"], "001A");
    let charges = select(
        &state,
        &format!(
            "SELECT Id, Zuora__Account__c FROM Zuora__SubscriptionProductCharge__c WHERE {}",
            after(t)
        ),
        false,
    );
    assert_eq!(ids(&charges), ["NEWC"]);
    assert_eq!(charges[0]["Zuora__Account__c"], "001A");
    let contacts = select(
        &state,
        &format!("SELECT Id FROM Contact WHERE {}", after(t)),
        false,
    );
    assert_eq!(ids(&contacts), ["003A"]);
}

#[test]
fn a_removed_record_is_seen_by_query_all_only() {
    let state = org();
    let t = an_hour_between(&state);
    state.with_objects_mut(|objects| {
        objects
            .get_mut("Account")
            .unwrap()
            .retain(|a| a["Id"] != "001B");
        let a = &mut objects.get_mut("Account").unwrap()[0];
        a["Zuora__Subscriptions__r"]
            .as_array_mut()
            .unwrap()
            .remove(0);
    });
    let live = select(&state, "SELECT Id FROM Account", false);
    assert_eq!(ids(&live), ["001A", "001C"]);
    let all = select(
        &state,
        &format!("SELECT Id, IsDeleted FROM Account WHERE {}", after(t)),
        true,
    );
    assert_eq!(
        all,
        vec![json!({
        "attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/001B"},
        "Id": "001B", "IsDeleted": true})]
    );
    let deleted = select(
        &state,
        "SELECT Id, Zuora__Account__c FROM Zuora__Subscription__c WHERE IsDeleted = true",
        true,
    );
    // S1 was removed from 001A; S3 went with 001B.
    assert_eq!(ids(&deleted), ["S1", "S3"]);
    assert!(
        select(
            &state,
            "SELECT Id FROM Zuora__Subscription__c WHERE IsDeleted = true",
            false
        )
        .is_empty()
    );
    let live_subs = select(&state, "SELECT Id FROM Zuora__Subscription__c", false);
    assert_eq!(ids(&live_subs), ["S2"]);
    // Putting it back takes it out of the bin.
    state.with_objects_mut(|objects| {
        objects
            .get_mut("Account")
            .unwrap()
            .push(account("001B", &["S3"]));
    });
    assert!(
        select(
            &state,
            "SELECT Id FROM Account WHERE IsDeleted = true",
            true
        )
        .is_empty()
    );
}

#[test]
fn delete_and_undelete() {
    let state = org();
    let t = an_hour_between(&state);
    state.delete("Account", "001B").unwrap();
    state
        .delete("Zuora__SubscriptionProductCharge__c", "S1C")
        .unwrap();
    assert_eq!(
        state.delete("Account", "001B").unwrap_err(),
        RecordError::NotFound {
            object: "Account".into(),
            id: "001B".into()
        }
    );
    // The account's contact went with it.
    assert_eq!(
        ids(&select(&state, "SELECT Id FROM Contact", false)),
        ["003A"]
    );
    let deleted = select(
        &state,
        &format!(
            "SELECT Id FROM Contact WHERE IsDeleted = true AND {}",
            after(t)
        ),
        true,
    );
    assert_eq!(ids(&deleted), ["003B"]);
    let charges = select(
        &state,
        "SELECT Id FROM Zuora__SubscriptionProductCharge__c WHERE IsDeleted = true",
        true,
    );
    assert_eq!(ids(&charges), ["S1C", "S3C"]);
    state.advance_clock(HOUR);
    let t2 = state.now();
    state.advance_clock(HOUR);
    state.undelete("Account", "001B").unwrap();
    state
        .undelete("Zuora__SubscriptionProductCharge__c", "S1C")
        .unwrap();
    let back = select(
        &state,
        &format!(
            "SELECT Id FROM Account WHERE IsDeleted = false AND {}",
            after(t2)
        ),
        true,
    );
    assert_eq!(ids(&back), ["001B"]);
    assert_eq!(
        ids(&select(&state, "SELECT Id FROM Contact", false)),
        ["003A", "003B"]
    );
    assert_eq!(
        ids(&select(
            &state,
            "SELECT Id FROM Zuora__SubscriptionProductCharge__c",
            false
        )),
        ["S1C", "S2C", "S3C"]
    );
    assert!(state.recycle_bin().is_empty(), "{:?}", state.recycle_bin());
}

#[test]
fn a_merge_deletes_the_losers_and_moves_their_children() {
    let state = org();
    let t = an_hour_between(&state);
    state.merge_accounts("001A", &["001B"]).unwrap();
    let losers = select(
        &state,
        "SELECT Id, IsDeleted, MasterRecordId FROM Account WHERE IsDeleted = true",
        true,
    );
    assert_eq!(losers.len(), 1);
    assert_eq!(losers[0]["Id"], "001B");
    assert_eq!(losers[0]["MasterRecordId"], "001A");
    assert!(select(&state, "SELECT Id FROM Account WHERE Id = '001B'", false).is_empty());
    let moved = select(
        &state,
        &format!(
            "SELECT Id, Zuora__Account__c FROM Zuora__Subscription__c WHERE {}",
            after(t)
        ),
        false,
    );
    assert_eq!(ids(&moved), ["S3"]);
    assert_eq!(moved[0]["Zuora__Account__c"], "001A");
    let charges = select(
        &state,
        "SELECT Id FROM Zuora__SubscriptionProductCharge__c WHERE Zuora__Account__c = '001A'",
        false,
    );
    assert_eq!(ids(&charges), ["S1C", "S2C", "S3C"]);
    let contacts = select(
        &state,
        &format!(
            "SELECT Id, AccountId, Account.Account_ID_18__c FROM Contact WHERE {}",
            after(t)
        ),
        false,
    );
    assert_eq!(ids(&contacts), ["003B"]);
    assert_eq!(contacts[0]["AccountId"], "001A");
    assert_eq!(contacts[0]["Account"]["Account_ID_18__c"], "001A");
    let master = select(
        &state,
        &format!("SELECT Id FROM Account WHERE {}", after(t)),
        false,
    );
    assert_eq!(ids(&master), ["001A"]);
    // The master's nested rows come with it.
    let subs = select(
        &state,
        "SELECT Id, (SELECT Id FROM Zuora__Subscriptions__r) FROM Account WHERE Id = '001A'",
        false,
    );
    assert_eq!(
        subs[0]["Zuora__Subscriptions__r"]["records"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(matches!(
        state.merge_accounts("001A", &["001B"]),
        Err(RecordError::NotFound { .. })
    ));
    assert!(matches!(
        state.merge_accounts("001A", &["001A"]),
        Err(RecordError::Invalid(_))
    ));
}

#[test]
fn upsert_and_patch_track_changes() {
    let state = org();
    let t = an_hour_between(&state);
    // Same own fields, no children in the body: nothing changes, the rows stay.
    let mut same = account("001C", &[]);
    same.as_object_mut()
        .unwrap()
        .remove("Zuora__Subscriptions__r");
    state.upsert("Account", same).unwrap();
    state
        .upsert(
            "Account",
            json!({"Id": "001N", "Name": "New", "Type": "Customer"}),
        )
        .unwrap();
    state
        .patch(
            "Zuora__Subscription__c",
            "S3",
            &json!({"Zuora__Account__c": "001C"}),
        )
        .unwrap();
    state
        .upsert(
            "Zuora__Subscription__c",
            json!({"Id": "S4", "Name": "S4", "Zuora__Account__c": "001A"}),
        )
        .unwrap();
    state
        .patch(
            "Account",
            "001A",
            &json!({"Solutions_Architect_Lookup__r": {"Name": "X"}}),
        )
        .unwrap();
    let changed = select(
        &state,
        &format!("SELECT Id FROM Account WHERE {}", after(t)),
        false,
    );
    assert_eq!(ids(&changed), ["001N"]);
    let subs = select(
        &state,
        &format!(
            "SELECT Id, Zuora__Account__c FROM Zuora__Subscription__c WHERE {}",
            after(t)
        ),
        false,
    );
    assert_eq!(ids(&subs), ["S3", "S4"]);
    assert_eq!(
        state.record("Zuora__Subscription__c", "S3").unwrap()["Zuora__Account__c"],
        "001C"
    );
    assert!(matches!(
        state.upsert("Account", json!({"Name": "no id"})),
        Err(RecordError::Invalid(_))
    ));
    assert!(matches!(
        state.patch("Account", "nope", &json!({"Name": "x"})),
        Err(RecordError::NotFound { .. })
    ));
    assert!(matches!(
        state.upsert(
            "Zuora__Subscription__c",
            json!({"Id": "S5", "Zuora__Account__c": "nope"})
        ),
        Err(RecordError::NotFound { .. })
    ));
}

#[test]
fn datetime_literals_compare_by_instant() {
    let state = org();
    state.with_objects_mut(|objects| {
        objects.get_mut("Account").unwrap()[0]["SystemModstamp"] =
            json!("2026-12-06T06:00:00.000+0000");
    });
    let hit = |clause: &str| {
        ids(&select(
            &state,
            &format!("SELECT Id FROM Account WHERE Id = '001A' AND {clause}"),
            false,
        ))
        .len()
            == 1
    };
    for (clause, expected) in [
        ("SystemModstamp = 2026-12-06T06:00:00Z", true),
        ("SystemModstamp = 2026-12-06T06:00:00.000Z", true),
        ("SystemModstamp = 2026-12-06T06:00:00+00:00", true),
        ("SystemModstamp = 2026-12-05T22:00:00-08:00", true),
        ("SystemModstamp = 2026-12-06T07:00:00+01:00", true),
        ("SystemModstamp > 2026-12-05T22:00:00-08:00", false),
        ("SystemModstamp >= 2026-12-05T22:00:00-08:00", true),
        ("SystemModstamp > 2026-12-05T21:59:59.999-08:00", true),
        ("SystemModstamp < 2026-12-06T06:00:00.001Z", true),
        ("SystemModstamp <= 2026-12-06T06:00:00Z", true),
        ("SystemModstamp < 2026-12-06T06:00:00Z", false),
        // By instant, not by text: 07:00+01:00 sorts after as text but is the same instant.
        ("SystemModstamp < 2026-12-06T06:30:00+01:00", false),
    ] {
        assert_eq!(hit(clause), expected, "{clause}");
    }
    let error = state
        .query(&QueryRequest {
            soql: "SELECT Id FROM Account WHERE SystemModstamp > 2026-12-06T06:00:00",
            api_version: "v62.0",
            batch_size: 2000,
            include_deleted: false,
        })
        .unwrap_err();
    assert_eq!(error.error_code, "MALFORMED_QUERY");
    let _ = TimeDelta::zero();
}

/// common/src/salesforce/soql.rs `accounts_query(2022-05-01)`, as the sync sends it.
const ACCOUNTS_QUERY: &str = "SELECT Account_ID_18__c, Name, CARR_This_Account__c, Type, \
     Ultimate_Parent_Sales_Segment_Employees__c, Account_Owner_Calc__c, \
     Technical_Account_Manager_Name__c, Restricted_Account__c, \
     Solutions_Architect_Lookup__r.Name, Account_Demographics_Geo__c, \
     Account_Demographics_Region__c, Latest_Sold_To_Contact__r.Email, \
     Latest_Sold_To_Contact__r.Name, Partner_Track__c, Partners_Partner_Type__c, \
     Support_Hold__c, Account_Risk_Level__c, Support_Instance__c, \
     (SELECT Id, Name, Subscription_ID_18__c, Zuora__Status__c, \
     Zuora__SubscriptionStartDate__c, Zuora__SubscriptionEndDate__c, Sold_To_Email__c \
     FROM Zuora__Subscriptions__r \
     WHERE Zuora__Status__c != 'Cancelled' AND Zuora__SubscriptionEndDate__c >= 2022-05-01), \
     (SELECT Id, Name, Zuora__SubscriptionRatePlanChargeName__c, Zuora__Subscription__c, \
     Zuora__EffectiveStartDate__c, Zuora__EffectiveEndDate__c, Zuora__Quantity__c \
     FROM Zuora__R00N40000001lGjTEAU__r \
     WHERE Subscription_Status__c != 'Cancelled' AND Zuora__EffectiveEndDate__c >= 2022-05-01) \
     FROM Account WHERE Type IN ('Customer', 'Former Customer')";

#[test]
fn the_sync_queries_narrowed_by_id_lists() {
    let state = org();
    state.with_objects_mut(|objects| {
        let accounts = objects.get_mut("Account").unwrap();
        accounts[2]["Type"] = json!("Partner");
        accounts[2]["Partners_Partner_Status__c"] = json!("Authorized");
        accounts[2]["Partner_Track__c"] = json!("Open");
    });
    let accounts = select(
        &state,
        &format!("{ACCOUNTS_QUERY} AND Id IN ('001B', '001C', '001X')"),
        false,
    );
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["Account_ID_18__c"], "001B");
    assert_eq!(
        accounts[0]["Zuora__Subscriptions__r"]["records"][0]["Id"],
        "S3"
    );
    let partners = select(
        &state,
        "SELECT Id FROM Account WHERE (Account_ID_18__c = '001A' OR (Type = 'Partner' AND \
         Partners_Partner_Status__c IN ('Authorized') AND Partner_Track__c IN ('Open', 'Select'))) \
         AND Id IN ('001A', '001B', '001C')",
        false,
    );
    assert_eq!(ids(&partners), ["001A", "001C"]);
    let partners = select(
        &state,
        "SELECT Id FROM Account WHERE (Account_ID_18__c = 'x' OR (Type = 'Partner' AND \
         Partner_Track__c IN ('Open', 'Select'))) AND Id IN ('001A', '001C')",
        false,
    );
    assert_eq!(ids(&partners), ["001C"]);
    let contacts = select(
        &state,
        "SELECT Id, Name, Email, Account.Account_ID_18__c FROM Contact WHERE \
         Inactive_Contact__c = false AND Role__c INCLUDES ('Gitlab Admin') AND Name != '' \
         AND Email != '' AND Account.Account_ID_18__c IN ('001A', '001B') AND Id IN ('003B')",
        false,
    );
    assert_eq!(ids(&contacts), ["003B"]);
    for object in [
        "Zuora__Subscription__c",
        "Zuora__SubscriptionProductCharge__c",
    ] {
        let rows = select(
            &state,
            &format!(
                "SELECT Id, Zuora__Account__c FROM {object} WHERE (Zuora__Account__c = '001B' \
                 OR (Name = 'S1' AND IsDeleted = false)) AND Id IN ('S1', 'S3', 'S1C', 'S3C')"
            ),
            false,
        );
        let expected: &[&str] = if object == "Zuora__Subscription__c" {
            &["S1", "S3"]
        } else {
            &["S3C"]
        };
        assert_eq!(ids(&rows), expected, "{object}");
    }
}

#[test]
fn a_snapshot_keeps_stamps_and_the_recycle_bin() {
    let state = org();
    state.advance_clock(HOUR);
    state.delete("Account", "001B").unwrap();
    state.delete("Zuora__Subscription__c", "S1").unwrap();
    let reloaded = SalesforceState::new(state.snapshot(), SalesforceOptions::default());
    assert_eq!(reloaded.dump()["objects"], state.dump()["objects"]);
    assert_eq!(reloaded.recycle_bin(), state.recycle_bin());
    assert_eq!(
        ids(&select(
            &reloaded,
            "SELECT Id FROM Zuora__Subscription__c WHERE IsDeleted = true",
            true
        )),
        ["S1", "S3"]
    );
}
