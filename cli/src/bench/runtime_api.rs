//! A minimal Lambda Runtime API serving one event to one function process, and its answer.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::oneshot;

pub(super) enum Answer {
    Response(Value),
    Error { error_type: String, message: String },
}

/// The Lambda Runtime API for one invocation: the first `next` gets the event, later ones wait
/// (the process is ended once it has answered).
pub(super) struct RuntimeApi {
    pub(super) address: String,
    pub(super) first_next: Arc<tokio::sync::Mutex<Option<Instant>>>,
    pub(super) answer: oneshot::Receiver<Answer>,
    pub(super) server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
pub(super) struct ApiState {
    pub(super) event: Arc<Mutex<Option<Value>>>,
    pub(super) first_next: Arc<tokio::sync::Mutex<Option<Instant>>>,
    pub(super) answer: Arc<Mutex<Option<oneshot::Sender<Answer>>>>,
}

pub(super) const REQUEST_ID: &str = "00000000-0000-4000-8000-000000000001";

impl RuntimeApi {
    pub(super) async fn serve(event: Value) -> anyhow::Result<RuntimeApi> {
        let (tx, rx) = oneshot::channel();
        let state = ApiState {
            event: Arc::new(Mutex::new(Some(event))),
            first_next: Arc::new(tokio::sync::Mutex::new(None)),
            answer: Arc::new(Mutex::new(Some(tx))),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi {
            address,
            first_next: state.first_next,
            answer: rx,
            server,
        })
    }
}

pub(super) async fn next(State(state): State<ApiState>) -> axum::response::Response {
    {
        let mut first = state.first_next.lock().await;
        first.get_or_insert_with(Instant::now);
    }
    let event = state.event.lock().expect("not poisoned").take();
    let Some(event) = event else {
        // Already handed out: the process waits here until it is ended.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 15 * 60 * 1000;
    let mut headers = HeaderMap::new();
    headers.insert(
        "Lambda-Runtime-Aws-Request-Id",
        REQUEST_ID.parse().expect("header"),
    );
    headers.insert(
        "Lambda-Runtime-Deadline-Ms",
        deadline.to_string().parse().expect("header"),
    );
    headers.insert(
        "Lambda-Runtime-Invoked-Function-Arn",
        "arn:aws:lambda:us-east-1:000000000000:function:bench"
            .parse()
            .expect("header"),
    );
    (StatusCode::OK, headers, axum::Json(event)).into_response()
}

pub(super) fn send(state: &ApiState, answer: Answer) {
    if let Some(tx) = state.answer.lock().expect("not poisoned").take() {
        let _ = tx.send(answer);
    }
}

pub(super) async fn response(
    State(state): State<ApiState>,
    UrlPath(_id): UrlPath<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let output = serde_json::from_slice(&body).unwrap_or(Value::Null);
    send(&state, Answer::Response(output));
    StatusCode::ACCEPTED
}

pub(super) async fn error(
    State(state): State<ApiState>,
    UrlPath(_id): UrlPath<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let diagnostic: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    send(
        &state,
        Answer::Error {
            error_type: diagnostic["errorType"]
                .as_str()
                .unwrap_or("Unhandled")
                .to_owned(),
            message: diagnostic["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        },
    );
    StatusCode::ACCEPTED
}

pub(super) async fn init_error(
    State(state): State<ApiState>,
    body: axum::body::Bytes,
) -> StatusCode {
    send(
        &state,
        Answer::Error {
            error_type: "Runtime.InitError".to_owned(),
            message: String::from_utf8_lossy(&body).into_owned(),
        },
    );
    StatusCode::ACCEPTED
}
