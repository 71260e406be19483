//! Slack incoming webhook: the "new organization without a contact" notice (SPEC §8).
//!
//! Slack answers a webhook post with HTTP 200 and the plain text `ok`; anything else is a
//! failure whose plain-text body names it (`no_service`, `invalid_payload`, …; apis.md
//! Part C). The caller logs and reports a failure and never makes it fatal, so there are no
//! retries here. The webhook URL is the credential: it never appears in an error, a log line
//! or `Debug`.

use std::time::Duration;

use serde_json::json;

use crate::config::Secret;

/// A webhook post that takes longer than this is abandoned; the notice is not worth holding
/// a sync stage for.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest excerpt of Slack's answer kept in an error (it is normally one short word).
const BODY_EXCERPT_CHARS: usize = 200;

/// Why a notice was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// Slack answered with something other than 200.
    #[error("Slack refused the notice with HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    /// Slack could not be reached (or the webhook URL is not a URL).
    #[error("Slack could not be reached: {message}")]
    Unreachable { message: String },
}

/// Posts notices to one Slack channel through its incoming webhook.
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    http: reqwest::Client,
    webhook_url: Secret,
}

impl SlackNotifier {
    pub fn new(webhook_url: Secret) -> Self {
        Self {
            http: reqwest::Client::new(),
            webhook_url,
        }
    }

    /// Posts `{"text": text}`.
    pub async fn notify(&self, text: &str) -> Result<(), SlackError> {
        let url =
            url::Url::parse(self.webhook_url.expose()).map_err(|e| SlackError::Unreachable {
                message: format!("the webhook URL is not a URL ({e})"),
            })?;
        let response = self
            .http
            .post(url)
            .timeout(NOTIFY_TIMEOUT)
            .json(&json!({ "text": text }))
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status == reqwest::StatusCode::OK {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(SlackError::Rejected {
            status: status.as_u16(),
            body: excerpt(&body),
        })
    }
}

/// The failure without the URL (reqwest's `Display` includes it).
fn unreachable(error: reqwest::Error) -> SlackError {
    SlackError::Unreachable {
        message: crate::http::describe_failure(&error.without_url()),
    }
}

fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    let mut excerpt: String = trimmed.chars().take(BODY_EXCERPT_CHARS).collect();
    if trimmed.chars().count() > BODY_EXCERPT_CHARS {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_webhook_url() {
        let notifier =
            SlackNotifier::new(Secret::new("https://hooks.slack.com/services/T/B/s3cr3t"));
        let shown = format!("{notifier:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[tokio::test]
    async fn an_invalid_url_is_reported_without_echoing_it() {
        let notifier = SlackNotifier::new(Secret::new("not a url s3cr3t"));
        let error = notifier.notify("hello").await.unwrap_err();
        assert!(matches!(error, SlackError::Unreachable { .. }));
        assert!(!format!("{error} {error:?}").contains("s3cr3t"));
    }

    #[test]
    fn long_answers_are_cut() {
        assert_eq!(excerpt("  no_service\n"), "no_service");
        let long = excerpt(&"x".repeat(1000));
        assert_eq!(long.chars().count(), BODY_EXCERPT_CHARS + 1);
    }
}
