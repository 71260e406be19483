//! The US Gov user sync (SPEC §9): `users/zendesk_users.json`, `users/salesforce_contacts.json`,
//! and its compare sets.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::instance::field;
use super::org::{ForeignRecord, json_type};
use super::{Instance, RejectedRecord, SalesforceId};

/// `users/zendesk_users.json`: the end-users the user sync owns. Agents, admins and protected
/// users are not in `users`; they are listed in `others` (id, name, email) so that no contact is
/// ever created over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZendeskUsers {
    pub instance: Instance,
    pub users: Vec<ZendeskUser>,
    #[serde(default)]
    pub others: Vec<ForeignRecord>,
    /// Users left out because their email is protected (staff domains, listed emails).
    #[serde(default)]
    pub protected: usize,
    /// Users left out because they are agents or admins.
    #[serde(default)]
    pub not_end_users: usize,
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

impl ZendeskUser {
    /// Maps a user object of the Zendesk API; an object without a numeric id or a text name
    /// cannot be written back and is an error.
    pub fn from_api(mut raw: Map<String, Value>) -> Result<ZendeskUser, String> {
        let id = raw
            .remove("id")
            .and_then(|v| v.as_u64())
            .ok_or("user without a numeric id")?;
        let name = match raw.remove("name") {
            Some(Value::String(name)) => name,
            _ => return Err(format!("user {id} has no name")),
        };
        let email = match raw.remove("email") {
            Some(Value::String(email)) => Some(email),
            None | Some(Value::Null) => None,
            Some(other) => {
                return Err(format!(
                    "user {id} has an email of type {}",
                    json_type(&other)
                ));
            }
        };
        let role = match raw.remove("role") {
            Some(Value::String(role)) => role,
            // Zendesk: "With no role, a new user is an end user".
            None | Some(Value::Null) => "end-user".to_owned(),
            Some(other) => {
                return Err(format!(
                    "user {id} has a role of type {}",
                    json_type(&other)
                ));
            }
        };
        let organization_id = match raw.remove("organization_id") {
            Some(Value::Number(n)) => Some(
                n.as_u64()
                    .ok_or_else(|| format!("user {id} has organization_id {n}"))?,
            ),
            None | Some(Value::Null) => None,
            Some(other) => {
                return Err(format!(
                    "user {id} has an organization_id of type {}",
                    json_type(&other)
                ));
            }
        };
        let user_fields = match raw.remove("user_fields") {
            Some(Value::Object(fields)) => fields,
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                return Err(format!(
                    "user {id} has user_fields of type {}",
                    json_type(&other)
                ));
            }
        };
        Ok(ZendeskUser {
            id,
            name,
            email,
            role,
            organization_id,
            user_fields,
            extra: raw,
        })
    }

    /// The join key: the primary email, trimmed and lower-cased. A user without one is never
    /// matched, and so never marked.
    pub fn email_key(&self) -> Option<String> {
        self.email.as_deref().and_then(email_key)
    }

    pub fn is_end_user(&self) -> bool {
        self.role.trim() == "end-user"
    }

    pub fn is_marked(&self) -> bool {
        self.user_fields.get(field::NOT_IN_SFDC) == Some(&Value::Bool(true))
    }
}

/// An email as the user sync compares it: trimmed and lower-cased (Zendesk matches emails
/// case-insensitively); blank is no email.
pub fn email_key(email: &str) -> Option<String> {
    let email = email.trim();
    (!email.is_empty()).then(|| email.to_lowercase())
}

/// `users/salesforce_contacts.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SalesforceContacts {
    /// Contacts with one email each, in the US Gov org of their account.
    pub contacts: Vec<Contact>,
    /// Emails held by two or more contacts: excluded from creates, updates and marks.
    pub ambiguous_emails: Vec<AmbiguousEmail>,
    /// Users left as they are for another reason: their contact's account has several US Gov
    /// orgs or none, or a contact record that could not be read may stand for them (SPEC §10).
    #[serde(default)]
    pub held: Vec<HeldContact>,
    /// Contacts Salesforce returned without an email.
    pub without_email: usize,
    /// Contacts dropped because their email is protected (staff domains, listed emails).
    #[serde(default)]
    pub protected: usize,
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
    /// The accounts of the contacts sharing it (one per contact, so an id may repeat).
    pub salesforce_ids: Vec<SalesforceId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldContact {
    /// The email of the user left as it is.
    pub email: String,
    /// The contact's account, when its id could be read.
    pub salesforce_id: Option<SalesforceId>,
    pub reason: String,
}

/// A user as Salesforce says it should be: an end-user in the org of their account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredUser {
    pub name: String,
    /// Lower-cased: the join key.
    pub email: String,
    pub organization_id: u64,
    /// The account the contact belongs to (for people and the result; never sent).
    pub salesforce_id: SalesforceId,
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

/// The one field a user mark writes; like an org mark, it deserialises only as `true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotInSfdc {
    #[serde(deserialize_with = "super::diff::must_be_true")]
    pub not_in_sfdc: bool,
}

impl NotInSfdc {
    pub const MARK: NotInSfdc = NotInSfdc { not_in_sfdc: true };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api_user(extra: Value) -> Map<String, Value> {
        let mut user = json!({
            "id": 901, "url": "https://x.zendesk.com/api/v2/users/901", "name": "Pat Lee",
            "email": "Pat.Lee@Example.com", "role": "end-user", "organization_id": 77,
            "user_fields": {"not_in_sfdc": false}, "verified": true
        });
        for (k, v) in extra.as_object().unwrap() {
            user[k] = v.clone();
        }
        user.as_object().unwrap().clone()
    }

    #[test]
    fn maps_the_api_object_and_keys_on_the_lower_cased_email() {
        let user = ZendeskUser::from_api(api_user(json!({}))).unwrap();
        assert_eq!(user.email_key().as_deref(), Some("pat.lee@example.com"));
        assert!(user.is_end_user());
        assert!(!user.is_marked());
        assert_eq!(user.organization_id, Some(77));
        assert_eq!(user.extra["verified"], json!(true));
        let back: ZendeskUser =
            serde_json::from_value(serde_json::to_value(&user).unwrap()).unwrap();
        assert_eq!(back, user);
    }

    #[test]
    fn users_without_an_email_have_no_key_and_null_fields_are_empty() {
        let user = ZendeskUser::from_api(api_user(
            json!({"email": null, "user_fields": null, "organization_id": null, "role": null}),
        ))
        .unwrap();
        assert_eq!(user.email_key(), None);
        assert!(user.user_fields.is_empty());
        assert!(user.is_end_user(), "no role is an end-user");
        assert_eq!(email_key("   "), None);
    }

    #[test]
    fn malformed_users_are_errors() {
        let mut no_id = api_user(json!({}));
        no_id.remove("id");
        assert!(ZendeskUser::from_api(no_id).is_err());
        for bad in [
            json!({"email": 5}),
            json!({"organization_id": "77"}),
            json!({"user_fields": []}),
            json!({"name": null}),
        ] {
            assert!(
                ZendeskUser::from_api(api_user(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_user_mark_can_only_mark() {
        let good = json!({"id": 1, "email": "a@b.c", "user_fields": {"not_in_sfdc": true}});
        assert_eq!(
            serde_json::from_value::<UserMark>(good)
                .unwrap()
                .user_fields,
            NotInSfdc::MARK
        );
        for bad in [
            json!({"id": 1, "email": "a@b.c", "user_fields": {"not_in_sfdc": false}}),
            json!({"id": 1, "email": "a@b.c", "user_fields": {"not_in_sfdc": true, "role": "admin"}}),
        ] {
            assert!(serde_json::from_value::<UserMark>(bad).is_err());
        }
    }
}
