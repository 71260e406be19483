//! Evaluator tests: the sync's three queries as the seeds write them, and the semantics of the
//! grammar (null handling, INCLUDES, dates, case-insensitivity, errors).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{SoqlError, compile};

const VERSION: &str = "v62.0";

/// Seed 001's account query with `#{end_date}` replaced by a date literal.
const ACCOUNTS: &str = "SELECT
  Account_ID_18__c,
  Name,
  CARR_This_Account__c,
  Type,
  Ultimate_Parent_Sales_Segment_Employees__c,
  Account_Owner_Calc__c,
  Technical_Account_Manager_Name__c,
  Restricted_Account__c,
  Solutions_Architect_Lookup__r.Name,
  Account_Demographics_Geo__c,
  Account_Demographics_Region__c,
  Latest_Sold_To_Contact__r.Email,
  Latest_Sold_To_Contact__r.Name,
  Partner_Track__c,
  Partners_Partner_Type__c,
  Support_Hold__c,
  Account_Risk_Level__c,
  Support_Instance__c,
  (
    SELECT
      Id,
      Name,
      Subscription_ID_18__c,
      Zuora__Status__c,
      Zuora__SubscriptionStartDate__c,
      Zuora__SubscriptionEndDate__c,
      Sold_To_Email__c
    FROM Zuora__Subscriptions__r
    WHERE
      Zuora__Status__c != 'Cancelled' AND
      Zuora__SubscriptionEndDate__c >= 2022-05-01
  ),
  (
    SELECT
      Id,
      Name,
      Zuora__SubscriptionRatePlanChargeName__c,
      Zuora__Subscription__c,
      Zuora__EffectiveStartDate__c,
      Zuora__EffectiveEndDate__c,
      Zuora__Quantity__c
    FROM Zuora__R00N40000001lGjTEAU__r
    WHERE
      Subscription_Status__c != 'Cancelled' AND
      Zuora__EffectiveEndDate__c >= 2022-05-01
  )
FROM Account
WHERE
  Type IN ('Customer', 'Former Customer')";

/// Seed 003's partner query.
const PARTNERS: &str = "SELECT
  Account_ID_18__c,
  Name,
  Account_Owner_Calc__c,
  Technical_Account_Manager_Name__c,
  Restricted_Account__c,
  Solutions_Architect_Lookup__r.Name,
  Partner_Track__c,
  Support_Hold__c,
  Account_Risk_Level__c,
  Type,
  Partners_Partner_Status__c
FROM Account
WHERE
  Account_ID_18__c = '0014M00001sDiGEQA0' OR
  (
    Type = 'Partner' AND
    Partners_Partner_Status__c IN ('Authorized') AND
    Partner_Track__c IN ('Open', 'Select')
  )";

fn contacts_query(ids: &[&str]) -> String {
    let list = ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT
  Name,
  Email,
  Account.Account_ID_18__c
FROM Contact
WHERE
  Inactive_Contact__c = false AND
  Role__c INCLUDES ('Gitlab Admin') AND
  Name != '' AND
  Email != '' AND
  Account.Account_ID_18__c IN ({list})"
    )
}

fn org(accounts: Vec<Value>, contacts: Vec<Value>) -> BTreeMap<String, Vec<Value>> {
    BTreeMap::from([
        ("Account".to_owned(), accounts),
        ("Contact".to_owned(), contacts),
    ])
}

fn run(query: &str, objects: &BTreeMap<String, Vec<Value>>) -> Vec<Value> {
    let compiled = compile(query, objects).unwrap_or_else(|e| panic!("{}", e.message(query)));
    compiled
        .execute(objects, VERSION)
        .into_iter()
        .map(|row| {
            let mut record = row.record;
            for child in row.children {
                record.insert(child.relationship, Value::Array(child.records));
            }
            Value::Object(record)
        })
        .collect()
}

fn names(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["Name"].as_str().unwrap()).collect()
}

fn customer(name: &str, kind: &str) -> Value {
    json!({"Id": format!("001{name}"), "Name": name, "Type": kind, "Account_ID_18__c": format!("001{name}")})
}

#[test]
fn the_account_query_filters_parents_and_children_and_shapes_lookups() {
    let objects = org(
        vec![
            json!({
                "Id": "0011U00000V0tkDQAR",
                "Account_ID_18__c": "0011U00000V0tkDQAR",
                "Name": "Acme",
                "Type": "Customer",
                "CARR_This_Account__c": 1200.5,
                "Solutions_Architect_Lookup__r": {"Id": "005000000000001AAA", "Name": "Sam"},
                "Latest_Sold_To_Contact__r": null,
                "Not_Selected__c": "hidden",
                "Zuora__Subscriptions__r": [
                    {"Id": "a1", "Name": "S-1", "Zuora__Status__c": "Active", "Zuora__SubscriptionEndDate__c": "2022-05-01"},
                    {"Id": "a2", "Name": "S-2", "Zuora__Status__c": "Cancelled", "Zuora__SubscriptionEndDate__c": "2030-01-01"},
                    {"Id": "a3", "Name": "S-3", "Zuora__Status__c": "Active", "Zuora__SubscriptionEndDate__c": "2022-04-30"}
                ],
                "Zuora__R00N40000001lGjTEAU__r": [
                    {"Id": "c1", "Subscription_Status__c": "Cancelled", "Zuora__EffectiveEndDate__c": "2030-01-01"}
                ]
            }),
            customer("Former", "Former Customer"),
            customer("Prospect", "Prospect"),
        ],
        vec![],
    );
    let rows = run(ACCOUNTS, &objects);
    assert_eq!(names(&rows), ["Acme", "Former"]);
    let acme = &rows[0];
    assert_eq!(
        acme["attributes"],
        json!({"type": "Account", "url": "/services/data/v62.0/sobjects/Account/0011U00000V0tkDQAR"})
    );
    assert!(acme.get("Not_Selected__c").is_none());
    assert_eq!(acme["CARR_This_Account__c"], json!(1200.5));
    // Selected but absent from the fixture: present as null, like every selected field.
    assert_eq!(acme["Support_Hold__c"], Value::Null);
    assert_eq!(
        acme["Solutions_Architect_Lookup__r"],
        json!({"attributes": {"type": "User", "url": "/services/data/v62.0/sobjects/User/005000000000001AAA"}, "Name": "Sam"})
    );
    assert_eq!(acme["Latest_Sold_To_Contact__r"], Value::Null);
    let subs = acme["Zuora__Subscriptions__r"].as_array().unwrap();
    assert_eq!(
        subs.iter()
            .map(|s| s["Name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["S-1"],
        "cancelled and too-old subscriptions are filtered out; the end date bound is inclusive"
    );
    assert_eq!(subs[0]["attributes"]["type"], "Zuora__Subscription__c");
    assert_eq!(subs[0]["Sold_To_Email__c"], Value::Null);
    assert_eq!(acme["Zuora__R00N40000001lGjTEAU__r"], json!([]));
}

#[test]
fn fields_come_back_in_select_order_after_attributes() {
    let objects = org(vec![customer("Acme", "Customer")], vec![]);
    let rows = run("SELECT Type, name, Id FROM account", &objects);
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "Type", "Name", "Id"]);
}

#[test]
fn the_partner_query_combines_or_with_a_parenthesised_and() {
    let partner = |name: &str, status: &str, track: &str| json!({"Name": name, "Type": "Partner", "Partners_Partner_Status__c": status, "Partner_Track__c": track});
    let objects = org(
        vec![
            json!({"Name": "Alliance", "Type": "Customer", "Account_ID_18__c": "0014M00001sDiGEQA0"}),
            partner("Open Co", "Authorized", "Open"),
            partner("Select Co", "authorized", "SELECT"),
            partner("Technology Co", "Authorized", "Technology"),
            partner("Lapsed Co", "Former", "Open"),
            json!({"Name": "Customer Co", "Type": "Customer", "Partner_Track__c": "Open", "Partners_Partner_Status__c": "Authorized"}),
        ],
        vec![],
    );
    assert_eq!(
        names(&run(PARTNERS, &objects)),
        ["Alliance", "Open Co", "Select Co"]
    );
}

#[test]
fn the_contact_query_needs_every_condition() {
    let contact = |name: &str, email: &str, inactive: bool, roles: &str, account: &str| {
        json!({"Name": name, "Email": email, "Inactive_Contact__c": inactive, "Role__c": roles,
               "Account": {"Account_ID_18__c": account}})
    };
    let objects = org(
        vec![],
        vec![
            contact("Ann", "ann@x.test", false, "Gitlab Admin", "001A"),
            contact("Ben", "ben@x.test", false, "Billing;gitlab admin", "001B"),
            contact("Cat", "cat@x.test", true, "Gitlab Admin", "001A"),
            contact("Dan", "dan@x.test", false, "Billing", "001A"),
            contact("Eve", "", false, "Gitlab Admin", "001A"),
            contact("Fay", "fay@x.test", false, "Gitlab Admin", "001Z"),
            json!({"Name": "Gus", "Email": "gus@x.test", "Inactive_Contact__c": false, "Role__c": "Gitlab Admin", "Account": null}),
            json!({"Name": "Hal", "Email": "hal@x.test", "Inactive_Contact__c": false, "Role__c": null, "Account": {"Account_ID_18__c": "001A"}}),
        ],
    );
    let rows = run(&contacts_query(&["001A", "001b"]), &objects);
    assert_eq!(names(&rows), ["Ann", "Ben"]);
    assert_eq!(
        rows[1]["Account"],
        json!({"attributes": {"type": "Account"}, "Account_ID_18__c": "001B"})
    );
}

#[test]
fn null_fields_fail_every_comparison_except_null_tests() {
    let objects = org(
        vec![
            json!({"Name": "Null", "Type": null}),
            json!({"Name": "Empty", "Type": ""}),
            json!({"Name": "Missing"}),
            json!({"Name": "Set", "Type": "Customer"}),
        ],
        vec![],
    );
    let matching = |clause: &str| {
        let rows = run(
            &format!("SELECT Name FROM Account WHERE {clause}"),
            &objects,
        );
        names(&rows)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(matching("Type = null"), ["Null", "Empty", "Missing"]);
    assert_eq!(matching("Type = ''"), ["Null", "Empty", "Missing"]);
    assert_eq!(matching("Type != null"), ["Set"]);
    assert_eq!(matching("Type != ''"), ["Set"]);
    assert_eq!(matching("Type != 'Partner'"), ["Set"]);
    assert_eq!(matching("Type NOT IN ('Partner')"), ["Set"]);
    assert_eq!(
        matching("Type IN ('Customer', null)"),
        ["Null", "Empty", "Missing", "Set"]
    );
    assert_eq!(matching("Type < 'Z'"), ["Set"]);
    assert_eq!(
        matching("NOT Type = 'Customer'"),
        ["Null", "Empty", "Missing"]
    );
}

#[test]
fn a_null_lookup_makes_its_fields_null() {
    let objects = org(
        vec![
            json!({"Name": "With", "Solutions_Architect_Lookup__r": {"Name": "Sam"}}),
            json!({"Name": "Without", "Solutions_Architect_Lookup__r": null}),
        ],
        vec![],
    );
    let query = |clause: &str| {
        let rows = run(
            &format!("SELECT Name FROM Account WHERE {clause}"),
            &objects,
        );
        names(&rows)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        query("Solutions_Architect_Lookup__r.Name = null"),
        ["Without"]
    );
    assert_eq!(
        query("Solutions_Architect_Lookup__r.Name = 'sam'"),
        ["With"]
    );
}

#[test]
fn checkbox_null_means_false() {
    let objects = org(
        vec![
            json!({"Name": "Held", "Support_Hold__c": true}),
            json!({"Name": "Free", "Support_Hold__c": false}),
        ],
        vec![],
    );
    let rows = run(
        "SELECT Name FROM Account WHERE Support_Hold__c = null",
        &objects,
    );
    assert_eq!(names(&rows), ["Free"]);
    let rows = run(
        "SELECT Name FROM Account WHERE Support_Hold__c != null",
        &objects,
    );
    assert_eq!(names(&rows), ["Held"]);
    let rows = run(
        "SELECT Name FROM Account WHERE Support_Hold__c = TRUE",
        &objects,
    );
    assert_eq!(names(&rows), ["Held"]);
}

#[test]
fn includes_and_excludes_read_multi_select_values() {
    let objects = org(
        vec![],
        vec![
            json!({"Name": "One", "Role__c": "Gitlab Admin"}),
            json!({"Name": "Two", "Role__c": "Billing; Gitlab Admin"}),
            json!({"Name": "Three", "Role__c": "Billing"}),
            json!({"Name": "None", "Role__c": null}),
        ],
    );
    let matching = |clause: &str| {
        let rows = run(
            &format!("SELECT Name FROM Contact WHERE {clause}"),
            &objects,
        );
        names(&rows)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        matching("Role__c INCLUDES ('gitlab admin')"),
        ["One", "Two"]
    );
    assert_eq!(
        matching("Role__c INCLUDES ('Billing;Gitlab Admin')"),
        ["Two"]
    );
    assert_eq!(
        matching("Role__c INCLUDES ('Billing', 'Gitlab Admin')"),
        ["One", "Two", "Three"]
    );
    assert_eq!(matching("Role__c EXCLUDES ('Billing')"), ["One"]);
    assert_eq!(
        matching("Role__c INCLUDES ('Gitlab')"),
        Vec::<String>::new()
    );
}

#[test]
fn dates_and_numbers_compare_by_value() {
    let objects = org(
        vec![
            json!({"Name": "Old", "CARR_This_Account__c": 9, "Last__c": "2021-12-31"}),
            json!({"Name": "New", "CARR_This_Account__c": 10.5, "Last__c": "2022-01-01T08:00:00.000+0000"}),
            json!({"Name": "Text", "CARR_This_Account__c": "11", "Last__c": "soon"}),
        ],
        vec![],
    );
    let matching = |clause: &str| {
        let rows = run(
            &format!("SELECT Name FROM Account WHERE {clause}"),
            &objects,
        );
        names(&rows)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(matching("Last__c >= 2022-01-01"), ["New"]);
    assert_eq!(matching("Last__c < 2022-01-01"), ["Old"]);
    assert_eq!(matching("Last__c <= 2022-01-01"), ["Old", "New"]);
    assert_eq!(matching("CARR_This_Account__c > 9"), ["New", "Text"]);
    assert_eq!(matching("CARR_This_Account__c = 10.5"), ["New"]);
    assert_eq!(matching("CARR_This_Account__c != 9"), ["New", "Text"]);
}

#[test]
fn string_literals_with_escaped_quotes_match() {
    let objects = org(
        vec![json!({"Name": "O'Brien Ltd"}), json!({"Name": "Other"})],
        vec![],
    );
    let rows = run(
        r"SELECT Name FROM Account WHERE Name = 'o\'brien ltd'",
        &objects,
    );
    assert_eq!(names(&rows), ["O'Brien Ltd"]);
}

fn compile_error(query: &str) -> SoqlError {
    compile(query, &org(vec![customer("Acme", "Customer")], vec![])).unwrap_err()
}

#[test]
fn unknown_fields_are_invalid_field_with_a_pointer() {
    let query = "SELECT Id, Nmae FROM Account";
    let error = compile_error(query);
    assert_eq!(error.code, "INVALID_FIELD");
    assert_eq!(
        error.message(query),
        "\nSELECT Id, Nmae FROM Account\n           ^\nERROR at Row:1:Column:12\n\
         No such column 'Nmae' on entity 'Account'. If you are attempting to use a custom field, \
         be sure to append the '__c' after the custom field name. Please reference your WSDL or \
         the describe call for the appropriate names."
    );
    for query in [
        "SELECT Id FROM Account WHERE Typo__c = 1",
        "SELECT Nope__r.Name FROM Account",
        "SELECT Solutions_Architect_Lookup__r.Shoe_Size__c FROM Account",
        "SELECT (SELECT Nope__c FROM Zuora__Subscriptions__r) FROM Account",
        // A relationship is not a column.
        "SELECT Solutions_Architect_Lookup__r FROM Account",
    ] {
        assert_eq!(compile_error(query).code, "INVALID_FIELD", "{query}");
    }
}

#[test]
fn unknown_objects_and_child_relationships_are_invalid_type() {
    let error = compile_error("SELECT Id FROM Acount");
    assert_eq!(error.code, "INVALID_TYPE");
    assert!(
        error
            .detail
            .starts_with("sObject type 'Acount' is not supported.")
    );
    let error = compile_error("SELECT Id, (SELECT Id FROM Subscriptions) FROM Account");
    assert_eq!(error.code, "INVALID_TYPE");
    assert!(
        error
            .detail
            .starts_with("Didn't understand relationship 'Subscriptions'")
    );
}

#[test]
fn syntax_errors_are_malformed_query() {
    let error =
        compile_error("SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Id = null");
    assert_eq!(error.code, "MALFORMED_QUERY");
    assert_eq!(error.detail, "unexpected token: 'OR'");
}
