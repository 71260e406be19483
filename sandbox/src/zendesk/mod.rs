//! One emulated Zendesk Support instance (apis.md Part A). The sandbox runs two of them,
//! with separate data, credentials, rate-limit windows, job queues and settings.

mod attributes;
mod bulk;
pub(crate) mod default_fields;
mod errors;
mod fields;
mod guard;
mod headers;
mod incremental;
mod index;
mod job_book;
mod jobs;
mod limits;
mod memberships;
mod organizations;
mod pagination;
mod records;
mod request;
mod resource;
mod search;
mod state;
mod store;
mod timestamps;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use serde_json::Value;

use crate::error::FixtureError;
use crate::fixture::ZendeskCredentials;
use crate::instance::ZendeskInstance;
use errors::ZendeskError;
use memberships::Memberships;
use organizations::Organizations;
pub(crate) use state::InstanceState;
use users::Users;

pub(crate) fn router(state: Arc<InstanceState>) -> Router {
    Router::new()
        .route(
            "/api/v2/organizations",
            get(resource::list::<Organizations>).post(resource::create::<Organizations>),
        )
        .route(
            "/api/v2/organizations/show_many",
            get(resource::show_many::<Organizations>),
        )
        .route(
            "/api/v2/organizations/search",
            get(resource::search::<Organizations>),
        )
        .route(
            "/api/v2/organizations/create_many",
            post(bulk::create_many::<Organizations>),
        )
        .route(
            "/api/v2/organizations/update_many",
            put(bulk::update_many::<Organizations>),
        )
        .route(
            "/api/v2/organizations/{id}",
            get(resource::show::<Organizations>).put(resource::update::<Organizations>),
        )
        .route(
            "/api/v2/organizations/{id}/users",
            get(users::list_for_organization),
        )
        .route(
            "/api/v2/organizations/{id}/organization_memberships",
            get(memberships::list_for_organization),
        )
        .route(
            "/api/v2/users",
            get(resource::list::<Users>).post(resource::create::<Users>),
        )
        .route("/api/v2/users/show_many", get(resource::show_many::<Users>))
        .route("/api/v2/users/search", get(resource::search::<Users>))
        .route(
            "/api/v2/users/create_many",
            post(bulk::create_many::<Users>),
        )
        .route("/api/v2/users/update_many", put(bulk::update_many::<Users>))
        .route(
            "/api/v2/users/{id}",
            get(resource::show::<Users>).put(resource::update::<Users>),
        )
        .route(
            "/api/v2/users/{id}/organization_memberships",
            get(memberships::list_for_user).post(memberships::create_for_user),
        )
        .route(
            "/api/v2/users/{id}/organizations/{organization_id}",
            delete(memberships::delete_by_pair),
        )
        .route(
            "/api/v2/organization_memberships",
            get(resource::list::<Memberships>).post(resource::create::<Memberships>),
        )
        .route(
            "/api/v2/organization_memberships/create_many",
            post(bulk::create_many::<Memberships>),
        )
        .route(
            "/api/v2/organization_memberships/{id}",
            get(resource::show::<Memberships>).delete(memberships::delete),
        )
        .route(
            "/api/v2/incremental/organizations",
            get(incremental::organizations::export),
        )
        .route(
            "/api/v2/incremental/users/cursor",
            get(incremental::users::cursor_export),
        )
        .route("/api/v2/job_statuses", get(jobs::list))
        .route("/api/v2/job_statuses/show_many", get(jobs::show_many))
        .route("/api/v2/job_statuses/{id}", get(jobs::show))
        .method_not_allowed_fallback(invalid_endpoint)
        .fallback(invalid_endpoint)
        .layer(from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}

async fn invalid_endpoint() -> ZendeskError {
    ZendeskError::InvalidEndpoint
}

/// Read and change one instance from a test or the CLI, bypassing auth and limits.
#[derive(Clone)]
pub struct ZendeskHandle {
    state: Arc<InstanceState>,
}

impl ZendeskHandle {
    pub(crate) fn new(state: Arc<InstanceState>) -> Self {
        ZendeskHandle { state }
    }

    pub fn instance(&self) -> ZendeskInstance {
        self.state.instance
    }

    pub fn credentials(&self) -> ZendeskCredentials {
        self.state.credentials.clone()
    }

    /// All organizations as the API renders them, by id.
    pub fn organizations(&self) -> Vec<Value> {
        self.state.data().organizations_json()
    }

    pub fn organization(&self, id: u64) -> Option<Value> {
        self.state.data().organization_json(id)
    }

    /// Organizations whose custom field `key` holds `value` (e.g. a `salesforce_id`).
    pub fn organizations_with_field(&self, key: &str, value: &Value) -> Vec<Value> {
        self.organizations()
            .into_iter()
            .filter(|org| org["organization_fields"].get(key) == Some(value))
            .collect()
    }

    pub fn users(&self) -> Vec<Value> {
        self.state.data().users_json()
    }

    pub fn user_by_email(&self, email: &str) -> Option<Value> {
        self.state.data().user_by_email_json(email)
    }

    pub fn organization_memberships(&self) -> Vec<Value> {
        self.state.data().memberships_json()
    }

    pub fn jobs(&self) -> Vec<Value> {
        self.state.data().jobs_json()
    }

    /// Attribute and field keys clients sent that Zendesk ignores, with counts
    /// (`"organization_fields.some_key"`, `"user.some_attribute"`).
    pub fn ignored_fields(&self) -> std::collections::BTreeMap<String, u64> {
        self.state.data().ignored_fields()
    }

    pub fn set_bulk_user_import(&self, enabled: bool) {
        self.state.data().bulk_user_import = enabled;
    }

    /// Creates an organization as an agent would (same validation as the API).
    pub fn insert_organization(&self, attributes: Value) -> Result<Value, FixtureError> {
        self.state.data().seed_organization(&attributes)
    }

    /// Changes an organization as an agent would in the Zendesk UI.
    pub fn update_organization(&self, id: u64, attributes: Value) -> Result<Value, FixtureError> {
        self.state.data().edit::<Organizations>(id, &attributes)
    }

    /// Changes a user as an agent would in the Zendesk UI.
    pub fn update_user(&self, id: u64, attributes: Value) -> Result<Value, FixtureError> {
        self.state.data().edit::<Users>(id, &attributes)
    }

    pub fn insert_user(&self, attributes: Value) -> Result<Value, FixtureError> {
        self.state.data().seed_user(&attributes)
    }

    pub fn dump(&self) -> Value {
        self.state.dump()
    }
}
