//! `Sandbox::snapshot`: a world changed over HTTP, saved as a fixture and started again,
//! is the same world; ids allocated afterwards are new.

use chrono::NaiveDate;
use serde_json::{Value, json};
use zdsync_sandbox::{Fixture, GeneratorOptions, Sandbox, SlackFailure, ZendeskInstance};

use crate::support::Harness;

fn generated() -> Fixture {
    let as_of = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    Fixture::generate(&GeneratorOptions::new(60, 7, as_of))
}

/// The dump without what a fixture does not hold: jobs, counters, faults, ignored-field
/// tallies and Salesforce's API usage, sessions and cursors. Links carry the port of the
/// sandbox that rendered them, so that part is replaced.
fn persistent_state(sandbox: &Sandbox) -> Value {
    let text = sandbox
        .dump_state()
        .to_string()
        .replace(&format!("{}/", sandbox.base_url()), "http://sandbox/");
    let mut state: Value = serde_json::from_str(&text).expect("dump is JSON");
    let top = state.as_object_mut().expect("object");
    top.remove("counters").expect("counters in the dump");
    top.remove("faults").expect("faults in the dump");
    for instance in ["global", "usgov"] {
        let zendesk = state["zendesk"][instance].as_object_mut().expect("object");
        zendesk.remove("jobs").expect("jobs in the dump");
        zendesk.remove("ignored_fields").expect("ignored_fields");
    }
    let salesforce = state["salesforce"].as_object_mut().expect("object");
    for counter in ["api_usage", "tokens_issued", "open_cursors"] {
        salesforce.remove(counter).expect("salesforce counter");
    }
    state
}

/// The first place two JSON values differ, so a failure names it instead of printing two
/// whole dumps.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|key| {
                let here = format!("{path}.{key}");
                match (x.get(key), y.get(key)) {
                    (Some(u), Some(v)) => first_difference(u, v, &here),
                    (u, v) => Some(format!("{here}: {u:?} vs {v:?}")),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]"))),
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

fn ids(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect()
}

/// Changes every kind of state a snapshot must carry, over the API where there is one.
/// Returns the Global user whose default membership is not their first, and the US Gov
/// email that only a secondary identity holds.
async fn change_everything(h: &Harness) -> (u64, &'static str) {
    let (global, usgov) = (h.global(), h.usgov());
    let created = global
        .run_job(
            "POST",
            "/api/v2/organizations/create_many",
            json!({"organizations": [
                {"name": "Snapshot Alpha", "external_id": "snap-alpha",
                 "organization_fields": {"support_level": "premium", "aar": "1398876.0115000003"}},
                {"name": "Snapshot Beta", "domain_names": ["beta.example"], "tags": ["b"]},
                {"name": "Snapshot Gamma", "details": "third"},
            ]}),
        )
        .await;
    let new_orgs: Vec<u64> = created["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["id"].as_u64().expect("created"))
        .collect();
    assert_eq!(new_orgs.len(), 3, "{created}");

    let existing = ids(&h.sandbox.zendesk(ZendeskInstance::Global).organizations());
    let updated = global
        .run_job(
            "PUT",
            "/api/v2/organizations/update_many",
            json!({"organizations": [
                {"id": existing[0], "notes": "edited", "group_id": 77,
                 "organization_fields": {"mark_for_deletion": true, "expiration_date": "2027-01-31T10:00:00Z",
                                         "not_a_field": 1}},
                {"id": new_orgs[1], "shared_tickets": true, "organization_fields": {"seats_decimal": 12}},
            ]}),
        )
        .await;
    assert!(
        updated["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["success"] == json!(true)),
        "{updated}"
    );

    // Default moved to a later membership, a deleted non-default one (a gap in the ids)
    // and a secondary email added on update.
    let user = global
        .create_user(json!({"name": "Snap Shot", "email": "snap@shot.example",
                            "organization_id": new_orgs[0], "phone": "+1 555 0100",
                            "user_fields": {"not_in_sfdc": true}}))
        .await;
    let user_id = user["id"].as_u64().expect("id");
    for (organization, default) in [(new_orgs[1], true), (new_orgs[2], false)] {
        let reply = global
            .post(
                "/api/v2/organization_memberships",
                json!({"organization_membership": {"user_id": user_id,
                       "organization_id": organization, "default": default}}),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let reply = global
        .delete(&format!(
            "/api/v2/users/{user_id}/organizations/{}",
            new_orgs[2]
        ))
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    let reply = global
        .put(
            &format!("/api/v2/users/{user_id}"),
            json!({"user": {"email": "snap.second@shot.example", "notes": "two emails"}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    // A user without a primary email who got one on update: it is a secondary identity.
    let mailless = usgov
        .create_user(json!({"name": "No Mail", "external_id": "no-mail"}))
        .await;
    let secondary_only = "late.mail@agency.example";
    let reply = usgov
        .put(
            &format!("/api/v2/users/{}", mailless["id"]),
            json!({"user": {"email": secondary_only}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["user"]["email"], Value::Null);

    // A promoted default: the first membership is deleted, the second takes over.
    let usgov_orgs = ids(&h.sandbox.zendesk(ZendeskInstance::Usgov).organizations());
    let member = usgov
        .create_user(json!({"name": "Two Orgs", "email": "two@agency.example",
                            "organization_id": usgov_orgs[0]}))
        .await;
    let reply = usgov
        .post(
            &format!("/api/v2/users/{}/organization_memberships", member["id"]),
            json!({"organization_membership": {"organization_id": usgov_orgs[1]}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let reply = usgov
        .delete(&format!(
            "/api/v2/users/{}/organizations/{}",
            member["id"], usgov_orgs[0]
        ))
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    let updated = usgov
        .run_job(
            "PUT",
            &format!("/api/v2/organizations/update_many?ids={}", usgov_orgs[1]),
            json!({"organization": {"organization_fields": {"number_of_seats": "41"}}}),
        )
        .await;
    assert_eq!(updated["results"][0]["success"], json!(true), "{updated}");

    h.sandbox
        .zendesk(ZendeskInstance::Global)
        .set_bulk_user_import(false);
    h.sandbox.salesforce().with_objects_mut(|objects| {
        let account = &mut objects.get_mut("Account").expect("accounts")[0];
        account["Name"] = json!("Renamed In Salesforce");
        // Takes all 17 digits to print; read back exactly only with float_roundtrip.
        account["CARR_This_Account__c"] = json!(7283168.4860000005_f64);
    });
    h.sandbox.set_slack_failure(Some(SlackFailure {
        status: 404,
        body: "no_service".into(),
    }));
    (user_id, secondary_only)
}

#[tokio::test]
async fn a_snapshot_starts_the_same_world_and_new_ids_stay_clear() {
    let first = Harness::start(generated()).await;
    let (user_id, secondary_only) = change_everything(&first).await;
    let before = persistent_state(&first.sandbox);
    let dump = first.sandbox.dump_state();
    assert_ne!(dump["zendesk"]["global"]["jobs"], json!([]));
    assert_ne!(dump["zendesk"]["global"]["ignored_fields"], json!({}));

    let snapshot = first.sandbox.snapshot();
    // Users carry no organization_id; every membership is listed once, with its id.
    for instance in ZendeskInstance::ALL {
        let zendesk = snapshot.zendesk.get(instance);
        assert!(
            zendesk
                .users
                .iter()
                .all(|u| u.get("organization_id").is_none()),
            "{instance}"
        );
        assert_eq!(
            ids(&zendesk.organization_memberships),
            ids(&first.sandbox.zendesk(instance).organization_memberships()),
            "{instance}"
        );
    }
    let text = snapshot.to_json_pretty();
    let parsed: Fixture = serde_json::from_str(&text).expect("snapshot JSON parses as a fixture");
    assert_eq!(parsed, snapshot);

    let second = Harness::start(parsed).await;
    let after = persistent_state(&second.sandbox);
    assert_eq!(
        first_difference(&before, &after, "state"),
        None,
        "the reloaded sandbox differs"
    );
    let reloaded = second.sandbox.dump_state();
    assert_eq!(reloaded["zendesk"]["global"]["jobs"], json!([]));
    assert_eq!(reloaded["zendesk"]["global"]["ignored_fields"], json!({}));

    let memberships = second
        .global()
        .get(&format!("/api/v2/users/{user_id}/organization_memberships"))
        .await;
    let defaults: Vec<&Value> = memberships.body["organization_memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .map(|m| &m["default"])
        .collect();
    assert_eq!(
        defaults,
        [&Value::Null, &json!(true)],
        "default stays on the second"
    );
    for (instance, email) in [
        (ZendeskInstance::Global, "snap.second@shot.example"),
        (ZendeskInstance::Usgov, secondary_only),
    ] {
        let found = second
            .zendesk(instance)
            .get(&format!("/api/v2/users/search?query=email:{email}"))
            .await;
        assert_eq!(found.body["count"], json!(1), "{instance} {email}");
    }
    let create_users = second
        .global()
        .post("/api/v2/users/create_many", json!({"users": []}))
        .await;
    assert_eq!(create_users.status, 403, "bulk user import stays off");

    let global = second.sandbox.zendesk(ZendeskInstance::Global);
    let old_orgs = ids(&global.organizations());
    let old_users = ids(&global.users());
    let old_memberships = ids(&global.organization_memberships());
    let org = second
        .global()
        .create_org(json!({"name": "After Reload"}))
        .await;
    let org_id = org["id"].as_u64().expect("id");
    assert!(
        old_orgs.iter().all(|id| *id < org_id),
        "{org_id} is not past {old_orgs:?}"
    );
    let user = second
        .global()
        .create_user(
            json!({"name": "After Reload", "email": "after@reload.example",
                            "organization_id": org_id}),
        )
        .await;
    let new_user = user["id"].as_u64().expect("id");
    assert!(old_users.iter().all(|id| *id < new_user), "{new_user}");
    let membership = global
        .organization_memberships()
        .into_iter()
        .find(|m| m["user_id"] == json!(new_user))
        .expect("membership of the new user");
    let membership_id = membership["id"].as_u64().expect("id");
    assert!(
        old_memberships.iter().all(|id| *id < membership_id),
        "{membership_id}"
    );
}

#[tokio::test]
async fn a_snapshot_is_stable_bytes_and_a_fixed_point() {
    let h = Harness::start(generated()).await;
    change_everything(&h).await;
    let once = h.sandbox.snapshot().to_json_pretty();
    let twice = h.sandbox.snapshot().to_json_pretty();
    assert!(once == twice, "two snapshots of one state differ");

    // Loading it and taking a snapshot again gives the same bytes: timestamps keep their
    // fractions, nothing is added (a default membership, a touched updated_at) or lost.
    let parsed: Fixture = serde_json::from_str(&once).expect("parses");
    let reloaded = Harness::start(parsed).await;
    let again = reloaded.sandbox.snapshot().to_json_pretty();
    if once != again {
        let (a, b): (Value, Value) = (
            serde_json::from_str(&once).expect("json"),
            serde_json::from_str(&again).expect("json"),
        );
        panic!(
            "snapshot after reload differs: {:?}",
            first_difference(&a, &b, "fixture")
        );
    }
}
