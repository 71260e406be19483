//! Slack incoming-webhook sink: records what the sync posts and answers like Slack does
//! (plain-text `ok`, or a plain-text error string; apis.md Part C).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fixture::SlackFailure;

/// The webhook path under `/slack`; any other webhook is a revoked one.
pub(crate) const WEBHOOK_PATH: &str = "/services/T00000000/B00000000/sandbox";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlackMessage {
    pub text: Option<String>,
    pub blocks: Option<Value>,
    /// The whole JSON body as posted.
    pub payload: Value,
    pub received_at: String,
}

pub(crate) struct SlackState {
    messages: Mutex<Vec<SlackMessage>>,
    failure: Mutex<Option<SlackFailure>>,
}

impl SlackState {
    pub(crate) fn new(failure: Option<SlackFailure>) -> Self {
        SlackState {
            messages: Mutex::new(Vec::new()),
            failure: Mutex::new(failure),
        }
    }

    pub(crate) fn messages(&self) -> Vec<SlackMessage> {
        self.messages.lock().expect("slack lock").clone()
    }

    pub(crate) fn failure(&self) -> Option<SlackFailure> {
        self.failure.lock().expect("slack lock").clone()
    }

    pub(crate) fn set_failure(&self, failure: Option<SlackFailure>) {
        *self.failure.lock().expect("slack lock") = failure;
    }

    pub(crate) fn dump(&self) -> Value {
        serde_json::json!({
            "messages": self.messages(),
            "fail_with": self.failure(),
        })
    }
}

pub(crate) fn router(state: Arc<SlackState>) -> Router {
    Router::new()
        .route("/services/{*webhook}", post(receive))
        .with_state(state)
}

async fn receive(
    State(state): State<Arc<SlackState>>,
    Path(webhook): Path<String>,
    body: Bytes,
) -> Response {
    if format!("/services/{webhook}") != WEBHOOK_PATH {
        return plain(StatusCode::NOT_FOUND, "no_service");
    }
    if let Some(failure) = state.failure.lock().expect("slack lock").clone() {
        let status =
            StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return plain(status, &failure.body);
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        _ => return plain(StatusCode::BAD_REQUEST, "invalid_payload"),
    };
    let text = payload
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let blocks = payload.get("blocks").cloned();
    let has_blocks = blocks
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|b| !b.is_empty());
    if text.as_deref().is_none_or(str::is_empty) && !has_blocks {
        return plain(StatusCode::BAD_REQUEST, "no_text");
    }
    state
        .messages
        .lock()
        .expect("slack lock")
        .push(SlackMessage {
            text,
            blocks,
            payload,
            received_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        });
    plain(StatusCode::OK, "ok")
}

fn plain(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}
