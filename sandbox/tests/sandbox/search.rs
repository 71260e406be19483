//! Search served from an index that lags behind writes (`search_index_delay`).

use std::time::Duration;

use serde_json::{Value, json};
use zdsync_sandbox::{Fixture, ZendeskInstance};

use crate::support::{Harness, Zendesk, fast_config, with_global_orgs};

const DELAY: Duration = Duration::from_millis(1000);

async fn lagging(fixture: Fixture) -> Harness {
    let mut config = fast_config(fixture);
    config.search_index_delay = DELAY;
    Harness::with_config(config).await
}

/// Lets the index catch up with every write made so far: the index lags by the sandbox
/// clock, so moving it past the delay does, without a test sleeping.
fn index_catches_up(h: &Harness) {
    h.sandbox.advance_clock(DELAY + Duration::from_millis(100));
}

async fn search(zd: &Zendesk<'_>, path: &str, key: &str) -> Vec<Value> {
    let reply = zd.get(path).await;
    assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
    assert_eq!(
        reply.body["count"].as_u64().map(|n| n as usize),
        reply.body[key].as_array().map(Vec::len)
    );
    reply.body[key].as_array().expect("results").clone()
}

async fn users_found(zd: &Zendesk<'_>, query: &str) -> Vec<Value> {
    search(zd, &format!("/api/v2/users/search?{query}"), "users").await
}

async fn orgs_found(zd: &Zendesk<'_>, query: &str) -> Vec<Value> {
    search(
        zd,
        &format!("/api/v2/organizations/search?{query}"),
        "organizations",
    )
    .await
}

#[tokio::test]
async fn a_record_just_created_is_found_only_once_the_index_catches_up() {
    let h = lagging(with_global_orgs(2)).await;
    let zd = h.global();
    // The world the sandbox starts with is indexed.
    assert_eq!(orgs_found(&zd, "name=org%20001").await.len(), 1);

    let org = zd
        .create_org(json!({"name": "Fresh", "external_id": "fresh-1"}))
        .await;
    let user = zd
        .create_user(json!({"name": "Ann", "email": "ann@x.example", "external_id": "ann-1"}))
        .await;
    assert!(orgs_found(&zd, "name=Fresh").await.is_empty());
    assert!(orgs_found(&zd, "external_id=fresh-1").await.is_empty());
    assert!(
        users_found(&zd, "query=email:ann@x.example")
            .await
            .is_empty()
    );
    assert!(users_found(&zd, "query=ann").await.is_empty());
    assert!(users_found(&zd, "external_id=ann-1").await.is_empty());
    // Direct reads are never stale.
    let shown = zd
        .get(&format!("/api/v2/organizations/{}", org["id"]))
        .await;
    assert_eq!(shown.status, 200);
    let many = zd
        .get("/api/v2/organizations/show_many?external_ids=fresh-1")
        .await;
    assert_eq!(many.body["count"], json!(1));
    let listed = zd.get("/api/v2/users?external_id=ann-1").await;
    assert_eq!(listed.body["users"][0]["id"], user["id"]);

    // A record a test adds through the handle, as an agent would, is new to the index too.
    h.sandbox
        .zendesk(ZendeskInstance::Global)
        .insert_user(json!({"name": "Agent Made", "email": "made@x.example"}))
        .expect("inserted");
    assert!(
        users_found(&zd, "query=email:made@x.example")
            .await
            .is_empty()
    );

    index_catches_up(&h);
    assert_eq!(
        users_found(&zd, "query=email:made@x.example").await.len(),
        1
    );
    assert_eq!(orgs_found(&zd, "name=fresh").await, vec![org.clone()]);
    assert_eq!(orgs_found(&zd, "external_id=FRESH-1").await, vec![org]);
    assert_eq!(
        users_found(&zd, "query=email:ann@x.example").await,
        vec![user.clone()]
    );
    assert_eq!(users_found(&zd, "external_id=ann-1").await, vec![user]);
}

#[tokio::test]
async fn records_a_job_creates_are_new_to_the_index_when_it_completes() {
    let h = lagging(Fixture::default()).await;
    let zd = h.usgov();
    let job = zd
        .run_job(
            "POST",
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "Bulk One", "external_id": "b-1"}]}),
        )
        .await;
    assert!(job["results"][0]["id"].is_u64(), "{job}");
    assert!(orgs_found(&zd, "external_id=b-1").await.is_empty());
    index_catches_up(&h);
    assert_eq!(
        orgs_found(&zd, "external_id=b-1").await[0]["id"],
        job["results"][0]["id"]
    );
}

#[tokio::test]
async fn a_user_who_just_joined_an_organization_is_found_without_it() {
    let h = lagging(Fixture::default()).await;
    let zd = h.global();
    let first = zd.create_org(json!({"name": "First"})).await;
    let second = zd.create_org(json!({"name": "Second"})).await;
    let by_membership = zd
        .create_user(json!({"name": "Member", "email": "member@x.example"}))
        .await;
    let by_update = zd
        .create_user(json!({"name": "Moved", "email": "moved@x.example"}))
        .await;
    index_catches_up(&h);

    let joined = zd
        .post(
            "/api/v2/organization_memberships",
            json!({"organization_membership": {"user_id": by_membership["id"], "organization_id": first["id"]}}),
        )
        .await;
    assert_eq!(joined.status, 201, "{:?}", joined.body);
    let moved = zd
        .put(
            &format!("/api/v2/users/{}", by_update["id"]),
            json!({"user": {"organization_id": second["id"], "notes": "moved"}}),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);

    for (user, org) in [(&by_membership, &first), (&by_update, &second)] {
        let email = user["email"].as_str().expect("email");
        let found = users_found(&zd, &format!("query=email:{email}")).await;
        assert_eq!(found.len(), 1);
        // Found as the index has them: as they were before the write.
        assert_eq!(found[0], *user, "{email}");
        assert_eq!(found[0]["organization_id"], Value::Null);
        let by_org = format!("query=organization_id:{}", org["id"]);
        assert!(users_found(&zd, &by_org).await.is_empty());
        // A direct read shows the organization at once.
        let shown = zd.get(&format!("/api/v2/users/{}", user["id"])).await;
        assert_eq!(shown.body["user"]["organization_id"], org["id"]);
        let members = zd
            .get(&format!("/api/v2/organizations/{}/users", org["id"]))
            .await;
        assert_eq!(members.body["users"][0]["id"], user["id"]);
    }

    index_catches_up(&h);
    for (user, org) in [(&by_membership, &first), (&by_update, &second)] {
        let by_org = format!("query=organization_id:{}", org["id"]);
        let found = users_found(&zd, &by_org).await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["id"], user["id"]);
        assert_eq!(found[0]["organization_id"], org["id"]);
    }
    assert_eq!(
        users_found(&zd, "query=email:moved@x.example").await[0]["notes"],
        json!("moved")
    );

    // Leaving is lagged too: just removed, the user is still found in the organization.
    let left = zd
        .delete(&format!(
            "/api/v2/users/{}/organizations/{}",
            by_membership["id"], first["id"]
        ))
        .await;
    assert_eq!(left.status, 204);
    let by_org = format!("query=organization_id:{}", first["id"]);
    assert_eq!(users_found(&zd, &by_org).await.len(), 1);
    index_catches_up(&h);
    assert!(users_found(&zd, &by_org).await.is_empty());
}

#[tokio::test]
async fn an_organization_just_renamed_is_found_under_its_old_name() {
    let h = lagging(Fixture::default()).await;
    let zd = h.global();
    let org = zd
        .create_org(json!({"name": "Old Name", "organization_fields": {"support_level": "gold"}}))
        .await;
    index_catches_up(&h);
    let renamed = zd
        .put(
            &format!("/api/v2/organizations/{}", org["id"]),
            json!({"organization": {"name": "New Name", "organization_fields": {"support_level": "silver"}}}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    // A second write within the delay: the index still has the state before the first.
    let noted = zd
        .run_job(
            "PUT",
            "/api/v2/organizations/update_many",
            json!({"organizations": [{"id": org["id"], "notes": "bulk"}]}),
        )
        .await;
    assert_eq!(noted["results"][0]["success"], json!(true));

    let found = orgs_found(&zd, "name=old%20name").await;
    assert_eq!(found, vec![org.clone()]);
    assert_eq!(
        found[0]["organization_fields"]["support_level"],
        json!("gold")
    );
    assert!(orgs_found(&zd, "name=New%20Name").await.is_empty());
    // The name is taken by the renamed record as it is now.
    let taken = zd
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "New Name"}}),
        )
        .await;
    assert_eq!(taken.status, 422);
    let shown = h
        .sandbox
        .zendesk(ZendeskInstance::Global)
        .organization(org["id"].as_u64().expect("id"))
        .expect("exists");
    assert_eq!(shown["name"], json!("New Name"));

    index_catches_up(&h);
    assert!(orgs_found(&zd, "name=Old%20Name").await.is_empty());
    let found = orgs_found(&zd, "name=New%20Name").await;
    assert_eq!(found, vec![shown]);
    assert_eq!(found[0]["notes"], json!("bulk"));
}
