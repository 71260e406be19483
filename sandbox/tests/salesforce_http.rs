//! The Salesforce emulator over real HTTP: token grants, sessions, paging, errors and limits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use zdsync_sandbox::salesforce::{SalesforceFixture, SalesforceOptions, SalesforceState, router};

const TEST_KEY: &str = include_str!("../testdata/salesforce-jwt-test-key.pem");
const TEST_PUBLIC_KEY: &str = include_str!("../testdata/salesforce-jwt-test-key.pub.pem");
const UNTRUSTED_KEY: &str = include_str!("../testdata/salesforce-jwt-other-key.pem");

struct Org {
    state: Arc<SalesforceState>,
    /// `http://127.0.0.1:port/salesforce`
    base: String,
    http: reqwest::Client,
}

async fn start(fixture: SalesforceFixture, options: SalesforceOptions) -> Org {
    let state = Arc::new(SalesforceState::new(fixture, options));
    let app = axum::Router::new().nest("/salesforce", router(state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Org {
        state,
        base: format!("http://{address}/salesforce"),
        http: reqwest::Client::new(),
    }
}

fn accounts(count: usize, subscriptions_each: usize) -> SalesforceFixture {
    let records = (0..count)
        .map(|i| {
            let subs: Vec<Value> = (0..subscriptions_each)
                .map(|s| json!({"Name": format!("A{i}-S{s}"), "Zuora__Status__c": "Active"}))
                .collect();
            json!({"Name": format!("A{i}"), "Type": "Customer", "Zuora__Subscriptions__r": subs})
        })
        .collect();
    SalesforceFixture {
        objects: BTreeMap::from([("Account".to_owned(), records)]),
    }
}

impl Org {
    async fn token_request(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/services/oauth2/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn login(&self) -> String {
        let options = self.state.options();
        let (status, body) = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", &options.client_id),
                ("client_secret", &options.client_secret),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str, token: &str, batch: Option<usize>) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(batch) = batch {
            request = request.header("Sforce-Query-Options", format!("batchSize={batch}"));
        }
        request.send().await.unwrap()
    }

    async fn query(&self, soql: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/services/data/v62.0/query", self.base))
            .query(&[("q", soql)])
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let first = &body.as_array().expect("errors are arrays")[0];
    (
        status,
        first["errorCode"].as_str().unwrap().to_owned(),
        first["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn client_credentials_grant_returns_a_session_at_the_mount_point() {
    let org = start(SalesforceFixture::default(), SalesforceOptions::default()).await;
    let options = org.state.options().clone();
    let (status, body) = org
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &options.client_id),
            ("client_secret", &options.client_secret),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["instance_url"], org.base);
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with("00D000000000001!")
    );
    assert_eq!(
        body["id"],
        format!("{}/id/{}/{}", org.base, options.org_id, options.user_id)
    );
    let issued_at: i64 = body["issued_at"].as_str().unwrap().parse().unwrap();
    assert!(
        issued_at > 1_600_000_000_000,
        "milliseconds since the epoch"
    );
    assert!(!body["signature"].as_str().unwrap().is_empty());
    assert!(body.get("refresh_token").is_none());
    assert_eq!(org.state.tokens_issued(), 1);
}

#[tokio::test]
async fn client_credentials_may_come_in_a_basic_header() {
    let org = start(SalesforceFixture::default(), SalesforceOptions::default()).await;
    let options = org.state.options();
    let response = org
        .http
        .post(format!("{}/services/oauth2/token", org.base))
        .basic_auth(&options.client_id, Some(&options.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn refused_grants_are_oauth_errors() {
    let org = start(SalesforceFixture::default(), SalesforceOptions::default()).await;
    let o = org.state.options().clone();
    let good_password = format!("{}{}", o.password, o.security_token);
    /// A token request form, and the OAuth error and description it must get.
    type RefusedGrant<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<RefusedGrant> = vec![
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &o.client_id),
                ("client_secret", &o.client_secret),
                ("username", &o.username),
                ("password", &o.password),
            ],
            "invalid_grant",
            "authentication failure",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &o.client_id),
                ("client_secret", &o.client_secret),
                ("username", "someone@else"),
                ("password", &good_password),
            ],
            "invalid_grant",
            "authentication failure",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &o.client_id),
                ("client_secret", "wrong"),
            ],
            "invalid_client",
            "invalid client credentials",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "stranger"),
                ("client_secret", &o.client_secret),
            ],
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            vec![("grant_type", "authorization_code"), ("code", "x")],
            "unsupported_grant_type",
            "grant type not supported",
        ),
    ];
    for (form, error, description) in cases {
        let (status, body) = org.token_request(&form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(
            body,
            json!({"error": error, "error_description": description}),
            "{form:?}"
        );
    }
    let (status, _) = org
        .token_request(&[
            ("grant_type", "password"),
            ("client_id", &o.client_id),
            ("client_secret", &o.client_secret),
            ("username", &o.username),
            ("password", &good_password),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(org.state.tokens_issued(), 1);
}

fn assertion(key_pem: &str, iss: &str, sub: &str, aud: &str, exp_offset_secs: i64) -> String {
    let claims = json!({
        "iss": iss,
        "sub": sub,
        "aud": aud,
        "exp": chrono::Utc::now().timestamp() + exp_offset_secs,
    });
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

#[tokio::test]
async fn jwt_bearer_grant_checks_signature_issuer_subject_audience_and_expiry() {
    let options = SalesforceOptions {
        jwt_public_key_pem: Some(TEST_PUBLIC_KEY.to_owned()),
        ..SalesforceOptions::default()
    };
    let org = start(SalesforceFixture::default(), options.clone()).await;
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let login = "https://login.salesforce.com";
    let (id, user) = (options.client_id.as_str(), options.username.as_str());
    let good = assertion(TEST_KEY, id, user, login, 180);
    let (status, body) = org
        .token_request(&[("grant_type", grant), ("assertion", &good)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["instance_url"], org.base);

    for (bad, error) in [
        (
            assertion(UNTRUSTED_KEY, id, user, login, 180),
            "invalid_grant",
        ),
        (assertion(TEST_KEY, id, user, login, -5), "invalid_grant"),
        (
            assertion(TEST_KEY, id, user, "https://evil.test", 180),
            "invalid_grant",
        ),
        (
            assertion(TEST_KEY, id, "someone@else", login, 180),
            "invalid_grant",
        ),
        (
            assertion(TEST_KEY, "other-app", user, login, 180),
            "invalid_client_id",
        ),
        ("not.a.jwt".to_owned(), "invalid_grant"),
    ] {
        let (status, body) = org
            .token_request(&[("grant_type", grant), ("assertion", &bad)])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], error, "{body}");
    }
}

#[tokio::test]
async fn an_app_without_a_certificate_refuses_every_assertion() {
    let org = start(SalesforceFixture::default(), SalesforceOptions::default()).await;
    let o = org.state.options().clone();
    let token = assertion(
        TEST_KEY,
        &o.client_id,
        &o.username,
        "https://login.salesforce.com",
        180,
    );
    let (status, body) = org
        .token_request(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &token),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn queries_need_a_live_session() {
    let org = start(
        accounts(1, 0),
        SalesforceOptions {
            token_lifetime: Duration::from_millis(300),
            ..SalesforceOptions::default()
        },
    )
    .await;
    let soql = "SELECT Name FROM Account";
    for token in ["", "00D000000000001!forged"] {
        let (status, code, message) = error_of(org.query(soql, token).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("INVALID_SESSION_ID", "Session expired or invalid")
        );
    }
    let token = org.login().await;
    assert_eq!(org.query(soql, &token).await.status(), StatusCode::OK);
    org.state.expire_all_tokens();
    assert_eq!(
        org.query(soql, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let token = org.login().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, code, _) = error_of(org.query(soql, &token).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID")
    );
}

#[tokio::test]
async fn pages_follow_next_records_url_and_count_child_rows() {
    let org = start(
        accounts(7, 2),
        SalesforceOptions {
            max_batch_size: 6,
            ..SalesforceOptions::default()
        },
    )
    .await;
    let token = org.login().await;
    let soql = "SELECT Name, (SELECT Name FROM Zuora__Subscriptions__r) FROM Account";
    let mut response = org.query(soql, &token).await;
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["sforce-limit-info"]
                .to_str()
                .unwrap()
                .starts_with("api-usage=")
        );
        let page: Value = response.json().await.unwrap();
        pages += 1;
        assert_eq!(page["totalSize"], 7);
        let records = page["records"].as_array().unwrap();
        // Each account costs 3 (itself and 2 subscriptions): 2 per page of 6.
        assert!(records.len() <= 2, "{page}");
        names.extend(
            records
                .iter()
                .map(|r| r["Name"].as_str().unwrap().to_owned()),
        );
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        let next = page["nextRecordsUrl"].as_str().unwrap();
        assert!(next.starts_with("/services/data/v62.0/query/01g"), "{next}");
        response = org.get(next, &token, None).await;
    }
    assert_eq!(pages, 4);
    assert_eq!(names, (0..7).map(|i| format!("A{i}")).collect::<Vec<_>>());
    assert_eq!(org.state.api_usage(), 4);
}

#[tokio::test]
async fn the_batch_size_header_is_clamped_to_salesforce_bounds() {
    let org = start(accounts(450, 0), SalesforceOptions::default()).await;
    let token = org.login().await;
    let page_size = |response: Value| response["records"].as_array().unwrap().len();
    let path = "/services/data/v62.0/query?q=SELECT+Name+FROM+Account";
    let first = org.get(path, &token, Some(50)).await.json().await.unwrap();
    assert_eq!(page_size(first), 200, "below the minimum of 200");
    let first = org.get(path, &token, Some(300)).await.json().await.unwrap();
    assert_eq!(page_size(first), 300);
    let first = org.get(path, &token, None).await.json().await.unwrap();
    assert_eq!(page_size(first), 450, "default 2000");
}

#[tokio::test]
async fn a_truncated_child_set_continues_at_its_own_url_until_the_parent_moves_on() {
    let org = start(
        accounts(3, 5),
        SalesforceOptions {
            max_batch_size: 4,
            child_page_size: 2,
            ..SalesforceOptions::default()
        },
    )
    .await;
    let token = org.login().await;
    let soql = "SELECT Name, (SELECT Name FROM Zuora__Subscriptions__r) FROM Account";
    let page: Value = org.query(soql, &token).await.json().await.unwrap();
    let subs = &page["records"][0]["Zuora__Subscriptions__r"];
    assert_eq!(subs["totalSize"], 5);
    assert_eq!(subs["done"], false);
    assert_eq!(subs["records"].as_array().unwrap().len(), 2);
    let child_url = subs["nextRecordsUrl"].as_str().unwrap().to_owned();

    let rest: Value = org
        .get(&child_url, &token, None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = rest["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A0-S2", "A0-S3", "A0-S4"]);
    assert_eq!(rest["done"], true);

    // Moving the parent cursor on revokes the child cursors of the previous page.
    let next = page["nextRecordsUrl"].as_str().unwrap();
    assert_eq!(org.get(next, &token, None).await.status(), StatusCode::OK);
    let (status, code, _) = error_of(org.get(&child_url, &token, None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR")
    );
}

#[tokio::test]
async fn bad_queries_and_locators_are_array_errors() {
    let org = start(accounts(1, 0), SalesforceOptions::default()).await;
    let token = org.login().await;
    let (status, code, message) =
        error_of(org.query("SELECT Name FRM Account", &token).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "MALFORMED_QUERY")
    );
    assert!(
        message.ends_with("ERROR at Row:1:Column:13\nunexpected token: 'FRM'"),
        "{message}"
    );
    let (_, code, _) = error_of(org.query("SELECT Nmae FROM Account", &token).await).await;
    assert_eq!(code, "INVALID_FIELD");
    let (_, code, _) = error_of(org.query("SELECT Name FROM Acount", &token).await).await;
    assert_eq!(code, "INVALID_TYPE");
    let (status, code, _) =
        error_of(org.get("/services/data/v62.0/query", &token, None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "MALFORMED_QUERY")
    );
    let (status, code, _) = error_of(
        org.get("/services/data/v62.0/query/01gNOPE-200", &token, None)
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR")
    );
    let (status, code, _) = error_of(
        org.get(
            "/services/data/v20.0/query?q=SELECT+Name+FROM+Account",
            &token,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    let (status, code, _) =
        error_of(org.get("/services/data/v62.0/sobjects", &token, None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    let response = org
        .http
        .delete(format!("{}/services/data/v62.0/query", org.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
    );
}

#[tokio::test]
async fn uris_and_headers_over_16_kib_are_refused() {
    let org = start(accounts(1, 0), SalesforceOptions::default()).await;
    let token = org.login().await;
    let prefix = "/salesforce/services/data/v62.0/query?q=";
    // A URI of exactly 16,384 bytes is not too long by itself, but with any header it is
    // over the combined limit.
    let padding = 16_384 - prefix.len();
    let at_limit = format!("/services/data/v62.0/query?q={}", "x".repeat(padding));
    let response = org
        .http
        .get(format!("{}{at_limit}", org.base))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "REQUEST_HEADER_FIELDS_TOO_LARGE"
        )
    );

    let over = format!("/services/data/v62.0/query?q={}", "x".repeat(padding + 1));
    let (status, code, _) = error_of(org.get(&over, &token, None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::URI_TOO_LONG, "URI_TOO_LONG")
    );

    let response = org
        .http
        .get(format!(
            "{}/services/data/v62.0/query?q=SELECT+Name+FROM+Account",
            org.base
        ))
        .bearer_auth(&token)
        .header("X-Padding", "y".repeat(16_300))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // A long but legal request goes through.
    let response = org
        .http
        .get(format!(
            "{}/services/data/v62.0/query?q=SELECT+Name+FROM+Account",
            org.base
        ))
        .bearer_auth(&token)
        .header("X-Padding", "y".repeat(15_000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_daily_request_limit_is_enforced_and_reported() {
    let org = start(
        accounts(1, 0),
        SalesforceOptions {
            daily_api_limit: 2,
            ..SalesforceOptions::default()
        },
    )
    .await;
    let token = org.login().await;
    let soql = "SELECT Name FROM Account";
    let first = org.query(soql, &token).await;
    assert_eq!(first.headers()["sforce-limit-info"], "api-usage=1/2");
    let second = org.query(soql, &token).await;
    assert_eq!(second.headers()["sforce-limit-info"], "api-usage=2/2");
    let third = org.query(soql, &token).await;
    assert_eq!(third.headers()["sforce-limit-info"], "api-usage=2/2");
    let (status, code, message) = error_of(third).await;
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded."
        )
    );
    org.state.reset_api_usage();
    assert_eq!(org.query(soql, &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn edits_between_queries_are_seen_and_dumped() {
    let org = start(accounts(1, 0), SalesforceOptions::default()).await;
    let token = org.login().await;
    org.state.with_objects_mut(|objects| {
        objects
            .get_mut("Account")
            .unwrap()
            .push(json!({"Name": "Late", "Type": "Customer"}));
    });
    let page: Value = org
        .query("SELECT Name FROM Account", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["totalSize"], 2);
    let dump = org.state.dump();
    assert_eq!(dump["objects"]["Account"][1]["Name"], "Late");
    let round_trip: SalesforceFixture = serde_json::from_value(dump).unwrap();
    assert_eq!(round_trip.objects["Account"].len(), 2);
}

#[tokio::test]
async fn query_all_pages_include_deleted_records_and_query_leaves_them_out() {
    let mut fixture = accounts(450, 0);
    for (i, record) in fixture
        .objects
        .get_mut("Account")
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        record["Id"] = json!(format!("001{i:015}"));
    }
    let org = start(fixture, SalesforceOptions::default()).await;
    org.state.advance_clock(Duration::from_secs(60));
    let since = org.state.now();
    org.state.advance_clock(Duration::from_secs(60));
    for i in 0..250 {
        org.state.delete("Account", &format!("001{i:015}")).unwrap();
    }
    let token = org.login().await;
    let soql = format!(
        "SELECT Id, IsDeleted FROM Account WHERE SystemModstamp > {}",
        since.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
    let live = org
        .query(&soql, &token)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(live["totalSize"], 0, "{live}");

    // Salesforce names `/query/` in a queryAll's nextRecordsUrl; it still continues the
    // queryAll, and so does the `/queryAll/{locator}` spelling.
    for (start_path, continue_with_query_all) in [("queryAll", false), ("queryAll/", true)] {
        let first: Value = org
            .http
            .get(format!("{}/services/data/v62.0/{start_path}", org.base))
            .query(&[("q", soql.as_str())])
            .header("Sforce-Query-Options", "batchSize=200")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(first["totalSize"], 250);
        assert_eq!(first["done"], false);
        assert_eq!(first["records"].as_array().unwrap().len(), 200);
        assert_eq!(first["records"][0]["IsDeleted"], true);
        let next = first["nextRecordsUrl"].as_str().unwrap();
        assert!(next.starts_with("/services/data/v62.0/query/01g"), "{next}");
        let path = if continue_with_query_all {
            next.replace("/query/", "/queryAll/")
        } else {
            next.to_owned()
        };
        let rest: Value = org.get(&path, &token, None).await.json().await.unwrap();
        assert_eq!(rest["done"], true, "{path}: {rest}");
        let records = rest["records"].as_array().unwrap();
        assert_eq!(records.len(), 50, "{path}");
        assert!(records.iter().all(|r| r["IsDeleted"] == true));
    }
    // queryAll checks the session like query.
    let refused = org
        .http
        .get(format!("{}/services/data/v62.0/queryAll", org.base))
        .query(&[("q", "SELECT Id FROM Account")])
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
