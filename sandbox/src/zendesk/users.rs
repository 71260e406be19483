//! Users (apis.md A4, A5): US Gov end-users kept in step with Salesforce contacts, and
//! Global end-users created for sold-to contacts. Their writes keep emails unique and turn
//! `organization_id` into memberships; search takes a query or an external id. Listing,
//! showing and the bulk endpoints are the shared machinery's (`resource.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::attributes::{self, same_key};
use super::errors::{RecordInvalid, ZendeskError};
use super::fields::IgnoredFields;
use super::index::{Indexed, IndexedUser, Lagging};
use super::job_book::{JobWork, UpdateItem};
use super::organizations::reject_unknown;
use super::records::user::{
    OrganizationChange, SECONDARY_EMAILS, User, add_email, apply_attributes,
};
use super::request::{RequestUrl, path_id};
use super::resource::{Resource, Updatable, page_of};
use super::search::UserQuery;
use super::state::InstanceState;
use super::store::InstanceData;
use super::timestamps::{fixture_id, fixture_time};
use crate::error::FixtureError;

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
            self.find_by_external_id::<Users>(external_id)
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
        let now = self.now();
        self.index.note_user(id, now, None);
        Ok(user)
    }

    fn load_user(&mut self, record: &Value) -> Result<Value, FixtureError> {
        let now = self.now();
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

// `role=x` or `role[]=x&role[]=y` (apis.md A1).
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

pub(crate) async fn list_for_organization(
    State(state): State<Arc<InstanceState>>,
    Path(id): Path<String>,
    url: RequestUrl,
) -> Result<Json<Value>, ZendeskError> {
    let organization_id = path_id(&id)?;
    if !state.data().organizations.contains_key(&organization_id) {
        return Err(ZendeskError::RecordNotFound);
    }
    page_of::<Users>(&state, &url, |data| data.members_of(organization_id))
}

/// Users for the shared machinery (`resource.rs`): their rules are `records/user.rs` and the
/// writes above (emails unique, organization changes through memberships).
pub(crate) struct Users;

impl Resource for Users {
    type Record = User;
    const SINGULAR: &'static str = "user";
    const PLURAL: &'static str = "users";

    fn records(data: &InstanceData) -> &BTreeMap<u64, User> {
        &data.users
    }

    fn render(data: &InstanceData, id: u64) -> Value {
        data.render_user(id)
    }

    fn create(
        data: &mut InstanceData,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<u64, RecordInvalid> {
        data.create_user(attributes, now)
    }

    fn create_work(items: Vec<Map<String, Value>>) -> JobWork {
        JobWork::CreateUsers(items)
    }

    /// `role` / `role[]` and `external_id` filter the list.
    fn listed(data: &InstanceData, url: &RequestUrl) -> Vec<u64> {
        let roles = role_filter(url);
        let external_id = url.query.get("external_id");
        data.users
            .values()
            .filter(|u| roles.is_empty() || roles.contains(&u.role))
            .filter(|u| {
                external_id.is_none_or(|e| u.external_id.as_deref().is_some_and(|x| same_key(x, e)))
            })
            .map(|u| u.id)
            .collect()
    }

    /// 403 unless the account has bulk user imports enabled (apis.md A5).
    fn may_create_many(data: &InstanceData) -> Result<(), ZendeskError> {
        if data.bulk_user_import {
            Ok(())
        } else {
            Err(ZendeskError::Forbidden)
        }
    }
}

impl Updatable for Users {
    type Indexed = IndexedUser;

    fn lagging(data: &InstanceData) -> &Lagging<IndexedUser> {
        &data.index.users
    }

    fn external_id(record: &User) -> Option<&str> {
        record.external_id.as_deref()
    }

    fn indexed_external_id(indexed: &IndexedUser) -> Option<&str> {
        indexed.user.external_id.as_deref()
    }

    fn update(
        data: &mut InstanceData,
        id: u64,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<Result<(), RecordInvalid>> {
        data.update_user(id, attributes, now)
    }

    /// A subset of the search syntax, see [`UserQuery`].
    const SEARCH_PARAM: &'static str = "query";
    const SEARCH_MISUSE: &'static str = "Provide either query or external_id";

    fn search(data: &InstanceData, query: &str) -> Result<Vec<u64>, ZendeskError> {
        let query = UserQuery::parse(query).map_err(ZendeskError::QueryError)?;
        Ok(data.search_users(&query))
    }

    fn render_indexed(data: &InstanceData, id: u64) -> Value {
        data.render_indexed_user(id)
    }

    fn update_work(items: Vec<UpdateItem>) -> JobWork {
        JobWork::UpdateUsers(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::ZendeskInstance;
    use crate::zendesk::attributes::tests::attrs;

    fn data() -> InstanceData {
        InstanceData::empty(ZendeskInstance::Usgov)
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
