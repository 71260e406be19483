//! Emulation of the Salesforce REST API the sync uses (reference/apis.md Part B): the OAuth
//! token endpoint, SOQL queries with cursors, and Salesforce's errors and limits.
//!
//! Mount [`router`] anywhere (the sandbox nests it under `/salesforce`): routes are relative to
//! the mount point, and a token response's `instance_url` is the mount point as the client
//! reached it (`http://{Host}{prefix}`), or [`SalesforceOptions::public_base_url`] when set.
//!
//! Records are generic sObject JSON: keys are field API names, a lookup is a nested record or
//! `null`, a child relationship is an array of child records. The SOQL subset is described in
//! [`soql::parser`]; what is checked against what is described in [`soql::describe`].
//!
//! Every record carries `SystemModstamp` and `IsDeleted`; changes move the stamp and deleted
//! records go to a recycle bin that `queryAll` reads (see `changes`). Subscription and charge
//! rows, kept nested in their accounts, are also queryable as `Zuora__Subscription__c` and
//! `Zuora__SubscriptionProductCharge__c` with `Zuora__Account__c`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

mod api_error;
mod auth;
mod changes;
mod ids;
mod options;
mod pager;
mod query;
mod request_size;
pub mod soql;
mod state;

pub use api_error::ApiError;
pub use options::SalesforceOptions;
pub use request_size::MAX_URI_AND_HEADERS_BYTES;
pub use state::{RecordError, SalesforceState};

/// The org's records by object API name (`"Account": [...]`, `"Contact": [...]`).
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct SalesforceFixture {
    #[serde(default)]
    pub objects: BTreeMap<String, Vec<serde_json::Value>>,
}

/// The emulated API, with routes relative to where it is mounted.
pub fn router(state: Arc<SalesforceState>) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(auth::token))
        .route("/services/data/{version}/query", get(query::query))
        .route("/services/data/{version}/query/", get(query::query))
        .route(
            "/services/data/{version}/query/{locator}",
            get(query::query_more),
        )
        .route("/services/data/{version}/queryAll", get(query::query_all))
        .route("/services/data/{version}/queryAll/", get(query::query_all))
        // Salesforce's queryAll pages name `/query/{locator}`; both continue the same cursor.
        .route(
            "/services/data/{version}/queryAll/{locator}",
            get(query::query_more),
        )
        .fallback(|| async { ApiError::not_found().into_response() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed().into_response() })
        .layer(axum::middleware::from_fn(request_size::enforce))
        .with_state(state)
}
