use zdsync_sandbox::SlackFailure;

use crate::support::{Harness, empty};

async fn post(h: &Harness, url: &str, body: &str) -> (u16, String) {
    let response = h
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("reply");
    let status = response.status().as_u16();
    (status, response.text().await.expect("text"))
}

#[tokio::test]
async fn webhook_records_messages_and_answers_like_slack() {
    let h = Harness::start(empty()).await;
    let url = h.sandbox.slack_webhook_url();
    assert_eq!(
        post(&h, &url, r#"{"text":"Org created without users"}"#).await,
        (200, "ok".into())
    );
    assert_eq!(
        post(
            &h,
            &url,
            r#"{"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"b"}}]}"#
        )
        .await,
        (200, "ok".into())
    );
    assert_eq!(
        post(&h, &url, r#"{"username":"bot"}"#).await,
        (400, "no_text".into())
    );
    assert_eq!(
        post(&h, &url, "text=hello").await,
        (400, "invalid_payload".into())
    );
    let revoked = format!("{}/slack/services/T1/B1/other", h.sandbox.base_url());
    assert_eq!(
        post(&h, &revoked, r#"{"text":"x"}"#).await,
        (404, "no_service".into())
    );

    let messages = h.sandbox.slack_messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0].text.as_deref(),
        Some("Org created without users")
    );
    assert!(messages[1].blocks.is_some());
}

#[tokio::test]
async fn configured_failure_is_returned_until_cleared() {
    let mut fixture = empty();
    fixture.slack.fail_with = Some(SlackFailure {
        status: 404,
        body: "no_service".into(),
    });
    let h = Harness::start(fixture).await;
    let url = h.sandbox.slack_webhook_url();
    assert_eq!(
        post(&h, &url, r#"{"text":"x"}"#).await,
        (404, "no_service".into())
    );
    h.sandbox.set_slack_failure(None);
    assert_eq!(post(&h, &url, r#"{"text":"x"}"#).await, (200, "ok".into()));
    assert_eq!(h.sandbox.slack_messages().len(), 1);
}
