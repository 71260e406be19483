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

use super::attributes::same_key;
use super::errors::{RecordInvalid, ZendeskError};
use super::index::{Indexed, Lagging};
use super::job_book::{JobWork, RecordRef, UpdateItem};
use super::pagination::{self, Offset, PageRequest};
use super::request::{self, RequestUrl, json_object, path_id, root_object};
use super::state::InstanceState;
use super::store::InstanceData;
use crate::error::FixtureError;

/// What the machinery needs of every kind of record: its names, where it is kept, how it is
/// rendered and created (singly or as a job).
pub(crate) trait Resource: 'static {
    type Record: 'static;
    /// `organization`: the root of one record in a request or an answer.
    const SINGULAR: &'static str;
    /// `organizations`: the root of a list and of a bulk request.
    const PLURAL: &'static str;

    fn records(data: &InstanceData) -> &BTreeMap<u64, Self::Record>;
    /// The record as the API answers it.
    fn render(data: &InstanceData, id: u64) -> Value;
    fn create(
        data: &mut InstanceData,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<u64, RecordInvalid>;
    fn create_work(items: Vec<Map<String, Value>>) -> JobWork;

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

/// Records that are also updated and searched, by id or external id: organizations and users
/// (memberships are only created and deleted).
pub(crate) trait Updatable: Resource {
    /// What the search index keeps of a record written within its delay.
    type Indexed: 'static;

    fn lagging(data: &InstanceData) -> &Lagging<Self::Indexed>;
    fn external_id(record: &Self::Record) -> Option<&str>;
    fn indexed_external_id(indexed: &Self::Indexed) -> Option<&str>;
    /// `None` when there is no such record.
    fn update(
        data: &mut InstanceData,
        id: u64,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<Result<(), RecordInvalid>>;
    fn update_work(items: Vec<UpdateItem>) -> JobWork;

    /// The search endpoint's own parameter beside `external_id` (`name`, `query`), and the
    /// error Zendesk gives when neither or both are sent.
    const SEARCH_PARAM: &'static str;
    const SEARCH_MISUSE: &'static str;
    /// The records the search index finds for `SEARCH_PARAM`'s value (the index caught up).
    fn search(data: &InstanceData, text: &str) -> Result<Vec<u64>, ZendeskError>;
    /// The record as the search index has it (it may lag behind writes).
    fn render_indexed(data: &InstanceData, id: u64) -> Value;
}

impl InstanceData {
    /// The record whose external id is `external_id` (case-insensitively).
    pub(crate) fn find_by_external_id<R: Updatable>(&self, external_id: &str) -> Option<u64> {
        R::records(self)
            .iter()
            .find(|(_, record)| R::external_id(record).is_some_and(|e| same_key(e, external_id)))
            .map(|(id, _)| *id)
    }

    /// The record an update item names.
    pub(crate) fn resolve<R: Updatable>(&self, target: &RecordRef) -> Option<u64> {
        match target {
            RecordRef::Id(id) => R::records(self).contains_key(id).then_some(*id),
            RecordRef::ExternalId(external_id) => self.find_by_external_id::<R>(external_id),
            RecordRef::Unnamed => None,
        }
    }

    /// External-id search as the index answers it: the lowest id among the records whose
    /// indexed state carries it.
    pub(crate) fn search_by_external_id<R: Updatable>(&self, external_id: &str) -> Option<u64> {
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
    pub(crate) fn edit<R: Updatable>(
        &mut self,
        id: u64,
        record: &Value,
    ) -> Result<Value, FixtureError> {
        let attributes = record
            .as_object()
            .ok_or_else(|| FixtureError::Invalid("changes must be a JSON object".into()))?;
        let now = self.now();
        match R::update(self, id, attributes, now) {
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
    page_of::<R>(&state, &url, |data| R::listed(data, &url))
}

/// The records `ids` picks (in id order), cursor-paginated: a list, or the list of one parent
/// record's children (an organization's users, a user's memberships).
pub(crate) fn page_of<R: Resource>(
    state: &InstanceState,
    url: &RequestUrl,
    ids: impl FnOnce(&InstanceData) -> Vec<u64>,
) -> Result<Json<Value>, ZendeskError> {
    let request = PageRequest::from_url(url)?;
    let data = state.data();
    let ids = ids(&data);
    Ok(Json(pagination::page(
        ids,
        request,
        R::PLURAL,
        url,
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
pub(crate) async fn show_many<R: Updatable>(
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

/// A search (apis.md A3) by the resource's own parameter or by `external_id`, not both;
/// answered from the search index, which may lag behind writes (see
/// `SandboxConfig::search_index_delay`), offset-paginated.
pub(crate) async fn search<R: Updatable>(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let offset = Offset::from_url(&url)?;
    let mut data = state.data();
    let now = data.now();
    data.index.catch_up(now);
    let ids: Vec<u64> = match (url.query.get(R::SEARCH_PARAM), url.query.get("external_id")) {
        (Some(text), None) => R::search(&data, text)?,
        (None, Some(external_id)) => data
            .search_by_external_id::<R>(external_id)
            .into_iter()
            .collect(),
        _ => {
            return Err(ZendeskError::bad_request(
                "InvalidParameters",
                R::SEARCH_MISUSE,
            ));
        }
    };
    Ok(Json(pagination::offset_page(
        ids,
        offset,
        R::PLURAL,
        &url,
        &state.server_url,
        |id| R::render_indexed(&data, id),
    )))
}

pub(crate) async fn create<R: Resource>(
    State(state): State<Arc<InstanceState>>,
    body: Bytes,
) -> Result<Response, ZendeskError> {
    let attributes = root_object(&json_object(&body)?, R::SINGULAR)?;
    let mut data = state.data();
    let now = data.now();
    let id = R::create(&mut data, &attributes, now)?;
    let record = R::render(&data, id);
    Ok((StatusCode::CREATED, Json(json!({ R::SINGULAR: record }))).into_response())
}

/// One record's update, within the per-record update limit (apis.md A7).
pub(crate) async fn update<R: Updatable>(
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
    let now = data.now();
    match R::update(&mut data, id, &attributes, now) {
        None => Err(ZendeskError::RecordNotFound),
        Some(Err(invalid)) => Err(invalid.into()),
        Some(Ok(())) => Ok(Json(json!({ R::SINGULAR: R::render(&data, id) }))),
    }
}
