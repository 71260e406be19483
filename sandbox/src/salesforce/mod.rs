//! Seam for the Salesforce emulation, which is built in its own worktree and replaces this
//! file at merge. Until then every Salesforce path answers Salesforce's array-shaped 404.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// SObject records by object name (`Account`, `Contact`, …); keys are field API names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SalesforceFixture {
    pub objects: BTreeMap<String, Vec<Value>>,
}

pub struct SalesforceState {
    fixture: SalesforceFixture,
}

impl SalesforceState {
    pub fn new(fixture: SalesforceFixture) -> Self {
        SalesforceState { fixture }
    }

    pub fn dump(&self) -> Value {
        json!({ "objects": self.fixture.objects })
    }
}

pub fn router(_state: Arc<SalesforceState>) -> Router {
    Router::new().fallback(not_found)
}

async fn not_found() -> Response {
    let body =
        json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]);
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
