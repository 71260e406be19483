//! The Zendesk client against the sandbox's Zendesk emulator over real HTTP: paging, auth,
//! throttling, job pacing, outages, per-record results and the users 403 fallback.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use zdsync::config::Secret;
use zdsync::zendesk::{
    ItemError, ItemOutcome, RetryPolicy, ZendeskClient, ZendeskConfig, ZendeskError,
};
use zdsync_sandbox::{Faults, Fixture, Sandbox, SandboxConfig, ZendeskInstance};

const GLOBAL: ZendeskInstance = ZendeskInstance::Global;
const USGOV: ZendeskInstance = ZendeskInstance::Usgov;

async fn sandbox_with(adjust: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let mut config = SandboxConfig::new(Fixture::default());
    config.job_delay = Duration::from_millis(60);
    adjust(&mut config);
    Sandbox::start(config).await.expect("sandbox starts")
}

async fn sandbox() -> Sandbox {
    sandbox_with(|_| {}).await
}

/// Fast retries and polls, so the suite stays quick.
fn config(sandbox: &Sandbox, instance: ZendeskInstance) -> ZendeskConfig {
    let credentials = sandbox.zendesk_credentials(instance);
    ZendeskConfig {
        retry: RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
        },
        job_poll_min: Duration::from_millis(10),
        job_poll_max: Duration::from_millis(80),
        job_timeout: Duration::from_secs(20),
        // The sandbox is these tests' alone (the share's own tests set theirs).
        max_requests_per_minute: Some(600_000),
        ..ZendeskConfig::new(
            sandbox.zendesk_url(instance),
            credentials.email,
            Secret::new(credentials.token),
            25,
        )
    }
}

fn client(sandbox: &Sandbox, instance: ZendeskInstance) -> ZendeskClient {
    ZendeskClient::new(config(sandbox, instance)).expect("valid config")
}

fn org_items(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "name": format!("{prefix} {i:04}"),
                "organization_fields": {"support_level": "gold"},
            })
        })
        .collect()
}

fn id_of(record: &Value) -> u64 {
    record["id"].as_u64().expect("record id")
}

/// The created ids, asserting every item succeeded.
fn all_ids(outcomes: &[ItemOutcome]) -> Vec<u64> {
    outcomes
        .iter()
        .enumerate()
        .map(|(position, outcome)| {
            assert_eq!(outcome.index, position, "outcomes are in item order");
            match &outcome.result {
                Ok(Some(id)) => *id,
                other => panic!("item {position}: {other:?}"),
            }
        })
        .collect()
}

/// The errors of the items that failed, by index.
fn errors(outcomes: &[ItemOutcome]) -> BTreeMap<usize, ItemError> {
    outcomes
        .iter()
        .filter_map(|o| o.result.clone().err().map(|e| (o.index, e)))
        .collect()
}

fn names_by_id(sandbox: &Sandbox, instance: ZendeskInstance) -> BTreeMap<u64, String> {
    sandbox
        .zendesk(instance)
        .organizations()
        .iter()
        .map(|org| (id_of(org), org["name"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn lists_every_organization_and_user_exactly_once_across_cursor_pages() {
    let sandbox = sandbox().await;
    let zendesk = sandbox.zendesk(GLOBAL);
    for i in 0..250 {
        zendesk
            .insert_organization(json!({
                "name": format!("Org {i}"),
                "organization_fields": {"am_project_id": format!("p{i}")},
            }))
            .unwrap();
    }
    for i in 0..230 {
        let email = format!("user{i}@customer.example");
        zendesk
            .insert_user(json!({"name": format!("User {i}"), "email": email, "role": "end-user"}))
            .unwrap();
    }
    for i in 0..20 {
        let email = format!("agent{i}@support.example");
        zendesk
            .insert_user(json!({"name": format!("Agent {i}"), "email": email, "role": "agent"}))
            .unwrap();
    }
    let client = client(&sandbox, GLOBAL);

    let orgs = client.list_organizations().await.unwrap();
    let listed: BTreeSet<u64> = orgs.iter().map(|o| o["id"].as_u64().unwrap()).collect();
    let stored: BTreeSet<u64> = zendesk.organizations().iter().map(id_of).collect();
    assert_eq!(orgs.len(), 250, "each organization exactly once");
    assert_eq!(listed, stored);
    // Attributes the client knows nothing about come through untouched.
    let first = &orgs[0];
    assert!(first.contains_key("url") && first.contains_key("shared_tickets"));
    assert_eq!(first["organization_fields"]["am_project_id"], json!("p0"));

    let end_users = client.list_users(Some("end-user")).await.unwrap();
    let emails: BTreeSet<&str> = end_users
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!((end_users.len(), emails.len()), (230, 230));
    assert!(end_users.iter().all(|u| u["role"] == json!("end-user")));
    let everyone = client.list_users(None).await.unwrap();
    assert_eq!(everyone.len(), 250);

    let counters = sandbox.counters();
    assert_eq!(counters.get("global GET /api/v2/organizations"), 3);
    assert_eq!(counters.get("global GET /api/v2/users"), 6);
}

#[tokio::test]
async fn a_wrong_token_is_auth_failed_and_never_shown() {
    let sandbox = sandbox().await;
    let config = ZendeskConfig {
        token: Secret::new("wr0ng-t0ken"),
        ..config(&sandbox, GLOBAL)
    };
    let client = ZendeskClient::new(config).unwrap();
    let error = client.list_organizations().await.unwrap_err();
    assert!(
        matches!(&error, ZendeskError::AuthFailed { message } if message.contains("Couldn't authenticate you")),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    let shown = format!("{error} {error:?} {client:?}");
    assert!(!shown.contains("wr0ng-t0ken"), "{shown}");
    assert_eq!(client.request_counts().requests, 1, "401 is not retried");
}

#[tokio::test]
async fn a_429_waits_exactly_retry_after_then_succeeds() {
    let sandbox = sandbox_with(|c| {
        c.zendesk_rate_limit_per_minute = 2;
        c.zendesk_rate_limit_window = Duration::from_secs(1);
    })
    .await;
    let client = client(&sandbox, GLOBAL);
    client.list_organizations().await.unwrap();
    client.list_organizations().await.unwrap();

    let started = Instant::now();
    client.list_organizations().await.unwrap();
    let waited = started.elapsed();

    // The window opened with the first call; the third is told `Retry-After: 1`.
    eprintln!("429 with Retry-After: 1 → the call took {waited:?}");
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
    let counts = client.request_counts();
    assert_eq!((counts.rate_limited, counts.retries), (1, 1));
}

#[tokio::test]
async fn throttling_that_persists_gives_up_as_retryable() {
    let sandbox = sandbox().await;
    sandbox
        .set_faults(Faults {
            zendesk_429: 1.0,
            ..Faults::none()
        })
        .unwrap();
    let config = ZendeskConfig {
        retry: RetryPolicy {
            max_retries: 1,
            ..config(&sandbox, GLOBAL).retry
        },
        ..config(&sandbox, GLOBAL)
    };
    let client = ZendeskClient::new(config).unwrap();
    let started = Instant::now();
    let error = client.list_organizations().await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        matches!(error, ZendeskError::RateLimited { retry_after: Some(wait), .. } if wait == Duration::from_secs(1)),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(client.request_counts().requests, 2);
}

#[tokio::test]
async fn outages_and_dropped_connections_are_retried_to_a_correct_end() {
    let sandbox = sandbox_with(|c| c.seed = 7).await;
    sandbox
        .set_faults(Faults {
            zendesk_500: 0.15,
            zendesk_drop: 0.1,
            ..Faults::none()
        })
        .unwrap();
    let config = ZendeskConfig {
        retry: RetryPolicy {
            max_retries: 10,
            ..config(&sandbox, GLOBAL).retry
        },
        ..config(&sandbox, GLOBAL)
    };
    let client = ZendeskClient::new(config).unwrap();

    let ids = all_ids(
        &client
            .create_organizations(org_items("Flaky", 250))
            .await
            .unwrap(),
    );
    let updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "organization_fields": {"support_level": "ultimate"}}))
        .collect();
    let updated = all_ids(&client.update_organizations(updates).await.unwrap());
    assert_eq!(updated, ids);
    let listed = client.list_organizations().await.unwrap();

    assert_eq!(listed.len(), 250);
    assert!(
        listed
            .iter()
            .all(|o| o["organization_fields"]["support_level"] == json!("ultimate"))
    );
    let counters = sandbox.counters();
    assert!(counters.faulted_total() > 0, "faults were injected");
    assert!(client.request_counts().retries >= counters.faulted_total());
    // Faulted writes never reached the emulated API, so each chunk became exactly one job.
    assert_eq!(sandbox.zendesk(GLOBAL).jobs().len(), 6);
}

#[tokio::test]
async fn an_outage_that_persists_is_transient_and_retryable() {
    let sandbox = sandbox().await;
    sandbox
        .set_faults(Faults {
            zendesk_500: 1.0,
            ..Faults::none()
        })
        .unwrap();
    let client = client(&sandbox, GLOBAL);
    let error = client.list_users(None).await.unwrap_err();
    assert!(matches!(error, ZendeskError::Transient { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(
        client.request_counts().requests,
        5,
        "first try plus 4 retries"
    );
}

#[tokio::test]
async fn creating_250_orgs_takes_three_jobs_polled_only_with_show_many() {
    let sandbox = sandbox_with(|c| c.job_delay = Duration::from_millis(200)).await;
    let client = client(&sandbox, GLOBAL);

    let outcomes = client
        .create_organizations(org_items("Acme", 250))
        .await
        .unwrap();

    let ids = all_ids(&outcomes);
    let stored = names_by_id(&sandbox, GLOBAL);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            stored[id],
            format!("Acme {i:04}"),
            "item {i} has its own id"
        );
    }
    let counters = sandbox.counters();
    let polls = counters.get("global GET /api/v2/job_statuses/show_many");
    eprintln!(
        "250 creates: {} create_many calls, {polls} show_many polls, {} single job GETs",
        counters.get("global POST /api/v2/organizations/create_many"),
        counters.get("global GET /api/v2/job_statuses/{id}")
    );
    assert_eq!(
        counters.get("global POST /api/v2/organizations/create_many"),
        3
    );
    assert_eq!(counters.get("global GET /api/v2/job_statuses/{id}"), 0);
    assert!((1..=8).contains(&polls), "{polls} polls");
    let counts = client.request_counts();
    assert_eq!((counts.jobs_submitted, counts.job_polls), (3, polls));

    let updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "organization_fields": {"support_level": "premium"}}))
        .collect();
    all_ids(&client.update_organizations(updates).await.unwrap());
    assert_eq!(
        sandbox
            .counters()
            .get("global PUT /api/v2/organizations/update_many"),
        3
    );
}

#[tokio::test]
async fn the_clients_own_job_cap_holds_jobs_back_in_waves() {
    let job_delay = Duration::from_millis(120);
    let sandbox = sandbox_with(|c| c.job_delay = job_delay).await;
    let config = ZendeskConfig {
        max_inflight_jobs: 2,
        ..config(&sandbox, GLOBAL)
    };
    let client = ZendeskClient::new(config).unwrap();

    let started = Instant::now();
    let outcomes = client
        .create_organizations(org_items("Wave", 600))
        .await
        .unwrap();
    let elapsed = started.elapsed();

    all_ids(&outcomes);
    // Six jobs, at most two at a time: three waves, none shorter than a job.
    assert!(elapsed >= 3 * job_delay, "{elapsed:?}");
    assert_eq!(client.request_counts().too_many_jobs, 0);
    assert_eq!(sandbox.zendesk(GLOBAL).jobs().len(), 6);
}

#[tokio::test]
async fn too_many_jobs_loses_and_duplicates_nothing() {
    let sandbox = sandbox_with(|c| {
        c.max_inflight_jobs = 3;
        c.job_delay = Duration::from_millis(150);
    })
    .await;
    // Two clients of one account race for its three job slots.
    let (first, second) = (client(&sandbox, GLOBAL), client(&sandbox, GLOBAL));

    let (a, b) = tokio::join!(
        first.create_organizations(org_items("First", 500)),
        second.create_organizations(org_items("Second", 500)),
    );

    let (a, b) = (all_ids(&a.unwrap()), all_ids(&b.unwrap()));
    let stored = names_by_id(&sandbox, GLOBAL);
    assert_eq!(stored.len(), 1000);
    for (prefix, ids) in [("First", &a), ("Second", &b)] {
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(stored[id], format!("{prefix} {i:04}"));
        }
    }
    let refused = first.request_counts().too_many_jobs + second.request_counts().too_many_jobs;
    eprintln!("two clients, 3 job slots: {refused} TooManyJobs refusals, all resubmitted");
    assert!(refused > 0, "the race for slots produced TooManyJobs");
    assert_eq!(
        sandbox.zendesk(GLOBAL).jobs().len(),
        10,
        "one job per chunk"
    );
}

#[tokio::test]
async fn with_every_slot_held_by_others_submission_backs_off_until_one_frees() {
    let sandbox = sandbox_with(|c| {
        c.max_inflight_jobs = 1;
        c.job_delay = Duration::from_millis(200);
    })
    .await;
    // Long enough a backoff to outlast the other client's job.
    let patient = || {
        let config = ZendeskConfig {
            retry: RetryPolicy {
                max_retries: 8,
                min_delay: Duration::from_millis(30),
                max_delay: Duration::from_millis(120),
            },
            ..config(&sandbox, GLOBAL)
        };
        ZendeskClient::new(config).unwrap()
    };
    let (first, second) = (patient(), patient());

    // Each holds no job when the other's takes the account's only slot.
    let (a, b) = tokio::join!(
        first.create_organizations(org_items("First", 100)),
        second.create_organizations(org_items("Second", 100)),
    );

    all_ids(&a.unwrap());
    all_ids(&b.unwrap());
    let refused = first.request_counts().too_many_jobs + second.request_counts().too_many_jobs;
    assert!(refused >= 1, "one of them met TooManyJobs");
    assert_eq!(sandbox.zendesk(GLOBAL).organizations().len(), 200);
    assert_eq!(sandbox.zendesk(GLOBAL).jobs().len(), 2);
}

#[tokio::test]
async fn per_record_errors_come_back_at_their_index() {
    let sandbox = sandbox().await;
    sandbox
        .zendesk(GLOBAL)
        .insert_organization(json!({"name": "Existing Co"}))
        .unwrap();
    let client = client(&sandbox, GLOBAL);
    let mut items = org_items("Org", 150);
    items[7]["name"] = json!("Org 0005");
    items[42]["organization_fields"]["support_level"] = json!("platinum");
    items[130]["name"] = json!("existing co ");

    let outcomes = client.create_organizations(items).await.unwrap();

    let failed = errors(&outcomes);
    assert_eq!(failed.keys().copied().collect::<Vec<_>>(), [7, 42, 130]);
    assert_eq!(failed[&7].error, "DuplicateValue");
    assert_eq!(failed[&42].error, "InvalidValue");
    assert!(failed[&42].details.as_deref().unwrap().contains("platinum"));
    assert_eq!(failed[&130].error, "DuplicateValue");
    let stored = names_by_id(&sandbox, GLOBAL);
    assert_eq!(stored.len(), 1 + 147);
    let id = |index: usize| outcomes[index].result.clone().unwrap().unwrap();
    assert_eq!(stored[&id(5)], "Org 0005");
    assert_eq!(stored[&id(149)], "Org 0149");

    let updates = vec![
        json!({"id": id(0), "organization_fields": {"support_level": "ultimate"}}),
        json!({"id": 987_654_321, "notes": "nobody"}),
        json!({"id": id(1), "organization_fields": {"support_level": "bogus"}}),
        json!({"id": id(2), "name": "Org 0000"}),
    ];
    let outcomes = client.update_organizations(updates).await.unwrap();

    assert_eq!(outcomes[0].result, Ok(Some(id(0))));
    let failed = errors(&outcomes);
    assert_eq!(failed.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(failed[&1].error, "RecordNotFound");
    assert_eq!(failed[&2].error, "InvalidValue");
    assert_eq!(failed[&3].error, "DuplicateValue");
    let zendesk = sandbox.zendesk(GLOBAL);
    let level =
        |id| zendesk.organization(id).unwrap()["organization_fields"]["support_level"].clone();
    assert_eq!(level(id(0)), json!("ultimate"));
    assert_eq!(
        level(id(1)),
        json!("gold"),
        "a rejected update changes nothing"
    );
}

#[tokio::test]
async fn users_are_created_and_updated_in_bulk_with_per_record_errors() {
    let sandbox = sandbox().await;
    let client = client(&sandbox, USGOV);
    let users: Vec<Value> = (0..120)
        .map(|i| json!({"name": format!("Contact {i}"), "email": format!("c{i}@fed.example")}))
        .collect();

    let created = client.create_users(users).await.unwrap();

    assert!(!created.fell_back_to_single_creates);
    let ids = all_ids(&created.outcomes);
    assert_eq!(
        sandbox
            .counters()
            .get("usgov POST /api/v2/users/create_many"),
        2
    );
    assert_eq!(sandbox.counters().get("usgov POST /api/v2/users"), 0);

    let updates = vec![
        json!({"id": ids[0], "user_fields": {"not_in_sfdc": true}}),
        json!({"id": 987_654_321, "name": "Ghost"}),
        json!({"id": ids[119], "name": "Renamed"}),
    ];
    let outcomes = client.update_users(updates).await.unwrap();
    assert_eq!(outcomes[0].result, Ok(Some(ids[0])));
    assert_eq!(errors(&outcomes)[&1].error, "RecordNotFound");
    assert_eq!(outcomes[2].result, Ok(Some(ids[119])));
    let zendesk = sandbox.zendesk(USGOV);
    assert_eq!(
        zendesk.user_by_email("c0@fed.example").unwrap()["user_fields"]["not_in_sfdc"],
        json!(true)
    );
    assert_eq!(
        zendesk.user_by_email("c119@fed.example").unwrap()["name"],
        json!("Renamed")
    );
}

#[tokio::test]
async fn without_bulk_import_users_are_created_one_by_one() {
    let sandbox = sandbox().await;
    let zendesk = sandbox.zendesk(USGOV);
    zendesk.set_bulk_user_import(false);
    let org = id_of(
        &zendesk
            .insert_organization(json!({"name": "Agency"}))
            .unwrap(),
    );
    zendesk
        .insert_user(json!({"name": "Taken", "email": "taken@fed.example"}))
        .unwrap();
    let client = client(&sandbox, USGOV);
    let users: Vec<Value> = ["a", "b", "c", "TAKEN", "d"]
        .iter()
        .map(|who| {
            json!({"name": who, "email": format!("{who}@fed.example"), "organization_id": org})
        })
        .collect();

    let created = client.create_users(users).await.unwrap();

    assert!(created.fell_back_to_single_creates);
    let failed = errors(&created.outcomes);
    assert_eq!(failed.keys().copied().collect::<Vec<_>>(), [3]);
    assert_eq!(failed[&3].error, "DuplicateValue");
    for (index, who) in [(0, "a"), (1, "b"), (2, "c"), (4, "d")] {
        let stored = zendesk
            .user_by_email(&format!("{who}@fed.example"))
            .unwrap();
        assert_eq!(created.outcomes[index].result, Ok(Some(id_of(&stored))));
        assert_eq!(stored["organization_id"], json!(org));
    }
    let counters = sandbox.counters();
    assert_eq!(counters.get("usgov POST /api/v2/users/create_many"), 1);
    assert_eq!(counters.get("usgov POST /api/v2/users"), 5);
}

#[tokio::test]
async fn a_job_whose_status_vanishes_fails_each_of_its_items() {
    let sandbox = sandbox_with(|c| {
        c.job_delay = Duration::from_millis(300);
        c.job_ttl = Duration::from_millis(30);
    })
    .await;
    let client = client(&sandbox, GLOBAL);

    let outcomes = client
        .create_organizations(org_items("Lost", 3))
        .await
        .unwrap();

    let failed = errors(&outcomes);
    assert_eq!(failed.len(), 3, "{outcomes:?}");
    assert!(failed.values().all(|e| e.error == ItemError::JOB_VANISHED));
}

#[tokio::test]
async fn memberships_are_added_and_existing_ones_tolerated() {
    let sandbox = sandbox().await;
    let zendesk = sandbox.zendesk(GLOBAL);
    let home = id_of(
        &zendesk
            .insert_organization(json!({"name": "Home"}))
            .unwrap(),
    );
    let new = id_of(&zendesk.insert_organization(json!({"name": "New"})).unwrap());
    let user = id_of(
        &zendesk
            .insert_user(json!({"name": "Sam", "email": "sam@x.example", "organization_id": home}))
            .unwrap(),
    );
    let client = client(&sandbox, GLOBAL);

    // In bulk, as a job; the second time the user already is a member: done, not an error.
    for _ in 0..2 {
        let outcomes = client
            .create_organization_memberships(&[(user, new)])
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 1);
        assert!(outcomes[0].result.is_ok(), "{outcomes:?}");
    }

    let orgs_of_user: BTreeSet<u64> = zendesk
        .organization_memberships()
        .iter()
        .filter(|m| m["user_id"] == json!(user))
        .map(|m| m["organization_id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        orgs_of_user,
        BTreeSet::from([home, new]),
        "home membership kept"
    );
    // A user who does not exist is that item's error; the others of the job are applied.
    let other = id_of(
        &zendesk
            .insert_user(json!({"name": "Kim", "email": "kim@x.example"}))
            .unwrap(),
    );
    let outcomes = client
        .create_organization_memberships(&[(987_654_321, new), (other, new)])
        .await
        .unwrap();
    let failed = errors(&outcomes);
    assert_eq!(failed.len(), 1, "{outcomes:?}");
    assert_eq!(failed[&0].error, "InvalidValue", "{outcomes:?}");
    assert!(outcomes[1].result.is_ok(), "{outcomes:?}");
    assert_eq!(
        zendesk.user_by_email("kim@x.example").unwrap()["organization_id"],
        json!(new)
    );
}

#[tokio::test]
async fn searches_match_exactly() {
    let sandbox = sandbox().await;
    let zendesk = sandbox.zendesk(GLOBAL);
    let acme = id_of(
        &zendesk
            .insert_organization(json!({"name": "Acme Corp"}))
            .unwrap(),
    );
    zendesk
        .insert_organization(json!({"name": "Acme Corporation"}))
        .unwrap();
    let pat = id_of(
        &zendesk
            .insert_user(json!({"name": "Pat", "email": "pat@acme.example"}))
            .unwrap(),
    );
    zendesk
        .insert_user(json!({
            "name": "Pat Two",
            "email": "pat.two@acme.example",
            "notes": "pat@acme.example",
        }))
        .unwrap();
    let client = client(&sandbox, GLOBAL);

    let found = client
        .search_organizations_by_name("acme corp")
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|o| o["id"].clone()).collect::<Vec<_>>(),
        [json!(acme)]
    );
    assert!(
        client
            .search_organizations_by_name("Nobody")
            .await
            .unwrap()
            .is_empty()
    );

    let user: Map<String, Value> = client
        .search_user_by_email("PAT@acme.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user["id"], json!(pat));
    assert_eq!(
        client
            .search_user_by_email("nobody@acme.example")
            .await
            .unwrap(),
        None
    );
}

/// SPEC §8: a job's time counts from when Zendesk starts working it. 25 jobs worked one at a
/// time, each working longer than the timeout ÷ 25: the last sits queued far past the timeout,
/// yet none is given up while it waits its turn.
#[tokio::test]
async fn jobs_worked_one_at_a_time_are_never_timed_out_while_queued() {
    let sandbox = sandbox_with(|c| {
        c.job_workers = 1;
        c.job_delay = Duration::from_millis(80);
    })
    .await;
    let config = ZendeskConfig {
        // 25 jobs × 40 ms of work each is a second; the timeout is a third of that.
        job_timeout: Duration::from_millis(330),
        ..config(&sandbox, GLOBAL)
    };
    let client = ZendeskClient::new(config).unwrap();
    let started = Instant::now();
    let outcomes = client
        .create_organizations(org_items("Queued", 2_500))
        .await
        .unwrap();
    assert!(
        started.elapsed() > Duration::from_millis(900),
        "the jobs were worked one at a time"
    );
    assert_eq!(all_ids(&outcomes).len(), 2_500);
}

/// SPEC §8: a create job whose answer was lost is looked for among the account's recent jobs
/// and followed; only a submission that never landed is sent again, and nothing is created
/// twice.
#[tokio::test]
async fn a_create_job_whose_answer_was_lost_is_found_not_sent_again() {
    let sandbox = sandbox_with(|c| c.seed = 11).await;
    sandbox
        .set_faults(Faults {
            zendesk_lost: 0.4,
            zendesk_500: 0.2,
            zendesk_only: Some("organizations/create_many".parse().unwrap()),
            ..Faults::none()
        })
        .unwrap();
    let client = client(&sandbox, GLOBAL);
    let write = client
        .write_many(
            zdsync::zendesk::BulkKind::CreateOrganizations,
            org_items("Lost", 1_000),
            zdsync::zendesk::BulkOptions::default(),
        )
        .await
        .unwrap();
    let ids: BTreeSet<u64> = write
        .outcomes
        .iter()
        .map(|o| o.result.clone().unwrap().unwrap())
        .collect();
    assert_eq!(ids.len(), 1_000);
    let counters = sandbox.counters();
    let faulted = &counters.faulted;
    let lost: u64 = faulted.values().map(|t| t.lost).sum();
    let failed: u64 = faulted.values().map(|t| t.total()).sum();
    assert!(lost >= 1 && failed >= 1, "{faulted:#?}");
    // Every lost answer whose job landed was found; the 500s never landed and were sent again,
    // each with exactly its own 100 creates.
    assert_eq!(
        write.lost.submissions as u64,
        lost + failed,
        "{:?}",
        write.lost
    );
    assert_eq!(write.lost.found as u64, lost, "{:?}", write.lost);
    assert_eq!(write.lost.resubmitted_items as u64, failed * 100);
    let zendesk = sandbox.zendesk(GLOBAL);
    assert_eq!(zendesk.organizations().len(), 1_000, "no org created twice");
    assert_eq!(zendesk.jobs().len(), 10, "one job per 100 creates");
}

/// Jobs accepted earlier are followed, not sent again; a deadline leaves running jobs open
/// (their ids handed back) and the rest unsent.
#[tokio::test]
async fn a_deadline_leaves_jobs_open_and_a_later_call_follows_them() {
    let sandbox = sandbox_with(|c| c.job_delay = Duration::from_millis(600)).await;
    let client = client(&sandbox, GLOBAL);
    let accepted = std::sync::Mutex::new(Vec::new());
    struct Recorder<'a>(&'a std::sync::Mutex<Vec<zdsync::zendesk::AcceptedJob>>);
    #[async_trait::async_trait]
    impl zdsync::zendesk::JobWatcher for Recorder<'_> {
        async fn accepted(&self, job: &zdsync::zendesk::AcceptedJob) {
            self.0.lock().unwrap().push(job.clone());
        }
    }
    let recorder = Recorder(&accepted);
    let first = client
        .write_many(
            zdsync::zendesk::BulkKind::CreateOrganizations,
            org_items("Open", 250),
            zdsync::zendesk::BulkOptions {
                watcher: Some(&recorder),
                deadline: Some(Instant::now() + Duration::from_millis(200)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        first.outcomes.is_empty(),
        "nothing finished by the deadline"
    );
    assert_eq!(first.open.len(), 3);
    assert_eq!(
        *accepted.lock().unwrap(),
        first.open,
        "each job told as accepted"
    );
    let second = client
        .write_many(
            zdsync::zendesk::BulkKind::CreateOrganizations,
            org_items("Open", 250),
            zdsync::zendesk::BulkOptions {
                adopt: first.open.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.outcomes.len(), 250);
    assert!(second.outcomes.iter().all(|o| o.result.is_ok()));
    assert_eq!(sandbox.zendesk(GLOBAL).jobs().len(), 3, "no job sent twice");
    assert_eq!(sandbox.zendesk(GLOBAL).organizations().len(), 250);
}

/// SPEC §8: a client keeps to its share of the account's rate limit, spacing its requests
/// evenly — all its calls together, however many run at once.
#[tokio::test]
async fn requests_keep_to_the_share_of_the_rate_limit() {
    let sandbox = sandbox().await;
    for i in 0..10 {
        sandbox
            .zendesk(GLOBAL)
            .insert_organization(json!({"name": format!("Paced {i}")}))
            .unwrap();
    }
    let config = ZendeskConfig {
        // 20 a second; one org a page, so a listing of ten is ten requests.
        max_requests_per_minute: Some(1_200),
        page_size: 1,
        ..config(&sandbox, GLOBAL)
    };
    let client = ZendeskClient::new(config).unwrap();
    assert_eq!(client.share_per_minute(), 1_200.0);
    let started = Instant::now();
    let (a, b) = tokio::join!(client.list_organizations(), client.list_organizations());
    assert_eq!((a.unwrap().len(), b.unwrap().len()), (10, 10));
    // Twenty requests 50 ms apart: the last goes 950 ms after the first.
    assert!(
        started.elapsed() >= Duration::from_millis(940),
        "{:?}",
        started.elapsed()
    );
}

/// Without a setting, the share is half the limit the account reports in its headers.
#[tokio::test]
async fn the_default_share_is_half_the_limit_zendesk_reports() {
    let sandbox = sandbox_with(|c| c.zendesk_rate_limit_per_minute = 400).await;
    let client = ZendeskClient::new(ZendeskConfig {
        max_requests_per_minute: None,
        ..config(&sandbox, GLOBAL)
    })
    .unwrap();
    assert_eq!(
        client.share_per_minute(),
        f64::from(zdsync::zendesk::ASSUMED_LIMIT) / 2.0,
        "before the first answer, half of the smallest plan's limit"
    );
    client.list_organizations().await.unwrap();
    assert_eq!(client.share_per_minute(), 200.0);
}
