//! Zendesk organizations as the gather stage maps them (SPEC §4): `zendesk_{instance}.json`,
//! `partner/zendesk_orgs.json` and `users/zendesk_orgs.json`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::instance::{PARTNER_ACCOUNT_TYPES, field};
use super::{Instance, SalesforceId};

/// `zendesk_{instance}.json`: every organization of one instance, managed or not.
/// `partner/zendesk_orgs.json`: the partner organizations of Global, and the other orgs only as
/// [`ForeignRecord`]s. `users/zendesk_orgs.json`: every US Gov organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZendeskOrgs {
    pub instance: Instance,
    pub orgs: Vec<ZendeskOrg>,
    /// Records of the instance this artifact's sync does not own, kept only so that a create
    /// cannot take a name or a key that is already in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<ForeignRecord>,
}

/// The fields of a gathered orgs artifact before its `orgs`, for a gather that encodes the orgs
/// a page at a time ([`crate::store::StreamedArtifact`]).
#[derive(Serialize)]
pub struct ZendeskOrgsHead {
    pub instance: Instance,
}

/// The fields after `orgs`.
#[derive(Serialize)]
pub struct ZendeskOrgsTail<'a> {
    #[serde(skip_serializing_if = "<[ForeignRecord]>::is_empty")]
    pub others: &'a [ForeignRecord],
}

/// A Zendesk record another sync owns, or no sync may write (an agent, a protected user): its id,
/// name and key are all a compare needs to keep from duplicating it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignRecord {
    pub id: u64,
    pub name: String,
    /// Its Salesforce id (orgs) or lower-cased email (users), if it has one.
    pub key: Option<String>,
}

impl ForeignRecord {
    /// An org kept by its id, name and `salesforce_id` field (whatever view of it was read).
    pub fn of_org(id: u64, name: &str, salesforce_id: Option<&str>) -> ForeignRecord {
        ForeignRecord {
            id,
            name: name.to_owned(),
            key: salesforce_id.map(str::to_owned),
        }
    }
}

/// One Zendesk organization. Everything Zendesk returned is kept (`extra`), so the artifact is a
/// faithful snapshot and nothing is lost in a read–write round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZendeskOrg {
    pub id: u64,
    pub name: String,
    /// The `salesforce_id` organization field, trimmed; `None` when empty. It may be invalid:
    /// such an org is unmanaged (see [`ZendeskOrg::managed_id`]).
    pub salesforce_id: Option<String>,
    #[serde(default)]
    pub organization_fields: Map<String, Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Zendesk's other attributes (`url`, `domain_names`, `notes`, timestamps, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ZendeskOrg {
    /// Maps an organization object of the Zendesk API (SPEC §4).
    pub fn from_api(mut raw: Map<String, Value>) -> Result<ZendeskOrg, String> {
        let id = raw
            .remove("id")
            .and_then(|v| v.as_u64())
            .ok_or("organization without a numeric id")?;
        let name = match raw.remove("name") {
            Some(Value::String(name)) => name,
            _ => return Err(format!("organization {id} has no name")),
        };
        let organization_fields = match raw.remove("organization_fields") {
            Some(Value::Object(fields)) => fields,
            // Zendesk sends `null` on accounts without organization fields.
            Some(Value::Null) | None => Map::new(),
            Some(other) => {
                return Err(format!(
                    "organization {id} has organization_fields of type {}",
                    json_type(&other)
                ));
            }
        };
        let tags = match raw.remove("tags") {
            Some(Value::Array(tags)) => tags
                .into_iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let salesforce_id = organization_fields
            .get(field::SALESFORCE_ID)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Ok(ZendeskOrg {
            id,
            name,
            salesforce_id,
            organization_fields,
            tags,
            extra: raw,
        })
    }

    /// The canonical Salesforce id when the org is managed by the sync; `None` for unmanaged
    /// orgs (no or invalid id), which the sync never creates, updates or marks.
    pub fn managed_id(&self) -> Option<SalesforceId> {
        managed_id(self.salesforce_id.as_deref())
    }

    /// The trimmed `account_type` field, if any.
    pub fn account_type(&self) -> Option<&str> {
        self.organization_fields
            .get(field::ACCOUNT_TYPE)
            .and_then(Value::as_str)
            .map(str::trim)
    }

    /// Alliance, open or select partner organization (owned by the partner sync).
    pub fn is_partner(&self) -> bool {
        is_partner_type(self.account_type())
    }
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The one rule for which orgs the sync manages: a `salesforce_id` that parses as a Salesforce
/// id (canonicalised). Every view of a gathered org asks it, so they cannot disagree.
pub fn managed_id(salesforce_id: Option<&str>) -> Option<SalesforceId> {
    salesforce_id.and_then(|id| SalesforceId::parse(id).ok())
}

/// The partner account types: `account_type`, trimmed, is one of them.
pub fn is_partner_type(account_type: Option<&str>) -> bool {
    account_type.is_some_and(|t| PARTNER_ACCOUNT_TYPES.contains(&t.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api_org(fields: Value) -> Map<String, Value> {
        json!({
            "id": 35436, "url": "https://example.zendesk.com/api/v2/organizations/35436",
            "name": "Acme", "domain_names": ["acme.test"], "notes": "VIP",
            "organization_fields": fields, "tags": ["enterprise"],
            "created_at": "2018-11-14T00:14:52Z", "updated_at": "2018-11-14T00:14:52Z"
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn maps_the_api_object_and_trims_the_salesforce_id() {
        let org = ZendeskOrg::from_api(api_org(
            json!({"salesforce_id": "  0011U00000V0tkDQAR ", "am_project_id": 7}),
        ))
        .unwrap();
        assert_eq!(org.id, 35436);
        assert_eq!(org.salesforce_id.as_deref(), Some("0011U00000V0tkDQAR"));
        assert_eq!(org.managed_id().unwrap().as_str(), "0011U00000V0tkDQAR");
        assert_eq!(org.tags, vec!["enterprise"]);
        assert_eq!(org.organization_fields["am_project_id"], json!(7));
    }

    #[test]
    fn empty_or_invalid_ids_are_unmanaged() {
        for id in [json!(""), json!("   "), json!(null)] {
            let org = ZendeskOrg::from_api(api_org(json!({"salesforce_id": id}))).unwrap();
            assert_eq!(org.salesforce_id, None);
            assert_eq!(org.managed_id(), None);
        }
        let org = ZendeskOrg::from_api(api_org(json!({"salesforce_id": "not-an-id"}))).unwrap();
        assert_eq!(org.salesforce_id.as_deref(), Some("not-an-id"));
        assert_eq!(org.managed_id(), None);
        let org = ZendeskOrg::from_api(api_org(Value::Null)).unwrap();
        assert!(org.organization_fields.is_empty());
    }

    #[test]
    fn unknown_zendesk_attributes_survive_a_round_trip() {
        let org =
            ZendeskOrg::from_api(api_org(json!({"salesforce_id": "0011U00000V0tkD"}))).unwrap();
        let text = serde_json::to_string(&org).unwrap();
        let back: ZendeskOrg = serde_json::from_str(&text).unwrap();
        assert_eq!(back, org);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["domain_names"], json!(["acme.test"]));
        assert_eq!(value["notes"], json!("VIP"));
        assert_eq!(
            value["url"],
            json!("https://example.zendesk.com/api/v2/organizations/35436")
        );
    }

    #[test]
    fn partner_types() {
        for (t, partner) in [
            ("alliance_partner", true),
            ("open_partner", true),
            (" select_partner ", true),
            ("customer", false),
        ] {
            let org = ZendeskOrg::from_api(api_org(json!({"account_type": t}))).unwrap();
            assert_eq!(org.is_partner(), partner, "{t}");
        }
    }

    #[test]
    fn malformed_api_objects_are_errors() {
        let mut no_id = api_org(json!({}));
        no_id.remove("id");
        assert!(ZendeskOrg::from_api(no_id).is_err());
        let mut bad_fields = api_org(json!({}));
        bad_fields.insert("organization_fields".into(), json!([1]));
        assert!(
            ZendeskOrg::from_api(bad_fields)
                .unwrap_err()
                .contains("array")
        );
    }

    #[test]
    fn streamed_orgs_are_the_artifact_serde_writes() {
        let org = ZendeskOrg::from_api(
            json!({"id": 5, "name": "Acme", "organization_fields": {"salesforce_id": "0011U00000V0tkDQAR"}, "notes": "n"})
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap();
        for others in [
            vec![],
            vec![ForeignRecord::of_org(
                org.id,
                &org.name,
                org.salesforce_id.as_deref(),
            )],
        ] {
            let head = ZendeskOrgsHead {
                instance: Instance::Global,
            };
            let mut streamed = crate::store::StreamedArtifact::begin(&head, "orgs").unwrap();
            streamed.push(&org).unwrap();
            let bytes = streamed
                .finish(&ZendeskOrgsTail { others: &others })
                .unwrap();
            let whole = serde_json::to_vec(&ZendeskOrgs {
                instance: Instance::Global,
                orgs: vec![org.clone()],
                others,
            })
            .unwrap();
            assert_eq!(bytes, whole);
        }
    }
}
