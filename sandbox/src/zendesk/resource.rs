//! One machinery for the records of an instance — organizations and users (memberships use
//! the parts that fit them): the HTTP handlers that list, show, create and update them, singly
//! and as background jobs, and the lookups those share (by external id, as stored and as the
//! lagging search index has it). What differs between them is a [`Resource`]: its names and its
//! rules, which live with the record.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::InstanceState;
use super::attributes::same_key;
use super::errors::{RecordInvalid, ZendeskError};
use super::index::{Indexed, Lagging};
use super::job_book::{JobWork, RecordRef, UpdateItem};
use super::jobs;
use super::pagination::{self, Offset, PageRequest};
use super::request::{
    self, RequestUrl, json_object, numeric_ids, path_id, root_array, root_object,
};
use super::store::InstanceData;
use crate::error::FixtureError;

/// What the machinery needs of one kind of record.
pub(crate) trait Resource: 'static {
    type Record: 'static;
    /// What the search index keeps of a record written within its delay.
    type Indexed: 'static;
    /// `organization`: the root of one record in a request or an answer.
    const SINGULAR: &'static str;
    /// `organizations`: the root of a list and of a bulk request.
    const PLURAL: &'static str;

    fn records(data: &InstanceData) -> &BTreeMap<u64, Self::Record>;
    fn lagging(data: &InstanceData) -> &Lagging<Self::Indexed>;
    fn external_id(record: &Self::Record) -> Option<&str>;
    fn indexed_external_id(indexed: &Self::Indexed) -> Option<&str>;
    /// The record as the API answers it.
    fn render(data: &InstanceData, id: u64) -> Value;
    fn create(
        data: &mut InstanceData,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<u64, RecordInvalid>;
    /// `None` when there is no such record.
    fn update(
        data: &mut InstanceData,
        id: u64,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<Result<(), RecordInvalid>>;
    fn create_work(items: Vec<Map<String, Value>>) -> JobWork;
    fn update_work(items: Vec<UpdateItem>) -> JobWork;

    /// The records a list answers with, in id order (a list's own filters apply).
    fn listed(data: &InstanceData, url: &RequestUrl) -> Vec<u64> {
        let _ = url;
        Self::records(data).keys().copied().collect()
    }

    /// Whether the account takes a Create Many of these records (users: bulk import).
    fn may_create_many(data: &InstanceData) -> Result<(), ZendeskError> {
        let _ = data;
        Ok(())
    }
}

impl InstanceData {
    /// The record whose external id is `external_id` (case-insensitively).
    pub(crate) fn find_by_external_id<R: Resource>(&self, external_id: &str) -> Option<u64> {
        R::records(self)
            .iter()
            .find(|(_, record)| R::external_id(record).is_some_and(|e| same_key(e, external_id)))
            .map(|(id, _)| *id)
    }

    /// The record an update item names.
    pub(crate) fn resolve<R: Resource>(&self, target: &RecordRef) -> Option<u64> {
        match target {
            RecordRef::Id(id) => R::records(self).contains_key(id).then_some(*id),
            RecordRef::ExternalId(external_id) => self.find_by_external_id::<R>(external_id),
            RecordRef::Unnamed => None,
        }
    }

    /// External-id search as the index answers it: the lowest id among the records whose
    /// indexed state carries it.
    pub(crate) fn search_by_external_id<R: Resource>(&self, external_id: &str) -> Option<u64> {
        let lagging = R::lagging(self);
        if lagging.is_empty() {
            return self.find_by_external_id::<R>(external_id);
        }
        let matches = |e: Option<&str>| e.is_some_and(|e| same_key(e, external_id));
        let current = R::records(self)
            .iter()
            .filter(|(id, record)| !lagging.is_lagging(**id) && matches(R::external_id(record)))
            .map(|(id, _)| *id)
            .next();
        let earlier = lagging
            .ids()
            .filter(|id| match lagging.get(*id) {
                Indexed::Earlier(before) => {
                    before.is_some_and(|i| matches(R::indexed_external_id(i)))
                }
                Indexed::Current => false,
            })
            .min();
        current.into_iter().chain(earlier).min()
    }

    /// A test's change to a record, through the same rules as an API update.
    pub(crate) fn edit<R: Resource>(
        &mut self,
        id: u64,
        record: &Value,
    ) -> Result<Value, FixtureError> {
        let attributes = record
            .as_object()
            .ok_or_else(|| FixtureError::Invalid("changes must be a JSON object".into()))?;
        match R::update(self, id, attributes, Utc::now()) {
            None => Err(FixtureError::Invalid(format!("no {} {id}", R::SINGULAR))),
            Some(Err(invalid)) => Err(FixtureError::Invalid(invalid.summary())),
            Some(Ok(())) => Ok(R::render(self, id)),
        }
    }
}

/// A list, cursor-paginated.
pub(crate) async fn list<R: Resource>(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let request = PageRequest::from_url(&url)?;
    let data = state.data();
    let ids = R::listed(&data, &url);
    Ok(Json(pagination::page(
        ids,
        request,
        R::PLURAL,
        &url,
        &state.server_url,
        |id| R::render(&data, id),
    )))
}

pub(crate) async fn show<R: Resource>(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ZendeskError> {
    let id = path_id(&id)?;
    let data = state.data();
    if !R::records(&data).contains_key(&id) {
        return Err(ZendeskError::RecordNotFound);
    }
    Ok(Json(json!({ R::SINGULAR: R::render(&data, id) })))
}

/// `?ids=` or `?external_ids=`, up to 100; records that do not exist are left out.
pub(crate) async fn show_many<R: Resource>(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let data = state.data();
    let ids = request::requested_records(
        &url,
        |id| R::records(&data).contains_key(&id),
        |external_id| data.find_by_external_id::<R>(external_id),
    )?;
    Ok(Json(pagination::offset_page(
        ids,
        Offset::SHOW_MANY,
        R::PLURAL,
        &url,
        &state.server_url,
        |id| R::render(&data, id),
    )))
}

/// A search's answer: `ids` found, rendered by `render` (the index's view), offset-paginated.
pub(crate) fn search_page<R: Resource>(
    state: &InstanceState,
    url: &RequestUrl,
    offset: Offset,
    ids: Vec<u64>,
    render: impl Fn(u64) -> Value,
) -> Json<Value> {
    Json(pagination::offset_page(
        ids,
        offset,
        R::PLURAL,
        url,
        &state.server_url,
        render,
    ))
}

pub(crate) async fn create<R: Resource>(
    State(state): State<Arc<InstanceState>>,
    body: Bytes,
) -> Result<Response, ZendeskError> {
    let attributes = root_object(&json_object(&body)?, R::SINGULAR)?;
    let mut data = state.data();
    let id = R::create(&mut data, &attributes, Utc::now())?;
    let record = R::render(&data, id);
    Ok((StatusCode::CREATED, Json(json!({ R::SINGULAR: record }))).into_response())
}

/// One record's update, within the per-record update limit (apis.md A7).
pub(crate) async fn update<R: Resource>(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ZendeskError> {
    let id = path_id(&id)?;
    let attributes = root_object(&json_object(&body)?, R::SINGULAR)?;
    if !R::records(&state.data()).contains_key(&id) {
        return Err(ZendeskError::RecordNotFound);
    }
    state
        .limits
        .admit_record_update(&format!("{}:{id}", R::SINGULAR))?;
    let mut data = state.data();
    match R::update(&mut data, id, &attributes, Utc::now()) {
        None => Err(ZendeskError::RecordNotFound),
        Some(Err(invalid)) => Err(invalid.into()),
        Some(Ok(())) => Ok(Json(json!({ R::SINGULAR: R::render(&data, id) }))),
    }
}

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
pub(crate) async fn update_many<R: Resource>(
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
