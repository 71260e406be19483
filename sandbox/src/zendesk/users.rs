//! Users (apis.md A4, A5): US Gov end-users kept in step with Salesforce contacts, and
//! Global end-users created for sold-to contacts.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::InstanceState;
use super::attributes::{self, check, same_key};
use super::errors::{RecordInvalid, ZendeskError};
use super::fields::{FieldSet, IgnoredFields};
use super::index::{Indexed, IndexedUser};
use super::jobs::{self, JobWork, RecordRef};
use super::organizations::{reject_unknown, update_items};
use super::pagination::{self, Offset, PageRequest};
use super::request::{self, RequestUrl, json_object, path_id, root_array, root_object, timestamp};
use super::search::UserQuery;
use super::store::{InstanceData, fixture_id, fixture_time, fixture_timestamp};
use crate::error::FixtureError;

const ROLES: [&str; 3] = ["end-user", "agent", "admin"];

#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: u64,
    pub name: String,
    /// The primary email, writable on create only.
    pub email: Option<String>,
    /// Emails sent on update are added as secondary identities (apis.md A4).
    pub secondary_emails: Vec<String>,
    pub role: String,
    pub external_id: Option<String>,
    pub fields: Map<String, Value>,
    pub tags: Vec<String>,
    pub verified: bool,
    pub suspended: bool,
    /// Plain profile attributes kept as sent: details, notes, phone, alias, …
    pub profile: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Profile attributes stored as sent, by the JSON type they take.
const PROFILE_TEXT: [&str; 8] = [
    "details",
    "notes",
    "phone",
    "alias",
    "time_zone",
    "locale",
    "signature",
    "ticket_restriction",
];
const PROFILE_FLAGS: [&str; 2] = ["moderator", "only_private_comments"];
const PROFILE_IDS: [&str; 2] = ["custom_role_id", "default_group_id"];
/// Returned by Zendesk but not writable: accepted and skipped.
const READ_ONLY: [&str; 17] = [
    "id",
    "url",
    "created_at",
    "updated_at",
    "active",
    "last_login_at",
    "role_type",
    "shared",
    "shared_agent",
    "iana_time_zone",
    "two_factor_auth_enabled",
    "restricted_agent",
    "photo",
    "chat_only",
    "report_csv",
    "shared_phone_number",
    "skip_verify_email",
];

/// A fixture-only user key: emails that are secondary identities, as an email sent on
/// update becomes one. The API has no such attribute.
const SECONDARY_EMAILS: &str = "secondary_emails";

/// What a write asks for the user's organizations, applied after the user is valid.
#[derive(Clone, Debug, PartialEq)]
enum OrganizationChange {
    /// `organization_id`: becomes the only membership (or none for null).
    Replace(Option<u64>),
    /// `organization: {name}`: the named organization, created when missing.
    ByName(String),
}

impl User {
    fn blank(now: DateTime<Utc>) -> Self {
        User {
            id: 0,
            name: String::new(),
            email: None,
            secondary_emails: Vec::new(),
            role: "end-user".into(),
            external_id: None,
            fields: Map::new(),
            tags: Vec::new(),
            verified: false,
            suspended: false,
            profile: Map::new(),
            created_at: now,
            updated_at: now,
        }
    }

    fn emails(&self) -> impl Iterator<Item = &str> {
        self.email
            .iter()
            .chain(&self.secondary_emails)
            .map(String::as_str)
    }

    pub(crate) fn has_email(&self, email: &str) -> bool {
        self.emails().any(|e| same_key(e, email))
    }

    fn profile_text(&self, key: &str, default: &str) -> Value {
        match self.profile.get(key) {
            Some(Value::String(s)) => json!(s),
            _ => json!(default),
        }
    }

    /// The record as [`InstanceData::seed_user`] loads it back: the stored attributes, the
    /// profile attributes as sent, secondary emails under the fixture-only key
    /// `secondary_emails` (as `identities` they would become the primary email of a user
    /// without one), and no `organization_id`: the memberships are listed on their own.
    pub(crate) fn fixture_record(&self) -> Value {
        let mut record = json!({
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "external_id": self.external_id,
            "tags": self.tags,
            "verified": self.verified,
            "suspended": self.suspended,
        });
        for (key, value) in &self.profile {
            record[key] = value.clone();
        }
        if !self.secondary_emails.is_empty() {
            record[SECONDARY_EMAILS] = json!(self.secondary_emails);
        }
        record["user_fields"] = Value::Object(self.fields.clone());
        record["created_at"] = json!(fixture_timestamp(&self.created_at));
        record["updated_at"] = json!(fixture_timestamp(&self.updated_at));
        record
    }

    /// Unset strings the OAS types as non-nullable render as `""`; nullable ones as null.
    fn render(&self, base_url: &str, fields: &FieldSet, organization_id: Option<u64>) -> Value {
        let end_user = self.role == "end-user";
        let mut user = json!({
            "id": self.id,
            "url": format!("{base_url}/api/v2/users/{}", self.id),
            "name": self.name,
            "email": self.email,
            "created_at": timestamp(&self.created_at),
            "updated_at": timestamp(&self.updated_at),
            "time_zone": self.profile_text("time_zone", "UTC"),
            "iana_time_zone": "Etc/UTC",
            "phone": self.profile.get("phone").cloned().unwrap_or(Value::Null),
            "shared_phone_number": null,
            "photo": null,
            "locale_id": 1,
            "locale": self.profile_text("locale", "en-US"),
            "organization_id": organization_id,
            "role": self.role,
            "verified": self.verified,
            "external_id": self.external_id,
            "tags": self.tags,
            "alias": self.profile_text("alias", ""),
            "active": true,
            "shared": false,
            "shared_agent": false,
            "two_factor_auth_enabled": null,
            "signature": self.profile_text("signature", ""),
            "details": self.profile_text("details", ""),
            "notes": self.profile_text("notes", ""),
            "role_type": if self.role == "admin" { json!(4) } else { Value::Null },
            "custom_role_id": self.profile.get("custom_role_id").cloned().unwrap_or(Value::Null),
            "moderator": self.profile.get("moderator").cloned().unwrap_or(json!(false)),
            "ticket_restriction": self.profile.get("ticket_restriction").cloned()
                .unwrap_or(if end_user { json!("requested") } else { Value::Null }),
            "only_private_comments": self.profile.get("only_private_comments").cloned().unwrap_or(json!(false)),
            "restricted_agent": end_user,
            "suspended": self.suspended,
            "report_csv": false,
            "user_fields": fields.render(&self.fields),
        });
        if let Some(group) = self
            .profile
            .get("default_group_id")
            .filter(|g| !g.is_null())
        {
            user["default_group_id"] = group.clone();
        }
        user
    }
}

struct AppliedUser {
    invalid: RecordInvalid,
    organization: Option<OrganizationChange>,
}

fn apply_attributes(
    user: &mut User,
    attributes: &Map<String, Value>,
    creating: bool,
    fields: &FieldSet,
    ignored: &mut IgnoredFields,
) -> AppliedUser {
    let mut invalid = RecordInvalid::default();
    let mut organization = None;
    for (key, value) in attributes {
        let inv = &mut invalid;
        match key.as_str() {
            "name" => {
                if let Some(name) = check(attributes::text(value), key, value, inv) {
                    user.name = name.trim().to_owned();
                }
            }
            "email" => {
                if let Some(email) =
                    check(attributes::nullable_text(value), key, value, inv).flatten()
                {
                    add_email(user, email.trim(), creating);
                }
            }
            "identities" if creating => {
                let emails = identity_emails(value);
                if let Some(emails) = check(emails, key, value, inv) {
                    emails.iter().for_each(|email| add_email(user, email, true));
                }
            }
            "role" => match value.as_str().filter(|r| ROLES.contains(r)) {
                Some(role) => user.role = role.to_owned(),
                None => inv.add(key, "InvalidValue", format!("Role: {value} is not valid")),
            },
            "external_id" => {
                if let Some(v) = check(attributes::nullable_text(value), key, value, inv) {
                    user.external_id = v;
                }
            }
            "tags" => {
                if let Some(v) = check(attributes::text_list(value), key, value, inv) {
                    user.tags = v;
                }
            }
            "verified" | "suspended" => {
                if let Some(v) = check(attributes::boolean(value), key, value, inv) {
                    *if key == "verified" {
                        &mut user.verified
                    } else {
                        &mut user.suspended
                    } = v;
                }
            }
            "organization_id" => {
                if let Some(v) = check(attributes::nullable_id(value), key, value, inv) {
                    organization = Some(OrganizationChange::Replace(v));
                }
            }
            "organization" => match value.get("name").and_then(Value::as_str) {
                Some(name) => organization = Some(OrganizationChange::ByName(name.to_owned())),
                None => inv.add(
                    key,
                    "InvalidValue",
                    "Organization: a name is required".into(),
                ),
            },
            "user_fields" => fields.merge(&mut user.fields, value, key, inv, ignored),
            k if PROFILE_TEXT.contains(&k) => {
                if check(attributes::nullable_text(value), key, value, inv).is_some() {
                    user.profile.insert(key.clone(), value.clone());
                }
            }
            k if PROFILE_FLAGS.contains(&k) => {
                if check(attributes::boolean(value), key, value, inv).is_some() {
                    user.profile.insert(key.clone(), value.clone());
                }
            }
            k if PROFILE_IDS.contains(&k) => {
                if let Some(id) = check(attributes::nullable_id(value), key, value, inv) {
                    user.profile.insert(key.clone(), json!(id));
                }
            }
            k if READ_ONLY.contains(&k) => {}
            other => ignored.record(&format!("user.{other}")),
        }
    }
    AppliedUser {
        invalid,
        organization,
    }
}

/// On create the first email is the primary one; later ones, and any sent on update, are
/// added as secondary identities.
fn add_email(user: &mut User, email: &str, creating: bool) {
    if user.has_email(email) || email.is_empty() {
        return;
    }
    if creating && user.email.is_none() {
        user.email = Some(email.to_owned());
    } else {
        user.secondary_emails.push(email.to_owned());
    }
}

fn identity_emails(value: &Value) -> Result<Vec<String>, ()> {
    let identities = value.as_array().ok_or(())?;
    Ok(identities
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("email"))
        .filter_map(|i| i.get("value").and_then(Value::as_str).map(str::to_owned))
        .collect())
}

impl InstanceData {
    pub(crate) fn render_user(&self, id: u64) -> Value {
        let user = &self.users[&id];
        user.render(
            &self.base_url,
            &self.user_fields,
            self.default_organization_of(id),
        )
    }

    pub(crate) fn users_json(&self) -> Vec<Value> {
        self.users.keys().map(|id| self.render_user(*id)).collect()
    }

    pub(crate) fn user_by_email_json(&self, email: &str) -> Option<Value> {
        self.users
            .values()
            .find(|u| u.has_email(email))
            .map(|u| self.render_user(u.id))
    }

    fn find_user_by_external_id(&self, external_id: &str) -> Option<u64> {
        self.users
            .values()
            .find(|u| {
                u.external_id
                    .as_deref()
                    .is_some_and(|e| same_key(e, external_id))
            })
            .map(|u| u.id)
    }

    /// Emails (primary or secondary) and external ids are unique, case-insensitively.
    fn user_conflicts(&self, user: &User) -> RecordInvalid {
        let mut invalid = RecordInvalid::default();
        if user.name.is_empty() {
            invalid.add("name", "BlankValue", "Name: cannot be blank".into());
        }
        for email in user.emails() {
            if self
                .users
                .values()
                .any(|other| other.id != user.id && other.has_email(email))
            {
                invalid.add(
                    "email",
                    "DuplicateValue",
                    format!("Email: {email} is already being used by another user"),
                );
            }
        }
        let taken_by_other = |external_id: &String| {
            self.find_user_by_external_id(external_id)
                .is_some_and(|id| id != user.id)
        };
        if let Some(external_id) = user.external_id.as_ref().filter(|e| taken_by_other(e)) {
            invalid.add(
                "external_id",
                "DuplicateValue",
                format!("External id: {external_id} has already been taken"),
            );
        }
        invalid
    }

    /// The organization a write asks for, which must exist unless named for creation.
    fn check_organization_change(&self, change: &Option<OrganizationChange>) -> RecordInvalid {
        match change {
            Some(OrganizationChange::Replace(Some(id))) if !self.organizations.contains_key(id) => {
                RecordInvalid::single(
                    "organization_id",
                    "InvalidValue",
                    format!("Organization: {id} does not exist"),
                )
            }
            _ => RecordInvalid::default(),
        }
    }

    /// Notes, for the search index, what user `id` is before a write at `now` changes them
    /// (or their memberships). Nothing when the index keeps up with writes or an earlier
    /// step of the same write noted them already.
    pub(crate) fn note_user_write(&mut self, id: u64, now: DateTime<Utc>) {
        if !self.index.needs(&self.index.users, id, now) {
            return;
        }
        let before = self.users.get(&id).map(|user| IndexedUser {
            user: user.clone(),
            organization_id: self.default_organization_of(id),
        });
        self.index.note_user(id, now, before);
    }

    /// The user as the search index has them, with their organization (`None`: not in the
    /// index).
    fn indexed_user(&self, id: u64) -> Option<(&User, Option<u64>)> {
        match self.index.users.get(id) {
            Indexed::Current => self
                .users
                .get(&id)
                .map(|user| (user, self.default_organization_of(id))),
            Indexed::Earlier(before) => before.map(|i| (&i.user, i.organization_id)),
        }
    }

    fn render_indexed_user(&self, id: u64) -> Value {
        let (user, organization_id) = self.indexed_user(id).expect("search found it in the index");
        user.render(&self.base_url, &self.user_fields, organization_id)
    }

    /// The users whose indexed state satisfies `query`, by id.
    fn search_users(&self, query: &UserQuery) -> Vec<u64> {
        let lagging = &self.index.users;
        let mut ids: Vec<u64> = self
            .users
            .values()
            .filter(|u| query.matches(u, self.default_organization_of(u.id)))
            .filter(|u| !lagging.is_lagging(u.id))
            .map(|u| u.id)
            .collect();
        if !lagging.is_empty() {
            ids.extend(lagging.ids().filter(|id| {
                self.indexed_user(*id)
                    .is_some_and(|(user, organization_id)| query.matches(user, organization_id))
            }));
            ids.sort_unstable();
        }
        ids
    }

    /// External-id search as the index answers it.
    fn search_users_by_external_id(&self, external_id: &str) -> Option<u64> {
        let lagging = &self.index.users;
        if lagging.is_empty() {
            return self.find_user_by_external_id(external_id);
        }
        let matches = |user: &User| {
            user.external_id
                .as_deref()
                .is_some_and(|e| same_key(e, external_id))
        };
        let current = self
            .users
            .values()
            .filter(|user| matches(user))
            .find(|user| !lagging.is_lagging(user.id))
            .map(|user| user.id);
        let earlier = lagging
            .ids()
            .filter_map(|id| self.indexed_user(id))
            .filter(|(user, _)| matches(user))
            .map(|(user, _)| user.id)
            .min();
        current.into_iter().chain(earlier).min()
    }

    fn apply_organization_change(
        &mut self,
        user_id: u64,
        change: OrganizationChange,
        now: DateTime<Utc>,
    ) {
        let organization_id = match change {
            OrganizationChange::Replace(id) => id,
            OrganizationChange::ByName(name) => Some(match self.find_organization_by_name(&name) {
                Some(id) => id,
                None => {
                    let attributes = json!({"name": name});
                    self.create_organization(attributes.as_object().expect("object"), now)
                        .expect("a free, non-blank name makes a valid organization")
                }
            }),
        };
        self.replace_memberships(user_id, organization_id, now);
    }

    pub(crate) fn create_user(
        &mut self,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<u64, RecordInvalid> {
        let mut user = User::blank(now);
        let applied = apply_attributes(
            &mut user,
            attributes,
            true,
            &self.user_fields,
            &mut self.ignored,
        );
        applied.invalid.into_result()?;
        self.user_conflicts(&user).into_result()?;
        self.check_organization_change(&applied.organization)
            .into_result()?;
        user.id = self.ids.user();
        let id = user.id;
        self.note_user_write(id, now);
        self.users.insert(id, user);
        if let Some(change) = applied.organization {
            self.apply_organization_change(id, change, now);
        }
        Ok(id)
    }

    /// `None` when there is no such user.
    pub(crate) fn update_user(
        &mut self,
        id: u64,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<Result<(), RecordInvalid>> {
        let mut user = self.users.get(&id)?.clone();
        let applied = apply_attributes(
            &mut user,
            attributes,
            false,
            &self.user_fields,
            &mut self.ignored,
        );
        let outcome = applied
            .invalid
            .into_result()
            .and_then(|()| self.user_conflicts(&user).into_result())
            .and_then(|()| {
                self.check_organization_change(&applied.organization)
                    .into_result()
            });
        if outcome.is_ok() {
            self.note_user_write(id, now);
            user.updated_at = now;
            self.users.insert(id, user);
            if let Some(change) = applied.organization {
                self.apply_organization_change(id, change, now);
            }
        }
        Some(outcome)
    }

    pub(crate) fn resolve_user(&self, target: &RecordRef) -> Option<u64> {
        match target {
            RecordRef::Id(id) => self.users.contains_key(id).then_some(*id),
            RecordRef::ExternalId(external_id) => self.find_user_by_external_id(external_id),
            RecordRef::Unnamed => None,
        }
    }

    /// Loads a fixture user: API attributes plus optional `id`, `created_at`, `updated_at`
    /// and `secondary_emails`. `organization_id` makes the default membership.
    pub(crate) fn seed_user(&mut self, record: &Value) -> Result<Value, FixtureError> {
        // The steps of seeding (the membership made at the fixture's `created_at`) are not
        // writes the index sees one by one: a fixture's users are indexed, and one a test
        // adds later is new to the index as a whole.
        let recording = self.index.pause();
        let seeded = self.load_user(record);
        self.index.resume(recording);
        let user = seeded?;
        let id = user["id"].as_u64().expect("a seeded user has an id");
        self.index.note_user(id, Utc::now(), None);
        Ok(user)
    }

    fn load_user(&mut self, record: &Value) -> Result<Value, FixtureError> {
        let now = Utc::now();
        let invalid = |reason: String| FixtureError::Invalid(reason);
        let mut attributes = record
            .as_object()
            .ok_or_else(|| invalid("a user must be a JSON object".into()))?
            .clone();
        let secondary_emails = match attributes.remove(SECONDARY_EMAILS) {
            None => Vec::new(),
            Some(value) => attributes::text_list(&value)
                .map_err(|()| invalid(format!("{SECONDARY_EMAILS} must be a list of strings")))?,
        };
        let mut user = User::blank(now);
        user.created_at = fixture_time(record, "created_at", now).map_err(invalid)?;
        user.updated_at = fixture_time(record, "updated_at", user.created_at).map_err(invalid)?;
        let mut unknown = IgnoredFields::default();
        let applied = apply_attributes(
            &mut user,
            &attributes,
            true,
            &self.user_fields,
            &mut unknown,
        );
        reject_unknown(&unknown)?;
        applied
            .invalid
            .into_result()
            .map_err(|e| invalid(e.summary()))?;
        for email in &secondary_emails {
            add_email(&mut user, email.trim(), false);
        }
        user.id = match fixture_id(record).map_err(invalid)? {
            Some(id) if self.users.contains_key(&id) => {
                return Err(invalid(format!("user id {id} is used twice")));
            }
            Some(id) => id,
            None => self.ids.user(),
        };
        self.user_conflicts(&user)
            .into_result()
            .map_err(|e| invalid(e.summary()))?;
        self.check_organization_change(&applied.organization)
            .into_result()
            .map_err(|e| invalid(e.summary()))?;
        self.ids.reserve_user(user.id);
        let (id, created_at, updated_at) = (user.id, user.created_at, user.updated_at);
        self.users.insert(id, user);
        if let Some(change) = applied.organization {
            self.apply_organization_change(id, change, created_at);
            // Making the membership touches the user; the fixture's `updated_at` stands.
            if let Some(user) = self.users.get_mut(&id) {
                user.updated_at = updated_at;
            }
        }
        Ok(self.render_user(id))
    }
}

/// `role=x` or `role[]=x&role[]=y` (apis.md A1).
fn role_filter(url: &RequestUrl) -> Vec<String> {
    let mut roles: Vec<String> = url
        .query
        .get_all("role")
        .into_iter()
        .map(str::to_owned)
        .collect();
    roles.extend(url.query.get_all("role[]").into_iter().map(str::to_owned));
    roles
}

pub(crate) async fn list(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let request = PageRequest::from_url(&url)?;
    let roles = role_filter(&url);
    let external_id = url.query.get("external_id");
    let data = state.data();
    let ids: Vec<u64> = data
        .users
        .values()
        .filter(|u| roles.is_empty() || roles.contains(&u.role))
        .filter(|u| {
            external_id.is_none_or(|e| u.external_id.as_deref().is_some_and(|x| same_key(x, e)))
        })
        .map(|u| u.id)
        .collect();
    Ok(Json(pagination::page(
        ids,
        request,
        "users",
        &url,
        &state.server_url,
        |id| data.render_user(id),
    )))
}

pub(crate) async fn list_for_organization(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let organization_id = path_id(&id)?;
    let request = PageRequest::from_url(&url)?;
    let data = state.data();
    if !data.organizations.contains_key(&organization_id) {
        return Err(ZendeskError::RecordNotFound);
    }
    let ids = data.members_of(organization_id);
    Ok(Json(pagination::page(
        ids,
        request,
        "users",
        &url,
        &state.server_url,
        |id| data.render_user(id),
    )))
}

pub(crate) async fn show(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ZendeskError> {
    let id = path_id(&id)?;
    let data = state.data();
    if !data.users.contains_key(&id) {
        return Err(ZendeskError::RecordNotFound);
    }
    Ok(Json(json!({"user": data.render_user(id)})))
}

pub(crate) async fn show_many(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let data = state.data();
    let ids = request::requested_records(
        &url,
        |id| data.users.contains_key(&id),
        |external_id| data.find_user_by_external_id(external_id),
    )?;
    Ok(Json(pagination::offset_page(
        ids,
        Offset::SHOW_MANY,
        "users",
        &url,
        &state.server_url,
        |id| data.render_user(id),
    )))
}

/// `?query=` (a subset of the search syntax, see [`UserQuery`]) or `?external_id=`; offset
/// pagination only. Answered from the search index, which may lag behind writes (see
/// `SandboxConfig::search_index_delay`).
pub(crate) async fn search(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let offset = Offset::from_url(&url)?;
    let mut data = state.data();
    data.index.catch_up(Utc::now());
    let ids: Vec<u64> = match (url.query.get("query"), url.query.get("external_id")) {
        (Some(query), None) => {
            let query = UserQuery::parse(query).map_err(ZendeskError::QueryError)?;
            data.search_users(&query)
        }
        (None, Some(external_id)) => data
            .search_users_by_external_id(external_id)
            .into_iter()
            .collect(),
        _ => {
            return Err(ZendeskError::bad_request(
                "InvalidParameters",
                "Provide either query or external_id",
            ));
        }
    };
    Ok(Json(pagination::offset_page(
        ids,
        offset,
        "users",
        &url,
        &state.server_url,
        |id| data.render_indexed_user(id),
    )))
}

pub(crate) async fn create(
    State(state): State<Arc<InstanceState>>,
    body: Bytes,
) -> Result<Response, ZendeskError> {
    let attributes = root_object(&json_object(&body)?, "user")?;
    let mut data = state.data();
    let id = data.create_user(&attributes, Utc::now())?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": data.render_user(id)})),
    )
        .into_response())
}

pub(crate) async fn update(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ZendeskError> {
    let id = path_id(&id)?;
    let attributes = root_object(&json_object(&body)?, "user")?;
    if !state.data().users.contains_key(&id) {
        return Err(ZendeskError::RecordNotFound);
    }
    state.limits.admit_record_update(&format!("user:{id}"))?;
    let mut data = state.data();
    match data.update_user(id, &attributes, Utc::now()) {
        None => Err(ZendeskError::RecordNotFound),
        Some(Err(invalid)) => Err(invalid.into()),
        Some(Ok(())) => Ok(Json(json!({"user": data.render_user(id)}))),
    }
}

/// 403 unless the account has bulk user imports enabled (apis.md A5).
pub(crate) async fn create_many(
    State(state): State<Arc<InstanceState>>,
    body: Bytes,
) -> Result<Response, ZendeskError> {
    if !state.data().bulk_user_import {
        return Err(ZendeskError::Forbidden);
    }
    let items = root_array(&json_object(&body)?, "users")?;
    jobs::enqueue(&state, JobWork::CreateUsers(items))
}

pub(crate) async fn update_many(
    State(state): State<Arc<InstanceState>>,
    url: RequestUrl,
    body: Bytes,
) -> Result<Response, ZendeskError> {
    let body = json_object(&body)?;
    let items = update_items(&url, &body, "user")?;
    jobs::enqueue(&state, JobWork::UpdateUsers(items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::ZendeskFixture;
    use crate::instance::ZendeskInstance;

    fn data() -> InstanceData {
        InstanceData::from_fixture(
            ZendeskInstance::Usgov,
            "http://h/zendesk/usgov",
            &ZendeskFixture::default(),
            1,
        )
        .expect("empty fixture loads")
    }

    fn attrs(value: Value) -> Map<String, Value> {
        value.as_object().expect("object").clone()
    }

    #[test]
    fn emails_are_unique_case_insensitively() {
        let mut data = data();
        let now = Utc::now();
        data.create_user(&attrs(json!({"name": "A", "email": "pat@x.example"})), now)
            .expect("created");
        let err = data
            .create_user(&attrs(json!({"name": "B", "email": "PAT@x.example"})), now)
            .expect_err("duplicate");
        assert_eq!(
            err.details_json()["email"][0]["error"],
            json!("DuplicateValue")
        );
    }

    #[test]
    fn setting_organization_id_replaces_all_memberships() {
        let mut data = data();
        let now = Utc::now();
        let a = data
            .create_organization(&attrs(json!({"name": "A"})), now)
            .expect("org");
        let b = data
            .create_organization(&attrs(json!({"name": "B"})), now)
            .expect("org");
        let c = data
            .create_organization(&attrs(json!({"name": "C"})), now)
            .expect("org");
        let user = data
            .create_user(
                &attrs(json!({"name": "U", "email": "u@x.example", "organization_id": a})),
                now,
            )
            .expect("user");
        data.add_membership(user, b, None, now)
            .expect("second membership");
        assert_eq!(data.memberships_of(user).len(), 2);
        data.update_user(user, &attrs(json!({"organization_id": c})), now)
            .expect("exists")
            .expect("valid");
        let orgs: Vec<u64> = data
            .memberships_of(user)
            .iter()
            .map(|m| m.organization_id)
            .collect();
        assert_eq!(orgs, vec![c]);
        assert_eq!(data.render_user(user)["organization_id"], json!(c));
    }

    #[test]
    fn email_on_update_becomes_secondary_identity() {
        let mut data = data();
        let now = Utc::now();
        let id = data
            .create_user(&attrs(json!({"name": "A", "email": "a@x.example"})), now)
            .expect("user");
        data.update_user(id, &attrs(json!({"email": "a2@x.example"})), now)
            .expect("exists")
            .expect("valid");
        let user = data.render_user(id);
        assert_eq!(user["email"], json!("a@x.example"));
        assert!(data.users[&id].has_email("A2@x.example"));
    }

    #[test]
    fn seeding_organization_id_keeps_the_fixture_updated_at() {
        let mut data = data();
        let org = data.seed_organization(&json!({"name": "A"})).expect("org");
        let user = data
            .seed_user(&json!({"name": "U", "organization_id": org["id"],
                "created_at": "2024-01-01T00:00:00Z", "updated_at": "2025-06-01T08:30:00Z"}))
            .expect("user");
        assert_eq!(user["organization_id"], org["id"]);
        assert_eq!(user["updated_at"], json!("2025-06-01T08:30:00Z"));
        let membership = &data.memberships_json()[0];
        assert_eq!(membership["created_at"], json!("2024-01-01T00:00:00Z"));
    }

    #[test]
    fn seeded_secondary_emails_stay_secondary() {
        let mut data = data();
        let user = data
            .seed_user(&json!({"name": "A", "secondary_emails": ["late@x.example"]}))
            .expect("seeded");
        assert_eq!(user["email"], Value::Null);
        let id = user["id"].as_u64().expect("id");
        assert!(data.users[&id].has_email("LATE@x.example"));
        assert_eq!(
            data.users[&id].fixture_record()["secondary_emails"],
            json!(["late@x.example"])
        );
        let taken = data.seed_user(&json!({"name": "B", "email": "late@x.example"}));
        assert!(taken.is_err(), "a secondary email is taken too");
        let not_a_list = data.seed_user(&json!({"name": "C", "secondary_emails": "c@x.example"}));
        assert!(not_a_list.is_err());
    }

    #[test]
    fn unknown_organization_id_is_invalid() {
        let mut data = data();
        let err = data
            .create_user(
                &attrs(json!({"name": "A", "organization_id": 99})),
                Utc::now(),
            )
            .expect_err("invalid");
        assert_eq!(err.code(), "InvalidValue");
    }
}
