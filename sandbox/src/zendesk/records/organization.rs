//! An organization (apis.md A2, A3) and its rules: which attributes it takes and how it is
//! rendered.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::zendesk::attributes::{self, check};
use crate::zendesk::errors::RecordInvalid;
use crate::zendesk::fields::{FieldSet, IgnoredFields};
use crate::zendesk::timestamps::{fixture_timestamp, timestamp};

#[derive(Clone, Debug)]
pub(crate) struct Organization {
    pub id: u64,
    pub name: String,
    pub external_id: Option<String>,
    pub details: Option<String>,
    pub notes: Option<String>,
    pub domain_names: Vec<String>,
    pub group_id: Option<u64>,
    pub shared_tickets: bool,
    pub shared_comments: bool,
    pub tags: Vec<String>,
    pub fields: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Organization {
    /// The defaults of a new record (the 201 example of apis.md A2).
    pub(crate) fn blank(now: DateTime<Utc>) -> Self {
        Organization {
            id: 0,
            name: String::new(),
            external_id: None,
            details: None,
            notes: None,
            domain_names: Vec::new(),
            group_id: None,
            shared_tickets: false,
            shared_comments: false,
            tags: Vec::new(),
            fields: Map::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The record as [`InstanceData::seed_organization`] loads it back: every stored
    /// attribute, the custom fields as stored, and none of the rendered ones (`url`).
    pub(crate) fn fixture_record(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "external_id": self.external_id,
            "details": self.details,
            "notes": self.notes,
            "domain_names": self.domain_names,
            "group_id": self.group_id,
            "shared_tickets": self.shared_tickets,
            "shared_comments": self.shared_comments,
            "tags": self.tags,
            "organization_fields": self.fields,
            "created_at": fixture_timestamp(&self.created_at),
            "updated_at": fixture_timestamp(&self.updated_at),
        })
    }

    pub(crate) fn render(&self, base_url: &str, fields: &FieldSet) -> Value {
        json!({
            "url": format!("{base_url}/api/v2/organizations/{}", self.id),
            "id": self.id,
            "name": self.name,
            "shared_tickets": self.shared_tickets,
            "shared_comments": self.shared_comments,
            "external_id": self.external_id,
            "created_at": timestamp(&self.created_at),
            "updated_at": timestamp(&self.updated_at),
            "domain_names": self.domain_names,
            "details": self.details,
            "notes": self.notes,
            "group_id": self.group_id,
            "tags": self.tags,
            "organization_fields": fields.render(&self.fields),
        })
    }
}

/// Applies the attributes of a create or update to `org`. Read-only attributes are skipped;
/// unknown ones are dropped, as Zendesk does, and reported to `ignored`.
pub(crate) fn apply_attributes(
    org: &mut Organization,
    attributes: &Map<String, Value>,
    fields: &FieldSet,
    ignored: &mut IgnoredFields,
) -> RecordInvalid {
    let mut invalid = RecordInvalid::default();
    for (key, value) in attributes {
        let inv = &mut invalid;
        match key.as_str() {
            // Zendesk trims before validating, so "Acme " and "Acme" are one name.
            "name" => {
                if let Some(name) = check(attributes::text(value), key, value, inv) {
                    org.name = name.trim().to_owned();
                }
            }
            "external_id" => set(
                &mut org.external_id,
                attributes::nullable_text(value),
                key,
                value,
                inv,
            ),
            "details" => set(
                &mut org.details,
                attributes::nullable_text(value),
                key,
                value,
                inv,
            ),
            "notes" => set(
                &mut org.notes,
                attributes::nullable_text(value),
                key,
                value,
                inv,
            ),
            "domain_names" => set(
                &mut org.domain_names,
                attributes::text_list(value),
                key,
                value,
                inv,
            ),
            "tags" => set(&mut org.tags, attributes::text_list(value), key, value, inv),
            "group_id" => set(
                &mut org.group_id,
                attributes::nullable_id(value),
                key,
                value,
                inv,
            ),
            "shared_tickets" => set(
                &mut org.shared_tickets,
                attributes::boolean(value),
                key,
                value,
                inv,
            ),
            "shared_comments" => set(
                &mut org.shared_comments,
                attributes::boolean(value),
                key,
                value,
                inv,
            ),
            "organization_fields" => fields.merge(&mut org.fields, value, key, inv, ignored),
            "id" | "url" | "created_at" | "updated_at" => {}
            other => ignored.record(&format!("organization.{other}")),
        }
    }
    invalid
}

fn set<T>(
    slot: &mut T,
    read: Result<T, ()>,
    key: &str,
    value: &Value,
    invalid: &mut RecordInvalid,
) {
    if let Some(v) = check(read, key, value, invalid) {
        *slot = v;
    }
}

/// Names compare trimmed and case-insensitively.
pub(crate) fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}
