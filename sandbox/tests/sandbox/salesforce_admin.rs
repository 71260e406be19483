//! `/_sandbox/salesforce/...`: a harness changes Salesforce over HTTP, tracked like any change
//! (stamps, recycle bin, merges).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use zdsync_sandbox::Fixture;
use zdsync_sandbox::salesforce::SalesforceFixture;

use crate::support::Harness;

fn fixture() -> Fixture {
    let account = |id: &str, subs: &[&str]| {
        let subs: Vec<Value> = subs.iter().map(|s| json!({"Id": s, "Name": s})).collect();
        json!({"Id": id, "Account_ID_18__c": id, "Name": id, "Type": "Customer",
               "Zuora__Subscriptions__r": subs})
    };
    Fixture {
        salesforce: SalesforceFixture {
            objects: BTreeMap::from([
                (
                    "Account".to_owned(),
                    vec![account("001A", &["S1"]), account("001B", &["S2"])],
                ),
                (
                    "Contact".to_owned(),
                    vec![json!({"Id": "003B", "Name": "C", "AccountId": "001B",
                                "Account": {"Account_ID_18__c": "001B"}})],
                ),
            ]),
        },
        ..Fixture::default()
    }
}

async fn send(
    h: &Harness,
    method: reqwest::Method,
    route: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = h.http.request(
        method,
        format!("{}/_sandbox/salesforce/{route}", h.sandbox.base_url()),
    );
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("reply");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The ids of the live records (and with `deleted`, of the recycle bin's too), sorted.
fn ids(h: &Harness, deleted: bool) -> Vec<String> {
    let state = h.sandbox.salesforce();
    let mut records: Vec<Value> =
        state.with_objects_mut(|o| o.values().flatten().cloned().collect());
    if deleted {
        records.extend(state.recycle_bin().into_values().flatten());
    }
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| r["Id"].as_str().expect("Id").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn records_change_over_http_with_stamps_and_a_recycle_bin() {
    use reqwest::Method;
    let h = Harness::start(fixture()).await;
    let loaded = h
        .sandbox
        .salesforce()
        .record("Account", "001A")
        .expect("001A");
    h.sandbox.advance_clock(Duration::from_secs(60));

    let (status, created) = send(
        &h,
        Method::POST,
        "records/Account",
        Some(json!({"Id": "001N", "Name": "New", "Type": "Customer"})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["IsDeleted"], false);
    assert!(
        created["SystemModstamp"].as_str().unwrap() > loaded["SystemModstamp"].as_str().unwrap()
    );

    let (status, patched) = send(
        &h,
        Method::PATCH,
        "records/Account/001A",
        Some(json!({"Name": "Renamed"})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["Name"], "Renamed");
    assert_ne!(patched["SystemModstamp"], loaded["SystemModstamp"]);
    // The subscription rows were kept.
    assert_eq!(patched["Zuora__Subscriptions__r"][0]["Id"], "S1");

    let (status, sub) = send(
        &h,
        Method::POST,
        "records/Zuora__Subscription__c",
        Some(json!({"Id": "S9", "Name": "S9", "Zuora__Account__c": "001N"})),
    )
    .await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["Zuora__Account__c"], "001N");
    let n = h.sandbox.salesforce().record("Account", "001N").unwrap();
    assert_eq!(n["Zuora__Subscriptions__r"][0]["Id"], "S9");
    // A child row does not move its account's stamp.
    assert_eq!(n["SystemModstamp"], created["SystemModstamp"]);

    let (status, _) = send(
        &h,
        Method::DELETE,
        "records/Zuora__Subscription__c/S9",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(&h, Method::DELETE, "records/Account/001N", None).await;
    assert_eq!(status, 204);
    let bin = h.sandbox.salesforce().recycle_bin();
    assert_eq!(bin["Account"][0]["Id"], "001N");
    assert_eq!(bin["Account"][0]["IsDeleted"], true);
    assert_eq!(bin["Zuora__Subscription__c"][0]["Id"], "S9");

    let (status, master) = send(
        &h,
        Method::POST,
        "merge",
        Some(json!({"master_id": "001A", "loser_ids": ["001B"]})),
    )
    .await;
    assert_eq!(status, 200, "{master}");
    let moved: Vec<&str> = master["Zuora__Subscriptions__r"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Id"].as_str().unwrap())
        .collect();
    assert_eq!(moved, ["S1", "S2"]);
    let contact = h.sandbox.salesforce().record("Contact", "003B").unwrap();
    assert_eq!(contact["AccountId"], "001A");
    let bin = h.sandbox.salesforce().recycle_bin();
    let loser = bin["Account"].iter().find(|a| a["Id"] == "001B").unwrap();
    assert_eq!(loser["MasterRecordId"], "001A");
    assert_eq!(ids(&h, false), ["001A", "003B"]);
    assert_eq!(ids(&h, true), ["001A", "001B", "001N", "003B", "S9"]);

    // Errors: an unknown record is 404, a body without Id 400.
    for (method, route, body, expected) in [
        (
            Method::PATCH,
            "records/Account/nope",
            Some(json!({"Name": "x"})),
            404,
        ),
        (Method::DELETE, "records/Account/nope", None, 404),
        (
            Method::DELETE,
            "records/Zuora__Subscription__c/nope",
            None,
            404,
        ),
        (
            Method::POST,
            "records/Account",
            Some(json!({"Name": "no id"})),
            400,
        ),
        (
            Method::POST,
            "records/Zuora__Subscription__c",
            Some(json!({"Id": "S7"})),
            400,
        ),
        (
            Method::POST,
            "merge",
            Some(json!({"master_id": "001A", "loser_ids": ["001B"]})),
            404,
        ),
        (Method::POST, "merge", Some(json!({"master": "001A"})), 400),
    ] {
        let (status, body) = send(&h, method.clone(), route, body).await;
        assert_eq!(status, expected, "{method} {route}: {body}");
        assert!(body["error"].is_string(), "{method} {route}: {body}");
    }
}
