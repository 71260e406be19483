//! The Slack notifier against the sandbox's webhook sink over real HTTP.

use zdsync::config::Secret;
use zdsync::slack::{SlackError, SlackNotifier};
use zdsync_sandbox::{Sandbox, SandboxConfig, SlackFailure};

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts")
}

#[tokio::test]
async fn a_notice_is_posted_as_json_text() {
    let sandbox = sandbox().await;
    let notifier = SlackNotifier::new(Secret::new(sandbox.slack_webhook_url()));

    notifier
        .notify("New organization Acme (0016100001AbCdEAAV) has no contact in Zendesk")
        .await
        .unwrap();

    let messages = sandbox.slack_messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].text.as_deref(),
        Some("New organization Acme (0016100001AbCdEAAV) has no contact in Zendesk")
    );
    assert_eq!(
        messages[0].payload,
        serde_json::json!({"text": messages[0].text})
    );
}

#[tokio::test]
async fn a_revoked_webhook_reports_status_and_body_but_not_the_url() {
    let sandbox = sandbox().await;
    let revoked = format!("{}/slack/services/T0/B0/s3cr3t-path", sandbox.base_url());
    let notifier = SlackNotifier::new(Secret::new(revoked));

    let error = notifier.notify("hello").await.unwrap_err();

    assert_eq!(
        error,
        SlackError::Rejected {
            status: 404,
            body: "no_service".into()
        }
    );
    let shown = format!("{error} {error:?} {notifier:?}");
    assert!(!shown.contains("s3cr3t-path"), "{shown}");
    assert!(sandbox.slack_messages().is_empty());
}

#[tokio::test]
async fn any_status_but_200_is_a_failure() {
    let sandbox = sandbox().await;
    sandbox.set_slack_failure(Some(SlackFailure {
        status: 400,
        body: "invalid_payload".into(),
    }));
    let notifier = SlackNotifier::new(Secret::new(sandbox.slack_webhook_url()));

    let error = notifier.notify("hello").await.unwrap_err();

    assert_eq!(
        error,
        SlackError::Rejected {
            status: 400,
            body: "invalid_payload".into()
        }
    );
}

#[tokio::test]
async fn an_unreachable_webhook_is_reported_without_the_url() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/services/T0/B0/s3cr3t-path");
    let notifier = SlackNotifier::new(Secret::new(url));

    let error = notifier.notify("hello").await.unwrap_err();

    assert!(matches!(error, SlackError::Unreachable { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("s3cr3t-path"));
}
