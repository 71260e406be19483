use serde_json::json;
use zdsync_sandbox::{Fixture, ZendeskInstance};

use crate::support::Harness;

/// The example in FIXTURE.md is a fixture the sandbox accepts, with the effects it describes.
#[tokio::test]
async fn the_documented_example_loads() {
    let doc = include_str!("../../FIXTURE.md");
    let start = doc.find("```json\n").expect("example block") + "```json\n".len();
    let end = start + doc[start..].find("\n```").expect("block end");
    let fixture: Fixture = serde_json::from_str(&doc[start..end]).expect("example parses");
    let h = Harness::start(fixture).await;

    let credentials = h.sandbox.zendesk_credentials(ZendeskInstance::Global);
    assert_eq!(credentials.token, "global-token");
    let user = &h.sandbox.zendesk(ZendeskInstance::Global).users()[0];
    assert_eq!(user["organization_id"], json!(360001000001u64));
    let usgov_create = h
        .usgov()
        .post("/api/v2/users/create_many", json!({"users": []}))
        .await;
    assert_eq!(usgov_create.status, 403, "bulk_user_import: false");
    let org = h
        .usgov()
        .create_org(json!({"name": "Agency", "organization_fields": {"number_of_seats": 5}}))
        .await;
    assert_eq!(
        org["organization_fields"],
        json!({"salesforce_id": null, "support_level": null, "number_of_seats": 5, "mark_for_deletion": null})
    );
}

#[tokio::test]
async fn fixtures_with_unknown_keys_or_invalid_records_are_rejected() {
    let mut typo: Fixture = Fixture::default();
    typo.zendesk.global.organizations = vec![json!({"name": "A", "organisation_fields": {}})];
    assert!(
        zdsync_sandbox::Sandbox::start(crate::support::fast_config(typo))
            .await
            .is_err()
    );

    let mut duplicate = Fixture::default();
    duplicate.zendesk.usgov.organizations = vec![json!({"name": "A"}), json!({"name": "a "})];
    let error = zdsync_sandbox::Sandbox::start(crate::support::fast_config(duplicate))
        .await
        .err()
        .expect("rejected");
    assert!(
        error.to_string().contains("zendesk.usgov.organizations[1]"),
        "{error}"
    );

    let unknown_section = serde_json::from_value::<Fixture>(json!({"zendesk": {"eu": {}}}));
    assert!(unknown_section.is_err());
}
