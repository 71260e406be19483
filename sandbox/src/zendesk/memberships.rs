//! Organization memberships (apis.md A6). A user's `organization_id` is the organization of
//! their default membership.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::attributes;
use super::errors::{RecordInvalid, ZendeskError};
use super::job_book::JobWork;
use super::records::membership::Membership;
use super::request::{RequestUrl, json_object, path_id, root_object};
use super::resource::{Resource, page_of};
use super::state::InstanceState;
use super::store::InstanceData;
use super::timestamps::{fixture_id, fixture_time, fixture_timestamp, timestamp};
use crate::error::FixtureError;

impl InstanceData {
    pub(crate) fn default_organization_of(&self, user_id: u64) -> Option<u64> {
        self.memberships_of(user_id)
            .into_iter()
            .find(|m| m.default)
            .map(|m| m.organization_id)
    }

    /// A user's memberships, in id order.
    pub(crate) fn memberships_of(&self, user_id: u64) -> Vec<&Membership> {
        self.memberships_by_user
            .get(&user_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.memberships.get(id))
            .collect()
    }

    fn membership_ids_of(&self, user_id: u64) -> Vec<u64> {
        self.memberships_by_user
            .get(&user_id)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Ids of the users with a membership in `organization_id`, ascending.
    pub(crate) fn members_of(&self, organization_id: u64) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .memberships
            .values()
            .filter(|m| m.organization_id == organization_id)
            .map(|m| m.user_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// A user's first membership becomes their default; `default: true` moves the default.
    pub(crate) fn add_membership(
        &mut self,
        user_id: u64,
        organization_id: u64,
        make_default: Option<bool>,
        now: DateTime<Utc>,
    ) -> Result<u64, RecordInvalid> {
        self.check_new_membership(user_id, organization_id)?;
        self.note_user_write(user_id, now);
        let id = self.ids.membership();
        self.insert_membership(id, user_id, organization_id, make_default, now);
        self.touch_user(user_id, now);
        Ok(id)
    }

    /// Both records exist and the user is not yet a member of the organization.
    fn check_new_membership(
        &self,
        user_id: u64,
        organization_id: u64,
    ) -> Result<(), RecordInvalid> {
        let mut invalid = RecordInvalid::default();
        if !self.users.contains_key(&user_id) {
            invalid.add(
                "user_id",
                "InvalidValue",
                format!("User: {user_id} does not exist"),
            );
        }
        if !self.organizations.contains_key(&organization_id) {
            invalid.add(
                "organization_id",
                "InvalidValue",
                format!("Organization: {organization_id} does not exist"),
            );
        }
        invalid.into_result()?;
        if self
            .memberships_of(user_id)
            .iter()
            .any(|m| m.organization_id == organization_id)
        {
            return Err(RecordInvalid::single(
                "user_id",
                "DuplicateValue",
                "User is already a member of this organization".into(),
            ));
        }
        Ok(())
    }

    fn insert_membership(
        &mut self,
        id: u64,
        user_id: u64,
        organization_id: u64,
        make_default: Option<bool>,
        now: DateTime<Utc>,
    ) {
        let default = self.memberships_of(user_id).is_empty() || make_default == Some(true);
        if default {
            for other in self.membership_ids_of(user_id) {
                if let Some(m) = self.memberships.get_mut(&other) {
                    m.default = false;
                }
            }
        }
        self.memberships_by_user
            .entry(user_id)
            .or_default()
            .insert(id);
        self.memberships.insert(
            id,
            Membership {
                id,
                user_id,
                organization_id,
                default,
                created_at: now,
                updated_at: now,
            },
        );
    }

    /// What writing `organization_id` on a user does: drop every membership, then make the
    /// given organization (if any) the only, default one (apis.md A4 gotcha).
    pub(crate) fn replace_memberships(
        &mut self,
        user_id: u64,
        organization_id: Option<u64>,
        now: DateTime<Utc>,
    ) {
        self.note_user_write(user_id, now);
        for id in self
            .memberships_by_user
            .remove(&user_id)
            .unwrap_or_default()
        {
            self.memberships.remove(&id);
        }
        if let Some(organization_id) = organization_id {
            self.add_membership(user_id, organization_id, Some(true), now)
                .expect("user and organization were checked to exist");
        }
        self.touch_user(user_id, now);
    }

    fn remove_membership(&mut self, id: u64, now: DateTime<Utc>) -> bool {
        let Some(user_id) = self.memberships.get(&id).map(|m| m.user_id) else {
            return false;
        };
        self.note_user_write(user_id, now);
        let removed = self.memberships.remove(&id).expect("found above");
        if let Some(ids) = self.memberships_by_user.get_mut(&removed.user_id) {
            ids.remove(&id);
        }
        let successor = self
            .membership_ids_of(removed.user_id)
            .first()
            .and_then(|next| self.memberships.get_mut(next));
        if let (true, Some(next)) = (removed.default, successor) {
            next.default = true;
            next.updated_at = now;
        }
        self.touch_user(removed.user_id, now);
        true
    }

    fn touch_user(&mut self, user_id: u64, now: DateTime<Utc>) {
        if let Some(user) = self.users.get_mut(&user_id) {
            user.updated_at = now;
        }
    }

    fn render_membership(&self, id: u64) -> Value {
        let m = &self.memberships[&id];
        let organization_name = self
            .organizations
            .get(&m.organization_id)
            .map(|o| o.name.clone());
        json!({
            "id": m.id,
            "url": format!("{}/api/v2/organization_memberships/{}", self.base_url, m.id),
            "user_id": m.user_id,
            "organization_id": m.organization_id,
            // "If false, returns null" (apis.md A6).
            "default": if m.default { json!(true) } else { Value::Null },
            "organization_name": organization_name,
            "view_tickets": false,
            "created_at": timestamp(&m.created_at),
            "updated_at": timestamp(&m.updated_at),
        })
    }

    pub(crate) fn memberships_json(&self) -> Vec<Value> {
        self.memberships
            .keys()
            .map(|id| self.render_membership(*id))
            .collect()
    }

    /// Loads a fixture membership: `user_id`, `organization_id`, optional `default`, `id`,
    /// `created_at`, `updated_at`. Unlike an API write it leaves the user's `updated_at` as
    /// the fixture gave it: loading describes a state, it is not a change.
    pub(crate) fn seed_membership(&mut self, record: &Value) -> Result<Value, FixtureError> {
        let invalid = |reason: String| FixtureError::Invalid(reason);
        let id_of = |key: &str| {
            record
                .get(key)
                .and_then(|v| attributes::nullable_id(v).ok().flatten())
                .ok_or_else(|| invalid(format!("{key} is required")))
        };
        let (user_id, organization_id) = (id_of("user_id")?, id_of("organization_id")?);
        let default = record.get("default").and_then(Value::as_bool);
        let created_at = fixture_time(record, "created_at", self.now()).map_err(invalid)?;
        let updated_at = fixture_time(record, "updated_at", created_at).map_err(invalid)?;
        let explicit_id = fixture_id(record).map_err(invalid)?;
        if explicit_id.is_some_and(|id| self.memberships.contains_key(&id)) {
            return Err(invalid("membership id is used twice".into()));
        }
        self.check_new_membership(user_id, organization_id)
            .map_err(|e| invalid(e.summary()))?;
        let id = explicit_id.unwrap_or_else(|| self.ids.membership());
        self.ids.reserve_membership(id);
        self.insert_membership(id, user_id, organization_id, default, created_at);
        self.memberships
            .get_mut(&id)
            .expect("just inserted")
            .updated_at = updated_at;
        Ok(self.render_membership(id))
    }

    /// The membership as [`InstanceData::seed_membership`] loads it back. Seeding in id order
    /// makes a user's first membership the default, and `default: true` on a later one moves
    /// it there, so a default that is not the user's first membership comes back too.
    pub(crate) fn membership_fixture_record(&self, id: u64) -> Value {
        let m = &self.memberships[&id];
        json!({
            "id": m.id,
            "user_id": m.user_id,
            "organization_id": m.organization_id,
            "default": m.default,
            "created_at": fixture_timestamp(&m.created_at),
            "updated_at": fixture_timestamp(&m.updated_at),
        })
    }
}

pub(crate) async fn list_for_user(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let user_id = path_id(&id)?;
    if !state.data().users.contains_key(&user_id) {
        return Err(ZendeskError::RecordNotFound);
    }
    page_of::<Memberships>(&state, &url, |data| {
        data.memberships
            .values()
            .filter(|m| m.user_id == user_id)
            .map(|m| m.id)
            .collect()
    })
}

pub(crate) async fn list_for_organization(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let organization_id = path_id(&id)?;
    if !state.data().organizations.contains_key(&organization_id) {
        return Err(ZendeskError::RecordNotFound);
    }
    page_of::<Memberships>(&state, &url, |data| {
        data.memberships
            .values()
            .filter(|m| m.organization_id == organization_id)
            .map(|m| m.id)
            .collect()
    })
}

/// A membership for a user of the path (`POST /users/{id}/organization_memberships`); the
/// plain create and Create Many Memberships (up to 100, as a background job, each item
/// validated like a single create when the job runs) are the shared machinery's.
pub(crate) async fn create_for_user(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ZendeskError> {
    let user_id = path_id(&id)?;
    let attributes = root_object(&json_object(&body)?, Memberships::SINGULAR)?;
    let mut data = state.data();
    let now = data.now();
    let id = data.create_membership(&attributes, Some(user_id), now)?;
    let body = json!({ Memberships::SINGULAR: data.render_membership(id) });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Memberships for the shared machinery (`resource.rs`): listed, shown, created singly and
/// as a job; never updated.
pub(crate) struct Memberships;

impl Resource for Memberships {
    type Record = Membership;
    const SINGULAR: &'static str = "organization_membership";
    const PLURAL: &'static str = "organization_memberships";

    fn records(data: &InstanceData) -> &BTreeMap<u64, Membership> {
        &data.memberships
    }

    fn render(data: &InstanceData, id: u64) -> Value {
        data.render_membership(id)
    }

    fn create(
        data: &mut InstanceData,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<u64, RecordInvalid> {
        data.create_membership(attributes, None, now)
    }

    fn create_work(items: Vec<Map<String, Value>>) -> JobWork {
        JobWork::CreateMemberships(items)
    }
}

impl InstanceData {
    /// A membership from its request attributes (`user_id` from the path when given).
    pub(crate) fn create_membership(
        &mut self,
        attributes: &Map<String, Value>,
        path_user: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<u64, RecordInvalid> {
        let mut invalid = RecordInvalid::default();
        let mut id_of = |key: &str| {
            let value = attributes.get(key).unwrap_or(&Value::Null);
            let label = attributes::label(key);
            match attributes::nullable_id(value) {
                Ok(Some(id)) => Some(id),
                Ok(None) => {
                    invalid.add(key, "BlankValue", format!("{label}: cannot be blank"));
                    None
                }
                Err(()) => {
                    invalid.add(key, "InvalidValue", format!("{label}: {value} is invalid"));
                    None
                }
            }
        };
        let user_id = match path_user {
            Some(id) => Some(id),
            None => id_of("user_id"),
        };
        let organization_id = id_of("organization_id");
        let default = attributes.get("default").and_then(Value::as_bool);
        let (Some(user_id), Some(organization_id)) = (user_id, organization_id) else {
            return Err(invalid);
        };
        self.add_membership(user_id, organization_id, default, now)
    }
}

pub(crate) async fn delete(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ZendeskError> {
    let id = path_id(&id)?;
    let mut data = state.data();
    let now = data.now();
    if data.remove_membership(id, now) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ZendeskError::RecordNotFound)
    }
}

pub(crate) async fn delete_by_pair(
    State(state): State<Arc<InstanceState>>,
    Path((user, organization)): Path<(String, String)>,
) -> Result<StatusCode, ZendeskError> {
    let (user_id, organization_id) = (path_id(&user)?, path_id(&organization)?);
    let mut data = state.data();
    let id = data
        .memberships
        .values()
        .find(|m| m.user_id == user_id && m.organization_id == organization_id)
        .map(|m| m.id)
        .ok_or(ZendeskError::RecordNotFound)?;
    let now = data.now();
    data.remove_membership(id, now);
    Ok(StatusCode::NO_CONTENT)
}
