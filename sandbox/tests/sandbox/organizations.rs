use serde_json::{Value, json};
use zdsync_sandbox::ZendeskInstance;

use crate::support::{Harness, empty, with_global_orgs};

#[tokio::test]
async fn cursor_pagination_follows_next_links_until_has_more_is_false() {
    let h = Harness::start(with_global_orgs(25)).await;
    let zd = h.global();
    let mut url = "/api/v2/organizations?page[size]=10".to_owned();
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let reply = zd.get(&url).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        pages += 1;
        let orgs = reply.body["organizations"].as_array().expect("array");
        names.extend(
            orgs.iter()
                .map(|o| o["name"].as_str().expect("name").to_owned()),
        );
        assert!(
            reply.body.get("count").is_none(),
            "cursor pages carry no count"
        );
        if reply.body["meta"]["has_more"] == json!(false) {
            // Like Zendesk, the last page still offers a next link: has_more is the stop.
            assert!(reply.body["links"]["next"].is_string());
            break;
        }
        let next = reply.body["links"]["next"].as_str().expect("next link");
        assert!(next.starts_with(&h.sandbox.zendesk_url(ZendeskInstance::Global)));
        url = next.to_owned();
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("Org {i:03}")).collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn page_size_over_100_is_rejected_and_offset_pages_count() {
    let h = Harness::start(with_global_orgs(5)).await;
    let zd = h.global();
    let too_big = zd.get("/api/v2/organizations?page[size]=101").await;
    assert_eq!(too_big.status, 400);
    assert_eq!(too_big.body["error"], json!("InvalidPaginationParameter"));

    let offset = zd.get("/api/v2/organizations.json?per_page=2&page=2").await;
    assert_eq!(offset.status, 200);
    assert_eq!(offset.body["count"], json!(5));
    assert_eq!(
        offset.body["organizations"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(
        offset.body["next_page"]
            .as_str()
            .expect("next")
            .contains("page=3")
    );
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_401() {
    let h = Harness::start(empty()).await;
    let url = h.global().url("/api/v2/organizations");
    let anonymous = h.http.get(&url).send().await.expect("reply");
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.expect("json");
    assert_eq!(body, json!({"error": "Couldn't authenticate you"}));

    let global = h.sandbox.zendesk_credentials(ZendeskInstance::Global);
    let wrong_token = h
        .http
        .get(&url)
        .basic_auth(format!("{}/token", global.email), Some("nope"))
        .send()
        .await
        .expect("reply");
    assert_eq!(wrong_token.status(), 401);

    // Each instance has its own credentials.
    let usgov = h.sandbox.zendesk_credentials(ZendeskInstance::Usgov);
    let other_instance = h
        .http
        .get(&url)
        .basic_auth(format!("{}/token", usgov.email), Some(usgov.token))
        .send()
        .await
        .expect("reply");
    assert_eq!(other_instance.status(), 401);
}

#[tokio::test]
async fn names_are_unique_after_trimming() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let created = zd.create_org(json!({"name": "  API Company "})).await;
    assert_eq!(created["name"], json!("API Company"));
    assert!(
        created["url"]
            .as_str()
            .expect("url")
            .ends_with(&format!("/api/v2/organizations/{}", created["id"]))
    );

    let duplicate = zd
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "API Company "}}),
        )
        .await;
    assert_eq!(duplicate.status, 422);
    assert_eq!(duplicate.body["error"], json!("RecordInvalid"));
    assert_eq!(
        duplicate.body["description"],
        json!("Record validation errors")
    );
    let detail = &duplicate.body["details"]["name"][0];
    assert_eq!(detail["error"], json!("DuplicateValue"));
    assert!(
        detail["description"]
            .as_str()
            .expect("text")
            .contains("has already been taken")
    );

    let blank = zd
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "  "}}),
        )
        .await;
    assert_eq!(blank.status, 422);
    assert_eq!(
        blank.body["details"]["name"][0]["error"],
        json!("BlankValue")
    );
}

#[tokio::test]
async fn external_ids_are_unique_case_insensitively_and_searchable() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let org = zd
        .create_org(json!({"name": "One", "external_id": "company1"}))
        .await;
    let clash = zd
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Two", "external_id": "Company1"}}),
        )
        .await;
    assert_eq!(clash.status, 422);
    assert_eq!(
        clash.body["details"]["external_id"][0]["error"],
        json!("DuplicateValue")
    );

    let by_external_id = zd
        .get("/api/v2/organizations/search?external_id=COMPANY1")
        .await;
    assert_eq!(by_external_id.body["organizations"][0]["id"], org["id"]);
    assert_eq!(by_external_id.body["count"], json!(1));
    let by_name = zd.get("/api/v2/organizations/search?name=one").await;
    assert_eq!(by_name.body["organizations"][0]["id"], org["id"]);
    let both = zd
        .get("/api/v2/organizations/search?name=one&external_id=company1")
        .await;
    assert_eq!(both.status, 400);
}

#[tokio::test]
async fn updates_merge_custom_fields_and_validate_their_types() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let org = zd
        .create_org(json!({"name": "Acme", "organization_fields": {"am_project_id": "4411", "support_level": "gold"}}))
        .await;
    let id = org["id"].as_u64().expect("id");
    assert_eq!(
        org["organization_fields"]["salesforce_id"],
        Value::Null,
        "every defined key is present"
    );

    let update = zd
        .put(
            &format!("/api/v2/organizations/{id}"),
            json!({"organization": {"organization_fields": {"support_level": "ultimate", "aar": "1200.5", "sub_sm_ultimate": true}}}),
        )
        .await;
    assert_eq!(update.status, 200, "{:?}", update.body);
    let fields = &update.body["organization"]["organization_fields"];
    assert_eq!(fields["support_level"], json!("ultimate"));
    assert_eq!(fields["aar"], json!(1200.5));
    assert_eq!(fields["sub_sm_ultimate"], json!(true));
    assert_eq!(
        fields["am_project_id"],
        json!("4411"),
        "keys not sent are kept"
    );

    for bad in [
        json!({"support_level": "platinum"}),
        json!({"sub_sm_ultimate": "yes"}),
        json!({"expiration_date": "01/31/2027"}),
        json!({"number_of_seats": 3}),
    ] {
        let reply = zd
            .put(
                &format!("/api/v2/organizations/{id}"),
                json!({"organization": {"organization_fields": bad}}),
            )
            .await;
        if bad.get("number_of_seats").is_some() {
            // A usgov-only key is unknown on Global: dropped, not an error.
            assert_eq!(reply.status, 200);
        } else {
            assert_eq!(reply.status, 422, "{bad}");
            assert_eq!(
                reply.body["details"]["organization_fields"][0]["error"],
                json!("InvalidValue")
            );
        }
    }
    let ignored = h.sandbox.zendesk(ZendeskInstance::Global).ignored_fields();
    assert_eq!(ignored.get("organization_fields.number_of_seats"), Some(&1));
}

#[tokio::test]
async fn show_show_many_and_missing_records() {
    let h = Harness::start(with_global_orgs(3)).await;
    let zd = h.global();
    let all = zd.get("/api/v2/organizations").await;
    let ids: Vec<u64> = all.body["organizations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|o| o["id"].as_u64().expect("id"))
        .collect();
    let one = zd
        .get(&format!("/api/v2/organizations/{}.json", ids[1]))
        .await;
    assert_eq!(one.body["organization"]["name"], json!("Org 001"));

    let many = zd
        .get(&format!(
            "/api/v2/organizations/show_many?ids={},{},999",
            ids[0], ids[2]
        ))
        .await;
    assert_eq!(many.body["count"], json!(2));

    let missing = zd.get("/api/v2/organizations/999").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!({"error": "RecordNotFound", "description": "Not found"})
    );

    for unknown in [
        "/api/v2/organizations.json.json",
        "/api/v2/tickets",
        "/api/v1/organizations",
    ] {
        let reply = zd.get(unknown).await;
        assert_eq!(reply.status, 404, "{unknown}");
        assert_eq!(
            reply.body,
            json!({"error": "InvalidEndpoint", "description": "Not found"})
        );
    }
}

#[tokio::test]
async fn single_organization_updates_are_limited_per_record() {
    let mut config = crate::support::fast_config(with_global_orgs(2));
    config.record_update_limit_per_minute = 2;
    let h = Harness::with_config(config).await;
    let zd = h.global();
    let orgs = h.sandbox.zendesk(ZendeskInstance::Global).organizations();
    let (first, second) = (
        orgs[0]["id"].as_u64().expect("id"),
        orgs[1]["id"].as_u64().expect("id"),
    );
    let notes = |n: u32| json!({"organization": {"notes": format!("note {n}")}});
    for n in 0..2 {
        assert_eq!(
            zd.put(&format!("/api/v2/organizations/{first}"), notes(n))
                .await
                .status,
            200
        );
    }
    let limited = zd
        .put(&format!("/api/v2/organizations/{first}"), notes(3))
        .await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.body,
        json!({"errors": [{"code": "TooManyRequests", "title": "Too many requests to update"}]})
    );
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        zd.put(&format!("/api/v2/organizations/{second}"), notes(0))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn instances_are_independent() {
    let h = Harness::start(empty()).await;
    h.global().create_org(json!({"name": "Shared Name"})).await;
    // The same name is free on the other instance, and neither sees the other's records.
    h.usgov().create_org(json!({"name": "Shared Name"})).await;
    assert_eq!(
        h.sandbox
            .zendesk(ZendeskInstance::Global)
            .organizations()
            .len(),
        1
    );
    assert_eq!(
        h.sandbox
            .zendesk(ZendeskInstance::Usgov)
            .organizations()
            .len(),
        1
    );
    let usgov_fields =
        &h.sandbox.zendesk(ZendeskInstance::Usgov).organizations()[0]["organization_fields"];
    assert!(usgov_fields.get("number_of_seats").is_some());
    assert!(usgov_fields.get("org_region").is_none());
}
