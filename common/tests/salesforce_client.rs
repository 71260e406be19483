//! The Salesforce client against the sandbox's Salesforce emulator over real HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::{Value, json};
use zdsync::model::SalesforceId;
use zdsync::salesforce::soql::{
    MAX_QUERY_URL_BYTES, MAX_URI_BYTES, accounts_query, contacts_queries, contacts_query,
    partners_query,
};
use zdsync::salesforce::{
    RetryPolicy, SalesforceClient, SalesforceConfig, SalesforceCredentials, SalesforceError,
};
use zdsync_sandbox::salesforce::{SalesforceFixture, SalesforceOptions, SalesforceState, router};

const TEST_KEY: &str = include_str!("../../sandbox/testdata/salesforce-jwt-test-key.pem");
const TEST_PUBLIC_KEY: &str =
    include_str!("../../sandbox/testdata/salesforce-jwt-test-key.pub.pem");

/// What the test's wire tap saw, and the failures it should inject.
#[derive(Default)]
struct Wire {
    /// Answer this many of the next requests with 503 before letting them through.
    fail_next: AtomicUsize,
    requests: AtomicUsize,
    token_requests: AtomicUsize,
    longest_uri: AtomicUsize,
    refused_as_too_long: AtomicUsize,
}

struct Org {
    state: Arc<SalesforceState>,
    base: String,
    wire: Arc<Wire>,
}

async fn tap(wire: Arc<Wire>, request: Request, next: Next) -> Response {
    wire.requests.fetch_add(1, Ordering::SeqCst);
    if request.uri().path().ends_with("/services/oauth2/token") {
        wire.token_requests.fetch_add(1, Ordering::SeqCst);
    }
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    wire.longest_uri.fetch_max(uri_bytes, Ordering::SeqCst);
    let injected = wire
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if injected {
        let body = json!([{"message": "injected outage", "errorCode": "SERVER_UNAVAILABLE"}]);
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    let response = next.run(request).await;
    if matches!(
        response.status(),
        StatusCode::URI_TOO_LONG | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    ) {
        wire.refused_as_too_long.fetch_add(1, Ordering::SeqCst);
    }
    response
}

async fn start(fixture: SalesforceFixture, options: SalesforceOptions) -> Org {
    let state = Arc::new(SalesforceState::new(fixture, options));
    let wire = Arc::new(Wire::default());
    let tap_wire = wire.clone();
    let app = axum::Router::new()
        .nest("/salesforce", router(state.clone()))
        .layer(axum::middleware::from_fn(move |request, next| {
            tap(tap_wire.clone(), request, next)
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Org {
        state,
        base: format!("http://{address}/salesforce"),
        wire,
    }
}

impl Org {
    fn config(&self, credentials: SalesforceCredentials) -> SalesforceConfig {
        SalesforceConfig {
            batch_size: 200,
            retry: RetryPolicy {
                max_retries: 3,
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
            ..SalesforceConfig::new(
                format!("{}/services/oauth2/token", self.base),
                "v62.0",
                credentials,
            )
        }
    }

    fn client_credentials(&self) -> SalesforceCredentials {
        let options = self.state.options();
        SalesforceCredentials::ClientCredentials {
            client_id: options.client_id.clone(),
            client_secret: options.client_secret.clone(),
        }
    }

    fn client(&self) -> SalesforceClient {
        SalesforceClient::new(self.config(self.client_credentials())).unwrap()
    }
}

fn account_id(n: usize) -> SalesforceId {
    SalesforceId::parse(&format!("0014M{n:010}")).unwrap()
}

/// Account `i` has `i % 4` subscriptions and `i % 5` charges (plus a cancelled one of
/// each, which the query filters out), and a solutions architect when `i` is odd.
fn customer_accounts(count: usize) -> SalesforceFixture {
    let accounts = (0..count)
        .map(|i| {
            let mut subscriptions: Vec<Value> = (0..i % 4)
                .map(|s| json!({"Id": format!("a1S{i}-{s}"), "Name": format!("A-S{s}"), "Zuora__Status__c": "Active", "Zuora__SubscriptionEndDate__c": "2030-01-01"}))
                .collect();
            subscriptions.push(json!({"Name": "gone", "Zuora__Status__c": "Cancelled", "Zuora__SubscriptionEndDate__c": "2030-01-01"}));
            let mut charges: Vec<Value> = (0..i % 5)
                .map(|c| json!({"Name": format!("C{c}"), "Subscription_Status__c": "Active", "Zuora__EffectiveEndDate__c": "2029-12-31", "Zuora__Quantity__c": c}))
                .collect();
            charges.push(json!({"Name": "old", "Subscription_Status__c": "Active", "Zuora__EffectiveEndDate__c": "2020-01-01"}));
            let architect = if i % 2 == 1 { json!({"Name": format!("SA {i}")}) } else { Value::Null };
            json!({
                "Id": account_id(i).as_str(),
                "Account_ID_18__c": account_id(i).as_str(),
                "Name": format!("Account {i}"),
                "Type": if i % 3 == 0 { "Former Customer" } else { "Customer" },
                "Solutions_Architect_Lookup__r": architect,
                "Latest_Sold_To_Contact__r": null,
                "Zuora__Subscriptions__r": subscriptions,
                "Zuora__R00N40000001lGjTEAU__r": charges,
            })
        })
        .collect();
    SalesforceFixture {
        objects: BTreeMap::from([("Account".to_owned(), accounts)]),
    }
}

fn end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2022, 1, 1).unwrap()
}

fn assert_child_set(value: &Value, expected: usize, context: &str) {
    if expected == 0 {
        assert_eq!(value, &Value::Null, "{context}: no rows is null");
        return;
    }
    assert_eq!(value["totalSize"], expected, "{context}");
    assert_eq!(value["done"], true, "{context}");
    assert!(value.get("nextRecordsUrl").is_none(), "{context}");
    assert_eq!(
        value["records"].as_array().unwrap().len(),
        expected,
        "{context}"
    );
}

#[tokio::test]
async fn accounts_come_back_complete_across_pages_and_truncated_child_sets() {
    let org = start(
        customer_accounts(30),
        SalesforceOptions {
            max_batch_size: 7,
            child_page_size: 2,
            ..SalesforceOptions::default()
        },
    )
    .await;
    let client = org.client();
    let soql = accounts_query(end_date());
    let mut pages = client.query_pages(&soql);
    let mut records = Vec::new();
    let mut page_count = 0;
    while let Some(page) = pages.next_page().await.unwrap() {
        assert_eq!(page.total_size, 30);
        page_count += 1;
        records.extend(page.records);
    }
    assert!(
        page_count >= 10,
        "child rows count toward the batch: {page_count} pages"
    );
    assert_eq!(records.len(), 30);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["Name"], format!("Account {i}"));
        assert_child_set(
            &record["Zuora__Subscriptions__r"],
            i % 4,
            &format!("subs of {i}"),
        );
        assert_child_set(
            &record["Zuora__R00N40000001lGjTEAU__r"],
            i % 5,
            &format!("charges of {i}"),
        );
        if i % 4 > 0 {
            let names: Vec<&str> = record["Zuora__Subscriptions__r"]["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["Name"].as_str().unwrap())
                .collect();
            let expected: Vec<String> = (0..i % 4).map(|s| format!("A-S{s}")).collect();
            assert_eq!(names, expected, "child rows in order, once each");
        }
        let architect = &record["Solutions_Architect_Lookup__r"];
        if i % 2 == 1 {
            assert_eq!(architect["Name"], format!("SA {i}"));
        } else {
            assert_eq!(architect, &Value::Null);
        }
        assert_eq!(record["Latest_Sold_To_Contact__r"], Value::Null);
    }
    // Collecting in one call gives the same records (children completed page by page too).
    assert_eq!(client.query(&soql).await.unwrap(), records);
    assert_eq!(org.state.tokens_issued(), 1);
}

#[tokio::test]
async fn the_partner_query_returns_the_alliance_and_authorized_partners() {
    let alliance = account_id(9);
    let partner = |name: &str, track: &str| json!({"Name": name, "Type": "Partner", "Partners_Partner_Status__c": "Authorized", "Partner_Track__c": track});
    let fixture = SalesforceFixture {
        objects: BTreeMap::from([(
            "Account".to_owned(),
            vec![
                json!({"Name": "Alliance", "Type": "Customer", "Account_ID_18__c": alliance.as_str()}),
                partner("Open", "Open"),
                partner("Technology", "Technology"),
                partner("Select", "Select"),
            ],
        )]),
    };
    let org = start(fixture, SalesforceOptions::default()).await;
    let records = org
        .client()
        .query(&partners_query(&alliance))
        .await
        .unwrap();
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alliance", "Open", "Select"]);
}

#[tokio::test]
async fn a_session_expiring_mid_query_is_renewed_exactly_once() {
    let org = start(
        customer_accounts(12),
        SalesforceOptions {
            max_batch_size: 5,
            ..SalesforceOptions::default()
        },
    )
    .await;
    let client = org.client();
    let soql = accounts_query(end_date());
    let mut pages = client.query_pages(&soql);
    let mut count = pages.next_page().await.unwrap().unwrap().records.len();
    org.state.expire_all_tokens();
    while let Some(page) = pages.next_page().await.unwrap() {
        count += page.records.len();
    }
    assert_eq!(count, 12);
    assert_eq!(org.state.tokens_issued(), 2);
    assert_eq!(client.token_requests(), 2);
}

#[tokio::test]
async fn a_refused_new_session_is_auth_failed_after_one_renewal() {
    // Sessions die the moment they are issued, so the renewed one is refused too.
    let org = start(
        customer_accounts(1),
        SalesforceOptions {
            token_lifetime: Duration::ZERO,
            ..SalesforceOptions::default()
        },
    )
    .await;
    let client = org.client();
    let error = client.query(&accounts_query(end_date())).await.unwrap_err();
    assert!(
        matches!(error, SalesforceError::AuthFailed { .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert_eq!(
        org.state.tokens_issued(),
        2,
        "one login and exactly one renewal"
    );
}

#[tokio::test]
async fn password_and_jwt_bearer_grants_log_in() {
    let org = start(
        customer_accounts(3),
        SalesforceOptions {
            jwt_public_key_pem: Some(TEST_PUBLIC_KEY.to_owned()),
            ..SalesforceOptions::default()
        },
    )
    .await;
    let o = org.state.options().clone();
    let grants = [
        SalesforceCredentials::Password {
            client_id: o.client_id.clone(),
            client_secret: o.client_secret.clone(),
            username: o.username.clone(),
            password_with_token: format!("{}{}", o.password, o.security_token),
        },
        SalesforceCredentials::JwtBearer {
            client_id: o.client_id.clone(),
            username: o.username.clone(),
            audience: "https://login.salesforce.com".into(),
            private_key_pem: TEST_KEY.to_owned(),
        },
    ];
    for credentials in grants {
        let client = SalesforceClient::new(org.config(credentials)).unwrap();
        let records = client.query(&accounts_query(end_date())).await.unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(
            client.query_endpoint().await.unwrap().instance_url,
            org.base
        );
    }
    assert_eq!(org.state.tokens_issued(), 2);
}

#[tokio::test]
async fn refused_credentials_are_auth_failed_without_retries() {
    let org = start(customer_accounts(1), SalesforceOptions::default()).await;
    let o = org.state.options().clone();
    let wrong = [
        SalesforceCredentials::ClientCredentials {
            client_id: o.client_id.clone(),
            client_secret: "not-the-secret".into(),
        },
        SalesforceCredentials::Password {
            client_id: o.client_id.clone(),
            client_secret: o.client_secret.clone(),
            username: o.username.clone(),
            password_with_token: o.password.clone(),
        },
        SalesforceCredentials::JwtBearer {
            client_id: o.client_id.clone(),
            username: o.username.clone(),
            audience: "https://login.salesforce.com".into(),
            // The emulated app has no certificate in this org.
            private_key_pem: TEST_KEY.to_owned(),
        },
    ];
    for credentials in wrong {
        let client = SalesforceClient::new(org.config(credentials)).unwrap();
        let error = client.query("SELECT Name FROM Account").await.unwrap_err();
        let SalesforceError::AuthFailed { message } = &error else {
            panic!("expected AuthFailed, got {error:?}")
        };
        assert!(message.starts_with("invalid_"), "{message}");
        assert!(!message.contains("not-the-secret") && !message.contains(&o.password));
        assert!(!error.is_retryable());
        assert_eq!(client.token_requests(), 1, "a refusal is not retried");
    }
    assert_eq!(org.state.tokens_issued(), 0);
}

#[tokio::test]
async fn query_errors_are_typed_and_not_retried() {
    let org = start(customer_accounts(1), SalesforceOptions::default()).await;
    let client = org.client();
    let error = client.query("SELECT Name FRM Account").await.unwrap_err();
    let SalesforceError::MalformedQuery { message } = &error else {
        panic!("expected MalformedQuery, got {error:?}")
    };
    assert!(message.contains("unexpected token: 'FRM'"), "{message}");
    assert!(!error.is_retryable());
    let error = client.query("SELECT Nmae FROM Account").await.unwrap_err();
    assert!(
        matches!(&error, SalesforceError::InvalidField { error_code, .. } if error_code == "INVALID_FIELD"),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    // One token request and one request per query: nothing was retried.
    assert_eq!(org.wire.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn outages_are_retried_until_they_pass() {
    let org = start(customer_accounts(4), SalesforceOptions::default()).await;
    let client = org.client();
    // The first two requests (both token requests) fail; the third gets a session.
    org.wire.fail_next.store(2, Ordering::SeqCst);
    let endpoint = client.query_endpoint().await.unwrap();
    assert_eq!(endpoint.instance_url, org.base);
    assert_eq!(org.wire.token_requests.load(Ordering::SeqCst), 3);
    // Then a query fails twice before it is answered.
    org.wire.fail_next.store(2, Ordering::SeqCst);
    let before = org.wire.requests.load(Ordering::SeqCst);
    let records = client.query(&accounts_query(end_date())).await.unwrap();
    assert_eq!(records.len(), 4);
    assert_eq!(org.wire.requests.load(Ordering::SeqCst) - before, 3);
}

#[tokio::test]
async fn a_persistent_outage_is_a_retryable_transient_error() {
    let org = start(customer_accounts(1), SalesforceOptions::default()).await;
    let client = org.client();
    client.query_endpoint().await.unwrap();
    org.wire.fail_next.store(usize::MAX, Ordering::SeqCst);
    let before = org.wire.requests.load(Ordering::SeqCst);
    let error = client.query("SELECT Name FROM Account").await.unwrap_err();
    assert!(
        matches!(error, SalesforceError::Transient { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(
        org.wire.requests.load(Ordering::SeqCst) - before,
        4,
        "the first attempt and max_retries = 3 retries"
    );
}

#[tokio::test]
async fn connection_failures_are_transient() {
    // Bind a port, then close it, so nothing listens there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let config = SalesforceConfig {
        retry: RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        },
        ..SalesforceConfig::new(
            format!("http://{address}/services/oauth2/token"),
            "v62.0",
            SalesforceCredentials::ClientCredentials {
                client_id: "a".into(),
                client_secret: "b".into(),
            },
        )
    };
    let client = SalesforceClient::new(config).unwrap();
    let error = client.query("SELECT Name FROM Account").await.unwrap_err();
    assert!(
        matches!(error, SalesforceError::Transient { .. }),
        "{error:?}"
    );
    assert_eq!(client.token_requests(), 2);
}

#[tokio::test]
async fn the_request_allowance_running_out_is_typed() {
    let org = start(
        customer_accounts(1),
        SalesforceOptions {
            daily_api_limit: 1,
            ..SalesforceOptions::default()
        },
    )
    .await;
    let client = org.client();
    client.query("SELECT Name FROM Account").await.unwrap();
    let error = client.query("SELECT Name FROM Account").await.unwrap_err();
    assert!(
        matches!(error, SalesforceError::RequestLimitExceeded { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

/// 2,000 accounts with one wanted contact each, plus contacts the query must leave out.
fn contacts_of(ids: &[SalesforceId]) -> SalesforceFixture {
    let mut contacts: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"Name": format!("Admin {i}"), "Email": format!("admin{i}@example.test"),
                   "Inactive_Contact__c": false, "Role__c": "Billing;Gitlab Admin",
                   "Account": {"Account_ID_18__c": id.as_str()}})
        })
        .collect();
    contacts.push(json!({"Name": "Inactive", "Email": "inactive@example.test", "Inactive_Contact__c": true,
                         "Role__c": "Gitlab Admin", "Account": {"Account_ID_18__c": ids[0].as_str()}}));
    contacts.push(json!({"Name": "Elsewhere", "Email": "elsewhere@example.test", "Inactive_Contact__c": false,
                         "Role__c": "Gitlab Admin", "Account": {"Account_ID_18__c": account_id(999_999).as_str()}}));
    SalesforceFixture {
        objects: BTreeMap::from([("Contact".to_owned(), contacts)]),
    }
}

#[tokio::test]
async fn contact_queries_for_2000_accounts_stay_under_the_uri_limit() {
    let ids: Vec<SalesforceId> = (0..2_000).map(account_id).collect();
    let org = start(contacts_of(&ids), SalesforceOptions::default()).await;
    let client = org.client();
    let endpoint = client.query_endpoint().await.unwrap();
    let queries = contacts_queries(&ids, &endpoint);
    assert!(queries.len() >= 4, "{} chunks", queries.len());
    let mut emails = Vec::new();
    for soql in &queries {
        assert!(endpoint.url_for(soql).len() <= MAX_QUERY_URL_BYTES);
        for contact in client.query(soql).await.unwrap() {
            emails.push(contact["Email"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(org.wire.refused_as_too_long.load(Ordering::SeqCst), 0);
    assert!(org.wire.longest_uri.load(Ordering::SeqCst) <= MAX_URI_BYTES);
    assert_eq!(emails.len(), 2_000);
    let distinct: BTreeSet<&String> = emails.iter().collect();
    assert_eq!(distinct.len(), 2_000, "every contact exactly once");
    assert!(
        !emails
            .iter()
            .any(|e| e.starts_with("inactive") || e.starts_with("elsewhere"))
    );
}

#[tokio::test]
async fn one_unchunked_contact_query_is_refused_as_too_long() {
    let ids: Vec<SalesforceId> = (0..2_000).map(account_id).collect();
    let org = start(contacts_of(&ids), SalesforceOptions::default()).await;
    let error = org.client().query(&contacts_query(&ids)).await.unwrap_err();
    assert!(
        matches!(error, SalesforceError::UriTooLong { status: 414, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn an_empty_result_is_an_empty_list() {
    let org = start(SalesforceFixture::default(), SalesforceOptions::default()).await;
    let records = org
        .client()
        .query(&accounts_query(end_date()))
        .await
        .unwrap();
    assert!(records.is_empty());
}
