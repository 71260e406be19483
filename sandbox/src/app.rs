//! The one-port HTTP surface: the emulated services under their prefixes, the admin routes,
//! and the counting and fault layers in front of all of them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::connection::ConnectionKiller;
use crate::counters::{Counters, Endpoint};
use crate::faults::{CrashSwitch, Fault, FaultInjector, FaultTarget, Faults};
use crate::instance::ZendeskInstance;
use crate::salesforce::{self, RecordError, SalesforceState};
use crate::slack::{self, SlackState};
use crate::zendesk::{self, InstanceState};

/// Everything the running sandbox shares between requests and with its handle.
pub(crate) struct Hub {
    pub global: Arc<InstanceState>,
    pub usgov: Arc<InstanceState>,
    pub salesforce: Arc<SalesforceState>,
    pub slack: Arc<SlackState>,
    pub counters: Mutex<Counters>,
    pub faults: FaultInjector,
    pub crash: CrashSwitch,
    pub gitlab_files: Arc<Vec<crate::gitlab::GitlabFile>>,
    /// The sandbox clock, shared with both Zendesk instances (and there for Salesforce).
    pub clock: Clock,
}

impl Hub {
    pub(crate) fn zendesk(&self, instance: ZendeskInstance) -> &Arc<InstanceState> {
        match instance {
            ZendeskInstance::Global => &self.global,
            ZendeskInstance::Usgov => &self.usgov,
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        self.counters.lock().expect("counters lock").clone()
    }

    pub(crate) fn dump(&self) -> Value {
        json!({
            "salesforce": self.salesforce.dump(),
            "zendesk": {
                "global": self.global.dump(),
                "usgov": self.usgov.dump(),
            },
            "slack": self.slack.dump(),
            "counters": self.counters(),
            "faults": self.faults.current(),
        })
    }
}

pub(crate) fn router(hub: Arc<Hub>) -> Router {
    let admin = Router::new()
        .route("/state", get(state))
        .route("/counters", get(counters))
        .route("/faults", put(set_faults).get(get_faults))
        .route("/reset-counters", post(reset_counters))
        .route("/clock", get(get_clock).post(advance_clock))
        .route("/salesforce/records/{object}", post(sf_upsert))
        .route(
            "/salesforce/records/{object}/{id}",
            get(sf_get).patch(sf_patch).delete(sf_delete),
        )
        .route(
            "/salesforce/records/{object}/{id}/undelete",
            post(sf_undelete),
        )
        .route("/salesforce/merge", post(sf_merge))
        .with_state(Arc::clone(&hub));
    Router::new()
        .nest(
            "/salesforce",
            salesforce::router(Arc::clone(&hub.salesforce)),
        )
        .nest("/zendesk/global", zendesk::router(Arc::clone(&hub.global)))
        .nest("/zendesk/usgov", zendesk::router(Arc::clone(&hub.usgov)))
        .nest("/slack", slack::router(Arc::clone(&hub.slack)))
        .nest(
            "/gitlab",
            crate::gitlab::router(Arc::clone(&hub.gitlab_files)),
        )
        .nest("/_sandbox", admin)
        .layer(from_fn_with_state(hub, observe))
}

/// Counts every request to an emulated service and, for Zendesk and Salesforce, lets the
/// fault injector answer (or drop the connection) before the service sees it (Zendesk
/// requests only when they are in the faults' `zendesk_only` scope).
async fn observe(State(hub): State<Arc<Hub>>, request: Request, next: Next) -> Response {
    let Some(endpoint) = Endpoint::classify(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let is_write = [Method::POST, Method::PUT, Method::DELETE].contains(request.method());
    if let Ok(instance) = endpoint.service.parse::<ZendeskInstance>()
        && is_write
        && hub.crash.holds(instance)
    {
        // The write that never arrives: the client's process "died" before it did.
        return std::future::pending().await;
    }
    let fault = endpoint.fault_target.and_then(|target| {
        hub.faults
            .decide(target, &endpoint.path, &endpoint.template)
            .map(|f| (target, f))
    });
    hub.counters
        .lock()
        .expect("counters lock")
        .record(&endpoint, fault.map(|(_, f)| f));
    match fault {
        None => next.run(request).await,
        Some((_, Fault::Drop)) => {
            let killer = request.extensions().get::<ConnectionKiller>().cloned();
            drop_connection(killer).await
        }
        Some((target, Fault::ServerError)) => server_error(target),
        Some((_, Fault::Throttle)) => injected_throttle(),
        Some((_, Fault::Lost)) => {
            // The emulated API carries the request out (a write lands), then the answer is
            // lost with the connection: the client cannot know which.
            let killer = request.extensions().get::<ConnectionKiller>().cloned();
            drop(next.run(request).await);
            drop_connection(killer).await
        }
        Some((_, Fault::Slow)) => {
            tokio::time::sleep(std::time::Duration::from_millis(hub.faults.slow_ms())).await;
            next.run(request).await
        }
    }
}

/// Closes the TCP connection without an HTTP response: the connection task drops the
/// connection as soon as it is told, and this request's future with it.
async fn drop_connection(killer: Option<ConnectionKiller>) -> Response {
    match killer {
        Some(killer) => {
            killer.kill();
            std::future::pending().await
        }
        // Only reachable when the router is served by something other than our accept loop.
        None => StatusCode::BAD_GATEWAY.into_response(),
    }
}

fn server_error(target: FaultTarget) -> Response {
    match target {
        FaultTarget::Zendesk => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "InternalServerError", "description": "Injected fault: internal server error"})),
        )
            .into_response(),
        FaultTarget::Salesforce => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!([{"message": "Injected fault: an unexpected error occurred", "errorCode": "UNKNOWN_EXCEPTION"}])),
        )
            .into_response(),
    }
}

fn injected_throttle() -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"error": "APIRateLimitExceeded", "description": "Number of allowed API requests per minute exceeded"})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
    response
}

async fn state(State(hub): State<Arc<Hub>>) -> Json<Value> {
    Json(hub.dump())
}

async fn counters(State(hub): State<Arc<Hub>>) -> Json<Counters> {
    Json(hub.counters())
}

async fn get_faults(State(hub): State<Arc<Hub>>) -> Json<Faults> {
    Json(hub.faults.current())
}

async fn set_faults(State(hub): State<Arc<Hub>>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    if let Err(e) = faults.validate() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response();
    }
    hub.faults.set(faults);
    Json(faults).into_response()
}

async fn reset_counters(State(hub): State<Arc<Hub>>) -> StatusCode {
    *hub.counters.lock().expect("counters lock") = Counters::default();
    StatusCode::NO_CONTENT
}

/// `{"now": "<rfc3339>"}`: the sandbox clock's time, to the millisecond.
fn clock_reading(clock: &Clock) -> Json<Value> {
    Json(json!({"now": clock.now().to_rfc3339_opts(SecondsFormat::Millis, true)}))
}

async fn get_clock(State(hub): State<Arc<Hub>>) -> Json<Value> {
    clock_reading(&hub.clock)
}

/// `{"advance_secs": N}` moves the clock N whole seconds forward (never back) and answers
/// with the new time.
async fn advance_clock(State(hub): State<Arc<Hub>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Advance {
        advance_secs: u64,
    }
    match serde_json::from_slice::<Advance>(&body) {
        Ok(step) => {
            hub.clock.advance(Duration::from_secs(step.advance_secs));
            clock_reading(&hub.clock).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("expected {{\"advance_secs\": <whole seconds ≥ 0>}}: {e}")})),
        )
            .into_response(),
    }
}

/// A JSON error for the Salesforce admin routes: 404 for an unknown record, 400 otherwise.
fn record_error(error: &RecordError) -> Response {
    let status = match error {
        RecordError::NotFound { .. } => StatusCode::NOT_FOUND,
        RecordError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({"error": error.to_string()}))).into_response()
}

fn json_body(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("the body is not JSON: {e}")})),
            )
                .into_response(),
        )
    })
}

/// The live record as it is now, or 404.
fn sf_record(hub: &Hub, object: &str, id: &str) -> Response {
    match hub.salesforce.record(object, id) {
        Some(record) => Json(record).into_response(),
        None => record_error(&RecordError::NotFound {
            object: object.to_owned(),
            id: id.to_owned(),
        }),
    }
}

async fn sf_get(
    State(hub): State<Arc<Hub>>,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    sf_record(&hub, &object, &id)
}

/// `POST /_sandbox/salesforce/records/{object}`: create, or replace the record with the
/// body's `Id`; answers with the record as stored.
async fn sf_upsert(
    State(hub): State<Arc<Hub>>,
    Path(object): Path<String>,
    body: Bytes,
) -> Response {
    let record = match json_body(&body) {
        Ok(record) => record,
        Err(response) => return *response,
    };
    let Some(id) = record.get("Id").and_then(Value::as_str).map(str::to_owned) else {
        return record_error(&RecordError::Invalid("the record has no Id".into()));
    };
    match hub.salesforce.upsert(&object, record) {
        Ok(()) => sf_record(&hub, &object, &id),
        Err(e) => record_error(&e),
    }
}

/// `PATCH /_sandbox/salesforce/records/{object}/{id}`: sets the body's fields.
async fn sf_patch(
    State(hub): State<Arc<Hub>>,
    Path((object, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let fields = match json_body(&body) {
        Ok(fields) => fields,
        Err(response) => return *response,
    };
    match hub.salesforce.patch(&object, &id, &fields) {
        Ok(()) => sf_record(&hub, &object, &id),
        Err(e) => record_error(&e),
    }
}

/// `DELETE /_sandbox/salesforce/records/{object}/{id}`: to the recycle bin; 204.
async fn sf_delete(
    State(hub): State<Arc<Hub>>,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    match hub.salesforce.delete(&object, &id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => record_error(&e),
    }
}

/// `POST /_sandbox/salesforce/records/{object}/{id}/undelete`: back from the recycle bin.
async fn sf_undelete(
    State(hub): State<Arc<Hub>>,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    match hub.salesforce.undelete(&object, &id) {
        Ok(()) => sf_record(&hub, &object, &id),
        Err(e) => record_error(&e),
    }
}

/// `POST /_sandbox/salesforce/merge` `{"master_id": "…", "loser_ids": ["…"]}`; answers with
/// the master as stored.
async fn sf_merge(State(hub): State<Arc<Hub>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Merge {
        master_id: String,
        loser_ids: Vec<String>,
    }
    let merge: Merge = match serde_json::from_slice(&body) {
        Ok(merge) => merge,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("expected {{\"master_id\": \"…\", \"loser_ids\": [\"…\"]}}: {e}")})),
            )
                .into_response();
        }
    };
    let losers: Vec<&str> = merge.loser_ids.iter().map(String::as_str).collect();
    match hub.salesforce.merge_accounts(&merge.master_id, &losers) {
        Ok(()) => sf_record(&hub, "Account", &merge.master_id),
        Err(e) => record_error(&e),
    }
}
