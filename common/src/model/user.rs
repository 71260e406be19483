//! The US Gov user sync (SPEC §9): `users/zendesk_users.json`, `users/salesforce_contacts.json`,
//! and its compare sets.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Instance, RejectedRecord, SalesforceId};

/// `users/zendesk_users.json`: end-users of the instance, protected users already dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZendeskUsers {
    pub instance: Instance,
    pub users: Vec<ZendeskUser>,
    /// How many users were left out as protected (staff domains, listed emails) or non-end-users.
    #[serde(default)]
    pub excluded: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZendeskUser {
    pub id: u64,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub organization_id: Option<u64>,
    #[serde(default)]
    pub user_fields: Map<String, Value>,
    /// Zendesk's other attributes, kept so the artifact is a faithful snapshot.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `users/salesforce_contacts.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SalesforceContacts {
    pub contacts: Vec<Contact>,
    /// Emails held by two or more contacts: excluded from creates, updates and marks.
    pub ambiguous_emails: Vec<AmbiguousEmail>,
    /// Contacts Salesforce returned without an email.
    pub without_email: usize,
    #[serde(default)]
    pub rejected: Vec<RejectedRecord>,
}

/// A Salesforce contact who should be an end-user of the US Gov org of its account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    /// Trimmed and lower-cased: the join key with Zendesk users.
    pub email: String,
    pub salesforce_id: SalesforceId,
    pub organization_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmbiguousEmail {
    pub email: String,
    pub salesforce_ids: Vec<SalesforceId>,
}

/// A user to create: an end-user in the org of their account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredUser {
    pub name: String,
    pub email: String,
    pub organization_id: u64,
    pub user_fields: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserUpdate {
    pub id: u64,
    /// For the result and for people; the primary email is never changed by an update.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub user_fields: Map<String, Value>,
}

/// A Zendesk end-user no Salesforce contact accounts for: flagged `not_in_sfdc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMark {
    pub id: u64,
    pub email: String,
    pub user_fields: NotInSfdc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotInSfdc {
    pub not_in_sfdc: bool,
}
