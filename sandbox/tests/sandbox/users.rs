use serde_json::{Value, json};
use zdsync_sandbox::ZendeskInstance;

use crate::support::{Harness, empty};

#[tokio::test]
async fn create_many_users_is_forbidden_without_bulk_import() {
    let h = Harness::start(empty()).await;
    let zd = h.usgov();
    let body = json!({"users": [{"name": "Ann", "email": "ann@x.example"}]});
    h.sandbox
        .zendesk(ZendeskInstance::Usgov)
        .set_bulk_user_import(false);
    let refused = zd.post("/api/v2/users/create_many", body.clone()).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["error"], json!("Forbidden"));
    assert!(h.sandbox.zendesk(ZendeskInstance::Usgov).users().is_empty());

    h.sandbox
        .zendesk(ZendeskInstance::Usgov)
        .set_bulk_user_import(true);
    let job = zd.run_job("POST", "/api/v2/users/create_many", body).await;
    assert_eq!(job["results"][0]["index"], json!(0));
    assert_eq!(job["job_type"], json!("UserBulkCreateJobV2"));
    // Global's setting is separate.
    h.sandbox
        .zendesk(ZendeskInstance::Global)
        .set_bulk_user_import(false);
    assert_eq!(
        h.usgov()
            .post("/api/v2/users/create_many", json!({"users": []}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bulk_import_switch_comes_from_the_fixture() {
    let mut fixture = empty();
    fixture.zendesk.global.bulk_user_import = false;
    let h = Harness::start(fixture).await;
    let reply = h
        .global()
        .post("/api/v2/users/create_many", json!({"users": []}))
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        h.usgov()
            .post("/api/v2/users/create_many", json!({"users": []}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn emails_are_unique_and_found_by_exact_search() {
    let h = Harness::start(empty()).await;
    let zd = h.usgov();
    let ann = zd
        .create_user(json!({"name": "Ann Lee", "email": "Ann.Lee@x.example"}))
        .await;
    zd.create_user(json!({"name": "Annie", "email": "annie.lee@x.example"}))
        .await;
    assert_eq!(ann["role"], json!("end-user"));
    assert_eq!(ann["organization_id"], Value::Null);
    assert_eq!(ann["user_fields"], json!({"not_in_sfdc": null}));

    let duplicate = zd
        .post(
            "/api/v2/users",
            json!({"user": {"name": "Other", "email": "ann.lee@X.EXAMPLE"}}),
        )
        .await;
    assert_eq!(duplicate.status, 422);
    let detail = &duplicate.body["details"]["email"][0];
    assert_eq!(detail["error"], json!("DuplicateValue"));
    assert!(
        detail["description"]
            .as_str()
            .expect("text")
            .contains("already being used by another user")
    );

    let found = zd
        .get("/api/v2/users/search?query=email:\"ann.lee@x.example\"")
        .await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body["count"], json!(1));
    assert_eq!(found.body["users"][0]["id"], ann["id"]);
    let partial = zd
        .get("/api/v2/users/search?query=email:lee@x.example")
        .await;
    assert_eq!(
        partial.body["count"],
        json!(0),
        "email: matches whole addresses only"
    );
    let words = zd.get("/api/v2/users/search?query=lee").await;
    assert_eq!(words.body["count"], json!(2));
    let unsupported = zd.get("/api/v2/users/search?query=phone:123").await;
    assert_eq!(unsupported.status, 400);
    assert_eq!(unsupported.body["errors"][0]["code"], json!("QueryError"));
}

#[tokio::test]
async fn users_list_filters_by_role() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    zd.create_user(json!({"name": "End", "email": "end@x.example"}))
        .await;
    zd.create_user(json!({"name": "Agent", "email": "agent@x.example", "role": "agent"}))
        .await;
    zd.create_user(json!({"name": "Admin", "email": "admin@x.example", "role": "admin"}))
        .await;
    let names = |body: &Value| -> Vec<String> {
        body["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let end_users = zd.get("/api/v2/users?role=end-user&page[size]=10").await;
    assert_eq!(names(&end_users.body), vec!["End"]);
    let staff = zd
        .get("/api/v2/users?role[]=agent&role[]=admin&page[size]=1")
        .await;
    assert_eq!(names(&staff.body), vec!["Agent"]);
    let next = staff.body["links"]["next"].as_str().expect("next");
    assert!(next.contains("role%5B%5D=agent"), "{next}");
    assert_eq!(names(&zd.get(next).await.body), vec!["Admin"]);
}

#[tokio::test]
async fn memberships_are_unique_and_set_the_default_organization() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let first = zd.create_org(json!({"name": "First"})).await;
    let second = zd.create_org(json!({"name": "Second"})).await;
    let user = zd
        .create_user(json!({"name": "Pat", "email": "pat@x.example"}))
        .await;
    let membership = |org: &Value| json!({"organization_membership": {"user_id": user["id"], "organization_id": org["id"]}});

    let created = zd
        .post("/api/v2/organization_memberships", membership(&first))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        created.body["organization_membership"]["default"],
        json!(true)
    );
    assert_eq!(
        created.body["organization_membership"]["organization_name"],
        json!("First")
    );
    let again = zd
        .post("/api/v2/organization_memberships", membership(&first))
        .await;
    assert_eq!(again.status, 422);
    assert_eq!(again.body["error"], json!("RecordInvalid"));

    let other = zd
        .post("/api/v2/organization_memberships", membership(&second))
        .await;
    assert_eq!(other.status, 201);
    assert_eq!(
        other.body["organization_membership"]["default"],
        Value::Null,
        "non-default is null"
    );
    let shown = zd.get(&format!("/api/v2/users/{}", user["id"])).await;
    assert_eq!(shown.body["user"]["organization_id"], first["id"]);

    let of_user = zd
        .get(&format!(
            "/api/v2/users/{}/organization_memberships?page[size]=100",
            user["id"]
        ))
        .await;
    assert_eq!(
        of_user.body["organization_memberships"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let of_org = zd
        .get(&format!(
            "/api/v2/organizations/{}/organization_memberships",
            second["id"]
        ))
        .await;
    assert_eq!(
        of_org.body["organization_memberships"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let members = zd
        .get(&format!("/api/v2/organizations/{}/users", first["id"]))
        .await;
    assert_eq!(members.body["users"][0]["id"], user["id"]);
}

#[tokio::test]
async fn writing_organization_id_replaces_every_membership() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let a = zd.create_org(json!({"name": "A"})).await;
    let b = zd.create_org(json!({"name": "B"})).await;
    let c = zd.create_org(json!({"name": "C"})).await;
    let user = zd
        .create_user(json!({"name": "Kim", "email": "kim@x.example", "organization_id": a["id"]}))
        .await;
    assert_eq!(user["organization_id"], a["id"]);
    zd.post(
        &format!("/api/v2/users/{}/organization_memberships", user["id"]),
        json!({"organization_membership": {"organization_id": b["id"]}}),
    )
    .await;
    let updated = zd
        .put(
            &format!("/api/v2/users/{}", user["id"]),
            json!({"user": {"organization_id": c["id"]}}),
        )
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["user"]["organization_id"], c["id"]);
    let memberships = h
        .sandbox
        .zendesk(ZendeskInstance::Global)
        .organization_memberships();
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0]["organization_id"], c["id"]);
}

#[tokio::test]
async fn update_many_users_marks_and_moves_users() {
    let h = Harness::start(empty()).await;
    let zd = h.usgov();
    let org = zd.create_org(json!({"name": "Agency"})).await;
    let user = zd
        .create_user(json!({"name": "Lee", "email": "lee@x.example", "external_id": "c-1"}))
        .await;
    let job = zd
        .run_job(
            "PUT",
            "/api/v2/users/update_many",
            json!({"users": [
                {"id": user["id"], "organization_id": org["id"], "user_fields": {"not_in_sfdc": true}},
                {"external_id": "missing", "name": "Nobody"},
                {"external_id": "C-1", "user_fields": {"no_such_field": 1}},
            ]}),
        )
        .await;
    let results = job["results"].as_array().expect("results");
    assert_eq!(results[0]["status"], json!("Updated"));
    assert_eq!(results[1]["status"], json!("Failed"));
    assert_eq!(results[2]["id"], user["id"]);
    let stored = h
        .sandbox
        .zendesk(ZendeskInstance::Usgov)
        .user_by_email("LEE@x.example")
        .expect("user");
    assert_eq!(stored["organization_id"], org["id"]);
    assert_eq!(stored["user_fields"]["not_in_sfdc"], json!(true));
    let ignored = h.sandbox.zendesk(ZendeskInstance::Usgov).ignored_fields();
    assert_eq!(ignored.get("user_fields.no_such_field"), Some(&1));
}

#[tokio::test]
async fn deleting_the_default_membership_promotes_another() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let a = zd.create_org(json!({"name": "A"})).await;
    let b = zd.create_org(json!({"name": "B"})).await;
    let user = zd
        .create_user(json!({"name": "Jo", "email": "jo@x.example", "organization_id": a["id"]}))
        .await;
    zd.post(
        "/api/v2/organization_memberships",
        json!({"organization_membership": {"user_id": user["id"], "organization_id": b["id"]}}),
    )
    .await;
    let gone = zd
        .delete(&format!(
            "/api/v2/users/{}/organizations/{}",
            user["id"], a["id"]
        ))
        .await;
    assert_eq!(gone.status, 204);
    let shown = zd.get(&format!("/api/v2/users/{}", user["id"])).await;
    assert_eq!(shown.body["user"]["organization_id"], b["id"]);
    let membership_id = h
        .sandbox
        .zendesk(ZendeskInstance::Global)
        .organization_memberships()[0]["id"]
        .clone();
    assert_eq!(
        zd.delete(&format!("/api/v2/organization_memberships/{membership_id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        zd.delete(&format!("/api/v2/organization_memberships/{membership_id}"))
            .await
            .status,
        404
    );
    let shown = zd.get(&format!("/api/v2/users/{}", user["id"])).await;
    assert_eq!(shown.body["user"]["organization_id"], Value::Null);
}
