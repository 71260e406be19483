//! A good citizen of shared APIs (SPEC §8, §10, §5.2): Salesforce's daily allowance in the
//! summary, the report and the metrics with a warning above 80 %; an overrides file of a private
//! project fetched with its token. (The share of Zendesk's rate limit is tested on the client,
//! `common/tests/zendesk_client.rs`, and measured at 10 000 accounts by the bench.)

use std::collections::BTreeMap;

use serde_json::json;
use zdsync::config::Secret;
use zdsync::model::RunSummary;
use zdsync::stages::{Stage, StageStats, artifacts};
use zdsync_cli::asl::ExecutionStatus;
use zdsync_e2e::{Harness, as_of, succeeded};
use zdsync_sandbox::{Fixture, GeneratorOptions, GitlabFile};

/// SPEC §10: every run records its Salesforce calls and the org's daily allowance — here the
/// org's other integrations have used 85 % of it — in the summary, the report and the metrics,
/// and warns above 80 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_s_daily_allowance_is_reported_with_a_warning_above_80_percent() {
    let fixture = Fixture::generate(&GeneratorOptions::new(60, 7, as_of()));
    let h = Harness::tuned(fixture, |c| c.salesforce.daily_api_limit = 1_000).await;
    h.sandbox().salesforce().use_api(850);
    let run = "e2e-allowance";
    let outcome = h.run(run).await;
    succeeded(&outcome);
    let summary: RunSummary = outcome.summary.unwrap();
    let api = summary
        .salesforce_api
        .expect("the allowance is in the summary");
    let used_by_the_run = h.sandbox().salesforce().api_usage() - 850;
    assert_eq!(api.limit, 1_000);
    assert_eq!(api.used, 850 + used_by_the_run, "{api:?}");
    assert!(api.calls >= used_by_the_run && api.calls > 0, "{api:?}");
    assert!(api.is_high());
    let report = zdsync_e2e::report_md(&h, run);
    assert!(
        report.contains("## API use")
            && report.contains("**Warning:** Salesforce API:")
            && report.contains(&format!(
                "the org has used {} of its 1000 daily calls",
                api.used
            )),
        "{report}"
    );
    // The metric the template's alarm reads, from the account gather's own stats.
    let stats: StageStats = h
        .artifact(
            run,
            &format!("{}gather-accounts.json", artifacts::STAGE_STATS),
        )
        .await;
    let record = zdsync::metrics::emf_record("gather-accounts", None, &stats, 0);
    let percent = record["salesforce_api_used_percent"].as_f64().unwrap();
    assert!(percent >= 85.0, "{record}");
    let names: Vec<&str> = record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert!(names.contains(&"salesforce_api_used_percent"), "{names:?}");
}

const TOKEN: &str = "glpat-overrides-7c2e91d4";

/// A managed-content project's overrides file, served only with a token.
fn private_overrides(fixture: &Fixture) -> GitlabFile {
    let id = fixture.generated.as_ref().unwrap().scenarios["expired_over_15_days"][0].clone();
    GitlabFile {
        project: "gitlab-com%2Fsupport%2Fmanaged-content".into(),
        path: "zendesk/overrides.yaml".into(),
        content: format!(
            "- salesforce_id: {id}\n  reason: https://tracker.example/issues/9\n  fields: {{ support_level: premium, sub_sm_premium: true }}\n"
        ),
        token: Some(TOKEN.into()),
    }
}

/// SPEC §5.2 and §10: an `https://` overrides source of a private project is fetched with the
/// token, in `PRIVATE-TOKEN` or as `Authorization: Bearer`; a wrong token or none is
/// `InvalidConfig` naming the setting, and the token is in no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overrides_file_of_a_private_project_is_fetched_with_its_token() {
    let fixture = Fixture::generate(&GeneratorOptions::new(60, 7, as_of()));
    let file = private_overrides(&fixture);
    let mut h = Harness::tuned(fixture, |c| c.gitlab_files = vec![file.clone()]).await;
    let url = file.url(&h.sandbox().base_url());
    h.world.settings_mut().sync.overrides = Some(url.clone());

    let process = |run: &str| json!({"run_id": run, "as_of": zdsync_e2e::AS_OF});

    // No token: the project is not found for an anonymous reader (GitLab answers 404).
    let refused = h
        .run_with("e2e-overrides-none", true, BTreeMap::new())
        .await;
    assert_eq!(refused.record.status, ExecutionStatus::Failed);
    assert_eq!(refused.record.error.as_deref(), Some("InvalidConfig"));
    let cause = refused.record.cause.unwrap();
    assert!(cause.contains("sync.overrides_token"), "{cause}");

    // The token in PRIVATE-TOKEN (the default): loaded, and the override applied.
    h.world.settings_mut().sync.overrides_token = Some(Secret::new(TOKEN));
    let loaded = h
        .run_with("e2e-overrides-private", true, BTreeMap::new())
        .await;
    succeeded(&loaded);
    let report: zdsync::model::ProcessReport = h
        .artifact("e2e-overrides-private", artifacts::PROCESS_REPORT)
        .await;
    assert_eq!(report.overrides.applied.len(), 1, "{:?}", report.overrides);

    // As a bearer token, where the project expects one.
    h.world.settings_mut().sync.overrides_token_header = "Authorization".into();
    h.stage(Stage::Process, process("e2e-overrides-private"))
        .await
        .unwrap();

    // A wrong token: refused, named, and never shown.
    h.world.settings_mut().sync.overrides_token_header = "PRIVATE-TOKEN".into();
    h.world.settings_mut().sync.overrides_token = Some(Secret::new("glpat-wrong-0000000"));
    let error = h
        .stage(Stage::Process, process("e2e-overrides-private"))
        .await
        .unwrap_err();
    assert_eq!(error.name(), "InvalidConfig");
    let message = error.to_string();
    assert!(
        message.contains("sync.overrides_token") && message.contains("401"),
        "{message}"
    );
    assert!(
        !message.contains("glpat-wrong") && !message.contains(TOKEN),
        "{message}"
    );
}
