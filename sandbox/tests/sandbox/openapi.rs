//! Every emulated Zendesk endpoint's response, validated against the response schema
//! Zendesk's OpenAPI description documents for it (`tests/zendesk-oas/`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};
use zdsync_sandbox::{SandboxConfig, ZendeskInstance};

use crate::support::{Harness, Reply, fast_config, with_global_orgs};

struct Oas {
    files: BTreeMap<&'static str, Value>,
    objects: Map<String, Value>,
}

impl Oas {
    fn load() -> Oas {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zendesk-oas");
        let read = |name: &str| -> Value {
            let text = std::fs::read_to_string(dir.join(name)).expect("OAS file");
            let mut value: Value = serde_saphyr::from_str(&text).expect("OAS YAML");
            to_json_schema(&mut value);
            value
        };
        let files = [
            "organizations",
            "users",
            "organization-memberships",
            "job-statuses",
            "search",
        ]
        .into_iter()
        .map(|name| (name, read(&format!("{name}.yml"))))
        .collect();
        let objects = read("objects.yml")["components"]["schemas"]
            .as_object()
            .expect("object schemas")
            .clone();
        Oas { files, objects }
    }

    /// The documented schema of one response, with the file's components (and the shared
    /// object schemas it lacks) in reach of its `$ref`s.
    fn validator(
        &self,
        file: &str,
        method: &str,
        path: &str,
        status: &str,
    ) -> jsonschema::Validator {
        let doc = &self.files[file];
        let schema = &doc["paths"][path][method]["responses"][status]["content"]["application/json"]
            ["schema"];
        assert!(
            schema.is_object(),
            "{file} documents no JSON body for {method} {path} {status}"
        );
        let mut components = self.objects.clone();
        if let Some(own) = doc["components"]["schemas"].as_object() {
            components.extend(own.clone());
        }
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [schema],
            "components": {"schemas": components},
        });
        jsonschema::validator_for(&root).expect("schema compiles")
    }

    fn check(&self, file: &str, method: &str, path: &str, reply: &Reply) {
        let status = reply.status.to_string();
        let validator = self.validator(file, method, path, &status);
        let errors: Vec<String> = validator
            .iter_errors(&reply.body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} breaks {file}.yml: {errors:#?}\n{}",
            reply.body
        );
    }
}

/// OpenAPI 3.0's `nullable: true` becomes a JSON Schema type that admits null.
fn to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                match map.get_mut("type") {
                    Some(Value::String(kind)) => {
                        let kind = kind.clone();
                        map.insert("type".into(), json!([kind, "null"]));
                    }
                    Some(Value::Array(kinds)) => kinds.push(json!("null")),
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
            map.values_mut().for_each(to_json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

#[test]
fn the_validator_rejects_bodies_that_break_the_schema() {
    let oas = Oas::load();
    let validator = oas.validator(
        "organizations",
        "get",
        "/api/v2/organizations/{organization_id}",
        "200",
    );
    let good = json!({"organization": {
        "id": 1, "url": "u", "name": "n", "external_id": null, "details": null, "notes": null,
        "domain_names": [], "group_id": null, "shared_tickets": false, "shared_comments": false,
        "tags": [], "organization_fields": {"flag": true, "level": null}, "created_at": "t", "updated_at": "t"}});
    assert!(validator.is_valid(&good));
    let mut bad = good.clone();
    bad["organization"]["id"] = json!("1");
    assert!(!validator.is_valid(&bad));
    let mut incomplete = good;
    incomplete["organization"]
        .as_object_mut()
        .expect("object")
        .remove("organization_fields");
    assert!(!validator.is_valid(&incomplete));
}

#[tokio::test]
async fn zendesk_responses_match_the_documented_schemas() {
    let oas = Oas::load();
    let mut config: SandboxConfig = fast_config(with_global_orgs(3));
    config.record_update_limit_per_minute = 1;
    let h = Harness::with_config(config).await;
    let zd = h.zendesk(ZendeskInstance::Global);

    let cursor = zd.get("/api/v2/organizations?page[size]=2").await;
    oas.check("organizations", "get", "/api/v2/organizations", &cursor);
    let offset = zd.get("/api/v2/organizations").await;
    oas.check("organizations", "get", "/api/v2/organizations", &offset);

    let created = zd
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Schema Org", "external_id": "schema-1",
                "organization_fields": {"salesforce_id": "0014M00001sDiGEQA0", "aar": 10.5, "sub_edu": true, "support_level": "gold"}}}),
        )
        .await;
    oas.check("organizations", "post", "/api/v2/organizations", &created);
    let id = created.body["organization"]["id"].as_u64().expect("id");
    let shown = zd.get(&format!("/api/v2/organizations/{id}")).await;
    oas.check(
        "organizations",
        "get",
        "/api/v2/organizations/{organization_id}",
        &shown,
    );
    let updated = zd
        .put(
            &format!("/api/v2/organizations/{id}"),
            json!({"organization": {"notes": "n"}}),
        )
        .await;
    oas.check(
        "organizations",
        "put",
        "/api/v2/organizations/{organization_id}",
        &updated,
    );
    let limited = zd
        .put(
            &format!("/api/v2/organizations/{id}"),
            json!({"organization": {"notes": "m"}}),
        )
        .await;
    oas.check(
        "organizations",
        "put",
        "/api/v2/organizations/{organization_id}",
        &limited,
    );
    let many = zd
        .get(&format!("/api/v2/organizations/show_many?ids={id}"))
        .await;
    oas.check(
        "organizations",
        "get",
        "/api/v2/organizations/show_many",
        &many,
    );
    let search = zd
        .get("/api/v2/organizations/search?external_id=schema-1")
        .await;
    oas.check(
        "organizations",
        "get",
        "/api/v2/organizations/search",
        &search,
    );
    oas.check("search", "get", "/api/v2/organizations/search", &search);
    // The export leaves out the last minute's changes: move past it so the page has items.
    h.sandbox.advance_clock(Duration::from_secs(61));
    let export = zd
        .get("/api/v2/incremental/organizations?start_time=0")
        .await;
    assert_eq!(export.body["count"], json!(4), "{:?}", export.body);
    oas.check(
        "organizations",
        "get",
        "/api/v2/incremental/organizations",
        &export,
    );

    let create_many = zd
        .post(
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "Bulk"}, {"name": "Schema Org"}]}),
        )
        .await;
    oas.check(
        "organizations",
        "post",
        "/api/v2/organizations/create_many",
        &create_many,
    );
    let update_many = zd
        .put(
            "/api/v2/organizations/update_many",
            json!({"organizations": [{"id": id, "notes": "bulk"}, {"id": 1, "notes": "missing"}]}),
        )
        .await;
    oas.check(
        "organizations",
        "put",
        "/api/v2/organizations/update_many",
        &update_many,
    );

    for job in [&create_many, &update_many] {
        let done = zd.wait_for_job(&job.body["job_status"]).await;
        let path = format!("/api/v2/job_statuses/{}", done["id"].as_str().expect("id"));
        oas.check(
            "job-statuses",
            "get",
            "/api/v2/job_statuses/{job_status_id}",
            &zd.get(&path).await,
        );
    }
    let ids = format!(
        "{},{}",
        create_many.body["job_status"]["id"].as_str().expect("id"),
        update_many.body["job_status"]["id"].as_str().expect("id")
    );
    let statuses = zd
        .get(&format!("/api/v2/job_statuses/show_many?ids={ids}"))
        .await;
    oas.check(
        "job-statuses",
        "get",
        "/api/v2/job_statuses/show_many",
        &statuses,
    );
    let list = zd.get("/api/v2/job_statuses?page[size]=1").await;
    assert_eq!(list.body["meta"]["has_more"], json!(true));
    oas.check("job-statuses", "get", "/api/v2/job_statuses", &list);

    let user = zd
        .post("/api/v2/users", json!({"user": {"name": "Schema User", "email": "schema@x.example", "organization_id": id}}))
        .await;
    oas.check("users", "post", "/api/v2/users", &user);
    let user_id = user.body["user"]["id"].as_u64().expect("id");
    oas.check(
        "users",
        "get",
        "/api/v2/users",
        &zd.get("/api/v2/users?page[size]=1").await,
    );
    oas.check(
        "users",
        "get",
        "/api/v2/users/{user_id}",
        &zd.get(&format!("/api/v2/users/{user_id}")).await,
    );
    let put_user = zd
        .put(
            &format!("/api/v2/users/{user_id}"),
            json!({"user": {"notes": "n"}}),
        )
        .await;
    oas.check("users", "put", "/api/v2/users/{user_id}", &put_user);
    oas.check(
        "users",
        "get",
        "/api/v2/users/show_many",
        &zd.get(&format!("/api/v2/users/show_many?ids={user_id}"))
            .await,
    );
    let search = zd
        .get("/api/v2/users/search?query=email:schema@x.example")
        .await;
    oas.check("users", "get", "/api/v2/users/search", &search);
    oas.check("search", "get", "/api/v2/users/search", &search);
    let create_users = zd
        .post(
            "/api/v2/users/create_many",
            json!({"users": [{"name": "Bulk", "email": "bulk@x.example"}]}),
        )
        .await;
    oas.check("users", "post", "/api/v2/users/create_many", &create_users);
    let update_users = zd
        .put(
            "/api/v2/users/update_many",
            json!({"users": [{"id": user_id, "name": "Renamed"}]}),
        )
        .await;
    oas.check("users", "put", "/api/v2/users/update_many", &update_users);
    // The user export, its first page and the one after it; like the organization
    // export it leaves out the last minute's changes.
    h.sandbox.advance_clock(Duration::from_secs(61));
    let users_export = zd
        .get("/api/v2/incremental/users/cursor?start_time=0")
        .await;
    assert!(
        users_export.body["users"]
            .as_array()
            .is_some_and(|users| !users.is_empty()),
        "{:?}",
        users_export.body
    );
    let caught_up = zd
        .get(users_export.body["after_url"].as_str().expect("after_url"))
        .await;
    for page in [&users_export, &caught_up] {
        oas.check("users", "get", "/api/v2/incremental/users/cursor", page);
    }
    // The list with jobs still in flight (no results yet).
    oas.check(
        "job-statuses",
        "get",
        "/api/v2/job_statuses",
        &zd.get("/api/v2/job_statuses").await,
    );

    let other_org = h.sandbox.zendesk(ZendeskInstance::Global).organizations()[0]["id"].clone();
    let membership = zd
        .post(
            "/api/v2/organization_memberships",
            json!({"organization_membership": {"user_id": user_id, "organization_id": other_org}}),
        )
        .await;
    oas.check(
        "organization-memberships",
        "post",
        "/api/v2/organization_memberships",
        &membership,
    );
    let membership_id = membership.body["organization_membership"]["id"]
        .as_u64()
        .expect("id");
    let list = zd.get("/api/v2/organization_memberships").await;
    oas.check(
        "organization-memberships",
        "get",
        "/api/v2/organization_memberships",
        &list,
    );
    let one = zd
        .get(&format!("/api/v2/organization_memberships/{membership_id}"))
        .await;
    oas.check(
        "organization-memberships",
        "get",
        "/api/v2/organization_memberships/{organization_membership_id}",
        &one,
    );
    let create_memberships = zd
        .post(
            "/api/v2/organization_memberships/create_many",
            json!({"organization_memberships": [{"user_id": user_id, "organization_id": id}]}),
        )
        .await;
    oas.check(
        "organization-memberships",
        "post",
        "/api/v2/organization_memberships/create_many",
        &create_memberships,
    );
}
