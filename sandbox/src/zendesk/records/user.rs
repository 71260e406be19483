//! A user (apis.md A4, A5) and its rules: which attributes it takes, its emails and how it is
//! rendered.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::zendesk::attributes::{self, check, same_key};
use crate::zendesk::errors::RecordInvalid;
use crate::zendesk::fields::{FieldSet, IgnoredFields};
use crate::zendesk::timestamps::{fixture_timestamp, timestamp};

pub(crate) const ROLES: [&str; 3] = ["end-user", "agent", "admin"];

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
pub(crate) const PROFILE_TEXT: [&str; 8] = [
    "details",
    "notes",
    "phone",
    "alias",
    "time_zone",
    "locale",
    "signature",
    "ticket_restriction",
];
pub(crate) const PROFILE_FLAGS: [&str; 2] = ["moderator", "only_private_comments"];
pub(crate) const PROFILE_IDS: [&str; 2] = ["custom_role_id", "default_group_id"];
/// Returned by Zendesk but not writable: accepted and skipped.
pub(crate) const READ_ONLY: [&str; 17] = [
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
pub(crate) const SECONDARY_EMAILS: &str = "secondary_emails";

/// What a write asks for the user's organizations, applied after the user is valid.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum OrganizationChange {
    /// `organization_id`: becomes the only membership (or none for null).
    Replace(Option<u64>),
    /// `organization: {name}`: the named organization, created when missing.
    ByName(String),
}

impl User {
    pub(crate) fn blank(now: DateTime<Utc>) -> Self {
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

    pub(crate) fn emails(&self) -> impl Iterator<Item = &str> {
        self.email
            .iter()
            .chain(&self.secondary_emails)
            .map(String::as_str)
    }

    pub(crate) fn has_email(&self, email: &str) -> bool {
        self.emails().any(|e| same_key(e, email))
    }

    pub(crate) fn profile_text(&self, key: &str, default: &str) -> Value {
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
    pub(crate) fn render(
        &self,
        base_url: &str,
        fields: &FieldSet,
        organization_id: Option<u64>,
    ) -> Value {
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

pub(crate) struct AppliedUser {
    pub(crate) invalid: RecordInvalid,
    pub(crate) organization: Option<OrganizationChange>,
}

pub(crate) fn apply_attributes(
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
pub(crate) fn add_email(user: &mut User, email: &str, creating: bool) {
    if user.has_email(email) || email.is_empty() {
        return;
    }
    if creating && user.email.is_none() {
        user.email = Some(email.to_owned());
    } else {
        user.secondary_emails.push(email.to_owned());
    }
}

pub(crate) fn identity_emails(value: &Value) -> Result<Vec<String>, ()> {
    let identities = value.as_array().ok_or(())?;
    Ok(identities
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("email"))
        .filter_map(|i| i.get("value").and_then(Value::as_str).map(str::to_owned))
        .collect())
}
