use serde_json::{Value, json};
use zdsync_sandbox::{Faults, SandboxConfig, ZendeskInstance};

use crate::support::{Harness, empty, fast_config};

fn faulty(faults: Faults, seed: u64) -> SandboxConfig {
    let mut config = fast_config(empty());
    config.faults = faults;
    config.seed = seed;
    config
}

/// The status of each of `n` sequential list calls; 0 for a dropped connection.
async fn statuses(h: &Harness, n: usize) -> Vec<u16> {
    let credentials = h.sandbox.zendesk_credentials(ZendeskInstance::Global);
    let url = h.global().url("/api/v2/organizations");
    let mut seen = Vec::with_capacity(n);
    for _ in 0..n {
        let sent = h
            .http
            .get(&url)
            .basic_auth(
                format!("{}/token", credentials.email),
                Some(&credentials.token),
            )
            .send()
            .await;
        seen.push(sent.map_or(0, |r| r.status().as_u16()));
    }
    seen
}

#[tokio::test]
async fn fractions_are_roughly_honoured_and_repeat_for_a_seed() {
    let faults = Faults {
        zendesk_500: 0.2,
        zendesk_429: 0.1,
        ..Faults::none()
    };
    let first = Harness::with_config(faulty(faults, 42)).await;
    let seen = statuses(&first, 400).await;
    let count = |status| seen.iter().filter(|s| **s == status).count();
    assert!((50..=110).contains(&count(500)), "500s: {}", count(500));
    assert!((20..=65).contains(&count(429)), "429s: {}", count(429));
    assert_eq!(count(500) + count(429) + count(200), 400);

    let again = Harness::with_config(faulty(faults, 42)).await;
    assert_eq!(statuses(&again, 400).await, seen, "same seed, same faults");
    let other = Harness::with_config(faulty(faults, 43)).await;
    assert_ne!(statuses(&other, 400).await, seen);

    let counters = first.sandbox.counters();
    let tally = counters.faulted["global GET /api/v2/organizations"];
    assert_eq!(tally.server_errors as usize, count(500));
    assert_eq!(tally.throttled as usize, count(429));
    assert_eq!(counters.get("global GET /api/v2/organizations"), 400);
}

#[tokio::test]
async fn injected_responses_look_like_the_service() {
    let h = Harness::with_config(faulty(
        Faults {
            zendesk_429: 1.0,
            salesforce_500: 1.0,
            ..Faults::none()
        },
        1,
    ))
    .await;
    let throttled = h.global().get("/api/v2/organizations").await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("1"));
    assert_eq!(throttled.body["error"], json!("APIRateLimitExceeded"));

    let salesforce = h
        .http
        .get(format!(
            "{}/services/data/v62.0/query?q=SELECT+Id+FROM+Account",
            h.sandbox.salesforce_url()
        ))
        .send()
        .await
        .expect("reply");
    assert_eq!(salesforce.status(), 500);
    let body: Value = salesforce.json().await.expect("json");
    assert_eq!(body[0]["errorCode"], json!("UNKNOWN_EXCEPTION"));

    // Slack and the admin routes are never faulted.
    let slack = h
        .http
        .post(h.sandbox.slack_webhook_url())
        .json(&json!({"text": "hi"}))
        .send()
        .await;
    assert_eq!(slack.expect("reply").status(), 200);
    let state = h
        .http
        .get(format!("{}/_sandbox/state", h.sandbox.base_url()))
        .send()
        .await;
    assert_eq!(state.expect("reply").status(), 200);
}

#[tokio::test]
async fn a_dropped_connection_is_a_connection_error_for_the_client() {
    let h = Harness::with_config(faulty(
        Faults {
            zendesk_drop: 1.0,
            ..Faults::none()
        },
        7,
    ))
    .await;
    let credentials = h.sandbox.zendesk_credentials(ZendeskInstance::Global);
    let error = h
        .http
        .post(h.global().url("/api/v2/organizations"))
        .basic_auth(
            format!("{}/token", credentials.email),
            Some(&credentials.token),
        )
        .json(&json!({"organization": {"name": "Never"}}))
        .send()
        .await
        .expect_err("no HTTP response");
    // The request went out and the connection closed before any response came back.
    assert!(
        error.is_request() && !error.is_status() && !error.is_timeout(),
        "{error:?}"
    );
    assert!(
        format!("{error:?}").contains("IncompleteMessage"),
        "{error:?}"
    );
    assert!(
        h.sandbox
            .zendesk(ZendeskInstance::Global)
            .organizations()
            .is_empty()
    );
    assert_eq!(
        h.sandbox.counters().faulted["global POST /api/v2/organizations"].dropped,
        1
    );

    // Faults change at run time, through the handle or the admin route.
    let off = h
        .http
        .put(format!("{}/_sandbox/faults", h.sandbox.base_url()))
        .json(&json!({}))
        .send()
        .await
        .expect("reply");
    assert_eq!(off.status(), 200);
    assert_eq!(h.global().get("/api/v2/organizations").await.status, 200);
    let invalid = h
        .http
        .put(format!("{}/_sandbox/faults", h.sandbox.base_url()))
        .json(&json!({"zendesk_500": 2.0}))
        .send()
        .await
        .expect("reply");
    assert_eq!(invalid.status(), 400);
    assert!(
        h.sandbox
            .set_faults(Faults {
                salesforce_drop: -0.1,
                ..Faults::none()
            })
            .is_err()
    );
}

#[tokio::test]
async fn counters_key_requests_by_instance_method_and_route() {
    let h = Harness::start(empty()).await;
    let org = h.global().create_org(json!({"name": "Counted"})).await;
    h.global()
        .get(&format!("/api/v2/organizations/{}.json", org["id"]))
        .await;
    h.global()
        .run_job(
            "PUT",
            "/api/v2/organizations/update_many",
            json!({"organizations": [{"id": org["id"], "notes": "x"}]}),
        )
        .await;
    h.usgov().get("/api/v2/users").await;

    let counters = h.sandbox.counters();
    assert_eq!(counters.get("global POST /api/v2/organizations"), 1);
    assert_eq!(counters.get("global GET /api/v2/organizations/{id}"), 1);
    assert_eq!(
        counters.get("global PUT /api/v2/organizations/update_many"),
        1
    );
    assert!(counters.get("global GET /api/v2/job_statuses/{id}") >= 1);
    assert_eq!(counters.get("usgov GET /api/v2/users"), 1);
    assert_eq!(counters.zendesk_write_calls(ZendeskInstance::Global), 2);
    assert_eq!(counters.zendesk_write_calls(ZendeskInstance::Usgov), 0);
    assert_eq!(counters.total("usgov"), 1);

    let over_http: Value = h.admin("counters").await;
    assert_eq!(over_http["requests"]["usgov GET /api/v2/users"], json!(1));
    assert!(
        over_http["requests"]
            .get("global GET /_sandbox/counters")
            .is_none()
    );

    let reset = h
        .http
        .post(format!("{}/_sandbox/reset-counters", h.sandbox.base_url()))
        .send()
        .await;
    assert_eq!(reset.expect("reply").status(), 204);
    assert_eq!(h.sandbox.counters().total("global"), 0);
}

#[tokio::test]
async fn the_dump_holds_everything_a_test_asserts_on() {
    let h = Harness::start(empty()).await;
    let org = h
        .usgov()
        .create_org(json!({"name": "Dumped", "organization_fields": {"bogus": 1}}))
        .await;
    let user = h
        .usgov()
        .create_user(json!({"name": "U", "email": "u@x.example", "organization_id": org["id"], "nickname": "x"}))
        .await;
    h.http
        .post(h.sandbox.slack_webhook_url())
        .json(&json!({"text": "dumped"}))
        .send()
        .await
        .expect("reply");
    let dump = h.sandbox.dump_state();
    let usgov = &dump["zendesk"]["usgov"];
    assert_eq!(usgov["organizations"][0]["name"], json!("Dumped"));
    assert_eq!(usgov["users"][0]["id"], user["id"]);
    assert_eq!(
        usgov["organization_memberships"][0]["organization_id"],
        org["id"]
    );
    assert_eq!(
        usgov["ignored_fields"],
        json!({"organization_fields.bogus": 1, "user.nickname": 1})
    );
    assert_eq!(usgov["bulk_user_import"], json!(true));
    assert!(usgov["credentials"]["token"].is_string());
    assert!(
        dump["zendesk"]["global"]["organizations"]
            .as_array()
            .expect("orgs")
            .is_empty()
    );
    assert_eq!(dump["slack"]["messages"][0]["text"], json!("dumped"));
    assert_eq!(
        dump["counters"]["requests"]["usgov POST /api/v2/users"],
        json!(1)
    );
    assert!(dump["salesforce"].is_object());
    let over_http: Value = h.admin("state").await;
    assert_eq!(
        over_http["zendesk"]["usgov"]["organizations"],
        usgov["organizations"]
    );
}

/// A request whose connection may close without an answer: `Err` then.
async fn try_send(
    h: &Harness,
    instance: ZendeskInstance,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<u16, reqwest::Error> {
    let credentials = h.sandbox.zendesk_credentials(instance);
    let mut request = h
        .http
        .request(method, h.zendesk(instance).url(path))
        .basic_auth(
            format!("{}/token", credentials.email),
            Some(&credentials.token),
        );
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.map(|r| r.status().as_u16())
}

/// Waits (up to 5 s) until `instance` holds an organization named `name`.
async fn wait_for_org(h: &Harness, instance: ZendeskInstance, name: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let orgs = h.sandbox.zendesk(instance).organizations();
        if let Some(org) = orgs.into_iter().find(|o| o["name"] == json!(name)) {
            return org;
        }
        assert!(std::time::Instant::now() < deadline, "{name} never landed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn faults_scoped_to_one_endpoint_spare_every_other_request() {
    let faults = Faults::parse("lost=1.0,only=organizations/create_many").expect("valid");
    let h = Harness::with_config(faulty(faults, 5)).await;
    let zd = h.global();
    // Out of scope: a single create, list and show are answered.
    let org = zd.create_org(json!({"name": "Single"})).await;

    for (instance, path, name) in [
        (
            ZendeskInstance::Global,
            "/api/v2/organizations/create_many",
            "Bulk",
        ),
        (
            ZendeskInstance::Usgov,
            "/api/v2/organizations/create_many.json",
            "Bulk US",
        ),
    ] {
        let sent = try_send(
            &h,
            instance,
            reqwest::Method::POST,
            path,
            Some(json!({"organizations": [{"name": name}]})),
        )
        .await;
        let error = sent.expect_err("the answer is lost");
        assert!(error.is_request() && !error.is_status(), "{error:?}");
        // The job was queued and runs: the organization lands.
        wait_for_org(&h, instance, name).await;
    }
    let jobs = h.sandbox.zendesk(ZendeskInstance::Global).jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["job_type"], json!("OrganizationBulkCreateJob"));

    let list = zd.get("/api/v2/organizations").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["count"], json!(2));
    let shown = zd
        .get(&format!("/api/v2/organizations/{}.json", org["id"]))
        .await;
    assert_eq!(shown.status, 200);
    let job_id = jobs[0]["id"].as_str().expect("job id");
    assert_eq!(
        zd.get(&format!("/api/v2/job_statuses/{job_id}"))
            .await
            .status,
        200
    );

    let counters = h.sandbox.counters();
    let faulted: Vec<&String> = counters.faulted.keys().collect();
    assert_eq!(
        faulted,
        vec![
            "global POST /api/v2/organizations/create_many",
            "usgov POST /api/v2/organizations/create_many"
        ]
    );
    assert_eq!(
        counters.faulted["global POST /api/v2/organizations/create_many"].lost,
        1
    );
}

#[tokio::test]
async fn the_admin_route_sets_a_scope_with_record_ids() {
    let h = Harness::start(empty()).await;
    let org = h.global().create_org(json!({"name": "Shown"})).await;
    let set = h
        .http
        .put(format!("{}/_sandbox/faults", h.sandbox.base_url()))
        .json(&json!({"zendesk_500": 1.0, "zendesk_only": "/api/v2/organizations/{id}"}))
        .send()
        .await
        .expect("reply");
    assert_eq!(set.status(), 200);
    assert_eq!(
        h.sandbox.faults().zendesk_only.map(|e| e.to_string()),
        Some("organizations/{id}".to_owned())
    );
    let current: Value = h.admin("faults").await;
    assert_eq!(current["zendesk_only"], json!("organizations/{id}"));

    let shown = h
        .global()
        .get(&format!("/api/v2/organizations/{}", org["id"]))
        .await;
    assert_eq!(shown.status, 500);
    assert_eq!(h.global().get("/api/v2/organizations").await.status, 200);
    assert_eq!(
        h.usgov().get("/api/v2/organizations/1.json").await.status,
        500
    );

    let empty_scope = h
        .http
        .put(format!("{}/_sandbox/faults", h.sandbox.base_url()))
        .json(&json!({"zendesk_500": 1.0, "zendesk_only": ""}))
        .send()
        .await
        .expect("reply");
    assert_eq!(empty_scope.status(), 400);
}

#[tokio::test]
async fn a_scoped_endpoint_meets_the_same_faults_whatever_else_is_called() {
    let faults = Faults {
        zendesk_500: 0.5,
        zendesk_only: Some("organizations".parse().expect("a path")),
        ..Faults::none()
    };
    // The scoped endpoint alone, then interleaved with calls outside the scope.
    let alone = Harness::with_config(faulty(faults, 11)).await;
    let seen = statuses(&alone, 40).await;
    assert!(seen.contains(&500) && seen.contains(&200), "{seen:?}");
    let busy = Harness::with_config(faulty(faults, 11)).await;
    let mut interleaved = Vec::new();
    for _ in 0..40 {
        assert_eq!(busy.global().get("/api/v2/users").await.status, 200);
        interleaved.extend(statuses(&busy, 1).await);
    }
    assert_eq!(interleaved, seen);
}
