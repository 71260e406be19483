//! The bulk endpoints of organizations and users (apis.md A7): a request's items are checked for
//! their shape and queued as one background job (`jobs.rs`), which applies them later. Apart
//! from the record machinery (`resource.rs`), so that the job runner, which applies the items
//! through the resources, and the endpoints that queue them do not import each other.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value};

use super::errors::ZendeskError;
use super::job_book::{RecordRef, UpdateItem};
use super::jobs;
use super::request::{RequestUrl, json_object, numeric_ids, root_array, root_object};
use super::resource::{Resource, Updatable};
use super::state::InstanceState;

pub(crate) async fn create_many<R: Resource>(
    State(state): State<Arc<InstanceState>>,
    body: Bytes,
) -> Result<Response, ZendeskError> {
    R::may_create_many(&state.data())?;
    let items = root_array(&json_object(&body)?, R::PLURAL)?;
    jobs::enqueue(&state, R::create_work(items))
}

/// Batch form `{"organizations":[{"id":…,…}]}` or bulk form `?ids=…` / `?external_ids=…`
/// with `{"organization":{…}}` applied to each.
pub(crate) async fn update_many<R: Updatable>(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
    body: Bytes,
) -> Result<Response, ZendeskError> {
    let body = json_object(&body)?;
    let items = update_items(&url, &body, R::SINGULAR)?;
    jobs::enqueue(&state, R::update_work(items))
}

/// The items of an update_many request in either of its two forms.
fn update_items(
    url: &RequestUrl,
    body: &Map<String, Value>,
    singular: &str,
) -> Result<Vec<UpdateItem>, ZendeskError> {
    let targets: Option<Vec<RecordRef>> =
        match (url.query.list("ids"), url.query.list("external_ids")) {
            (Some(ids), None) => Some(numeric_ids(&ids)?.into_iter().map(RecordRef::Id).collect()),
            (None, Some(external_ids)) => Some(
                external_ids
                    .into_iter()
                    .map(RecordRef::ExternalId)
                    .collect(),
            ),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(ZendeskError::bad_request(
                    "InvalidParameters",
                    "Provide either ids or external_ids, not both",
                ));
            }
        };
    match targets {
        Some(targets) => {
            let attributes = root_object(body, singular)?;
            Ok(targets
                .into_iter()
                .map(|target| UpdateItem {
                    target,
                    attributes: attributes.clone(),
                })
                .collect())
        }
        None => Ok(root_array(body, &format!("{singular}s"))?
            .into_iter()
            .map(|attributes| UpdateItem {
                target: RecordRef::of_item(&attributes),
                attributes,
            })
            .collect()),
    }
}
