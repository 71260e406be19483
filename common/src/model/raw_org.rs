//! Organizations as compare reads them: the ids, names and keys it joins on, typed; the
//! organization fields kept as their JSON text and parsed one org at a time, when an org is
//! compared. At 200 000 accounts the typed maps of both sides cost ~3.5 GB; their text ~0.4 GB.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::instance::field;
use super::org::{is_partner_type, managed_id};
use super::{DesiredOrg, ForeignRecord, Instance, SalesforceId, ZendeskOrg};

/// A JSON object kept as text. Checked to be an object when read, so parsing it again cannot
/// fail.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct FieldsText(Box<RawValue>);

impl FieldsText {
    pub fn of(fields: &Map<String, Value>) -> FieldsText {
        FieldsText(serde_json::value::to_raw_value(fields).expect("a JSON map serialises"))
    }

    /// The fields as a map (this org's only, for as long as it is compared).
    pub fn parse(&self) -> Map<String, Value> {
        serde_json::from_str(self.0.get()).expect("checked to be a JSON object when read")
    }

    /// Only the fields `T` names (the others are skipped without being built).
    pub fn pick<T: serde::de::DeserializeOwned + Default>(&self) -> T {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl PartialEq for FieldsText {
    fn eq(&self, other: &FieldsText) -> bool {
        self.0.get() == other.0.get()
    }
}

impl<'de> Deserialize<'de> for FieldsText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(serde::de::Error::custom(format!(
                "expected an object of fields, found {}",
                raw.get().chars().take(40).collect::<String>()
            )));
        }
        Ok(FieldsText(raw))
    }
}

/// `{instance}_accounts.json` as compare reads it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RawDesiredOrgs {
    pub instance: Instance,
    pub orgs: Vec<RawDesiredOrg>,
    #[serde(default)]
    pub held_salesforce_ids: Vec<SalesforceId>,
}

impl RawDesiredOrgs {
    /// An instance's desired objects when a run has none: nothing desired, nothing held.
    pub fn empty(instance: Instance) -> RawDesiredOrgs {
        RawDesiredOrgs {
            instance,
            orgs: Vec::new(),
            held_salesforce_ids: Vec::new(),
        }
    }
}

/// A [`DesiredOrg`] with its fields as text; serialises as the same JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawDesiredOrg {
    pub salesforce_id: SalesforceId,
    pub name: String,
    pub organization_fields: FieldsText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sold_tos: Option<JsonText>,
}

/// Any JSON value kept as text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonText(Box<RawValue>);

impl PartialEq for JsonText {
    fn eq(&self, other: &JsonText) -> bool {
        self.0.get() == other.0.get()
    }
}

impl From<&DesiredOrg> for RawDesiredOrg {
    fn from(org: &DesiredOrg) -> RawDesiredOrg {
        RawDesiredOrg {
            salesforce_id: org.salesforce_id.clone(),
            name: org.name.clone(),
            organization_fields: FieldsText::of(&org.organization_fields),
            sold_tos: (!org.sold_tos.is_empty()).then(|| {
                JsonText(
                    serde_json::value::to_raw_value(&org.sold_tos).expect("sold-tos serialise"),
                )
            }),
        }
    }
}

/// The fields compare reads of every gathered org without building its map.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct Sketch {
    #[serde(default)]
    account_type: Option<Value>,
    #[serde(default)]
    mark_for_deletion: Option<Value>,
}

/// `zendesk_{instance}.json` (and the partner sync's orgs) as compare reads it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RawZendeskOrgs {
    pub instance: Instance,
    pub orgs: Vec<RawZendeskOrg>,
    #[serde(default)]
    pub others: Vec<ForeignRecord>,
}

/// A gathered [`ZendeskOrg`] as compare needs it: what the org's other attributes (`tags`,
/// `notes`, timestamps) hold is never compared, so they are not kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "RawZendeskOrgRecord")]
pub struct RawZendeskOrg {
    pub id: u64,
    pub name: String,
    pub salesforce_id: Option<String>,
    pub organization_fields: FieldsText,
    /// From `organization_fields.account_type`: alliance, open or select partner.
    pub partner: bool,
    /// From `organization_fields.mark_for_deletion`.
    pub mark_for_deletion: Option<Value>,
}

#[derive(Deserialize)]
struct RawZendeskOrgRecord {
    id: u64,
    name: String,
    salesforce_id: Option<String>,
    #[serde(default)]
    organization_fields: Option<FieldsText>,
}

impl From<RawZendeskOrgRecord> for RawZendeskOrg {
    fn from(r: RawZendeskOrgRecord) -> RawZendeskOrg {
        let organization_fields = r
            .organization_fields
            .unwrap_or_else(|| FieldsText::of(&Map::new()));
        let sketch: Sketch = organization_fields.pick();
        RawZendeskOrg {
            id: r.id,
            name: r.name,
            salesforce_id: r.salesforce_id,
            partner: is_partner_type(sketch.account_type.as_ref().and_then(Value::as_str)),
            mark_for_deletion: sketch.mark_for_deletion,
            organization_fields,
        }
    }
}

impl From<&ZendeskOrg> for RawZendeskOrg {
    fn from(org: &ZendeskOrg) -> RawZendeskOrg {
        RawZendeskOrg {
            id: org.id,
            name: org.name.clone(),
            salesforce_id: org.salesforce_id.clone(),
            organization_fields: FieldsText::of(&org.organization_fields),
            partner: org.is_partner(),
            mark_for_deletion: org
                .organization_fields
                .get(field::MARK_FOR_DELETION)
                .cloned(),
        }
    }
}

impl RawZendeskOrg {
    /// As [`ZendeskOrg::managed_id`].
    pub fn managed_id(&self) -> Option<SalesforceId> {
        managed_id(self.salesforce_id.as_deref())
    }

    pub fn foreign(&self) -> ForeignRecord {
        ForeignRecord::of_org(self.id, &self.name, self.salesforce_id.as_deref())
    }
}

/// A gathered orgs artifact as the processor (which ids partner orgs carry) and the sync (which
/// records it may write, which keys are taken) read it: ids and keys, none of the fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ZendeskOrgKeys {
    pub instance: Instance,
    pub orgs: Vec<OrgKey>,
    #[serde(default)]
    pub others: Vec<ForeignRecord>,
}

/// An org's id and key, and whether it is a partner org.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "OrgKeyRecord")]
pub struct OrgKey {
    pub id: u64,
    pub salesforce_id: Option<String>,
    pub partner: bool,
}

#[derive(Deserialize)]
struct OrgKeyRecord {
    id: u64,
    salesforce_id: Option<String>,
    #[serde(default)]
    organization_fields: Option<Sketch>,
}

impl From<OrgKeyRecord> for OrgKey {
    fn from(r: OrgKeyRecord) -> OrgKey {
        let account_type = r.organization_fields.and_then(|f| f.account_type);
        OrgKey {
            id: r.id,
            salesforce_id: r.salesforce_id,
            partner: is_partner_type(account_type.as_ref().and_then(Value::as_str)),
        }
    }
}

impl From<&ZendeskOrg> for OrgKey {
    fn from(org: &ZendeskOrg) -> OrgKey {
        OrgKey {
            id: org.id,
            salesforce_id: org.salesforce_id.clone(),
            partner: org.is_partner(),
        }
    }
}

impl OrgKey {
    pub fn managed_id(&self) -> Option<SalesforceId> {
        managed_id(self.salesforce_id.as_deref())
    }
}

/// A stored org as its gather reads it, for the artifact's counts and the partner sync's split:
/// an [`OrgKey`] and the name a foreign record keeps. The fields but the partner type are
/// skipped unbuilt — a [`ZendeskOrg`] builds every field's map, a sixth of a full org read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "OrgFactsRecord")]
pub struct OrgFacts {
    pub key: OrgKey,
    pub name: String,
}

#[derive(Deserialize)]
struct OrgFactsRecord {
    id: u64,
    name: String,
    salesforce_id: Option<String>,
    #[serde(default)]
    organization_fields: Option<Sketch>,
}

impl From<OrgFactsRecord> for OrgFacts {
    fn from(r: OrgFactsRecord) -> OrgFacts {
        OrgFacts {
            key: OrgKey::from(OrgKeyRecord {
                id: r.id,
                salesforce_id: r.salesforce_id,
                organization_fields: r.organization_fields,
            }),
            name: r.name,
        }
    }
}

impl OrgFacts {
    pub fn foreign(&self) -> ForeignRecord {
        ForeignRecord::of_org(self.key.id, &self.name, self.key.salesforce_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_desired_org_read_as_text_writes_the_same_json() {
        let text = r#"{"salesforce_id":"0011U00000V0tkDQAR","name":"Acme","organization_fields":{"support_level":"premium","aar":1000.5,"sub_sm_premium":true},"sold_tos":[{"name":null,"email":"a@acme.example"}]}"#;
        let typed: DesiredOrg = serde_json::from_str(text).unwrap();
        let raw: RawDesiredOrg = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&raw).unwrap(), text);
        assert_eq!(serde_json::to_string(&typed).unwrap(), text);
        assert_eq!(RawDesiredOrg::from(&typed), raw);
        assert_eq!(raw.organization_fields.parse(), typed.organization_fields);
    }

    #[test]
    fn a_gathered_org_keeps_what_compare_reads() {
        let org: RawZendeskOrg = serde_json::from_value(json!({
            "id": 7, "name": "Partner", "salesforce_id": "0011U00000V0tkDQAR",
            "organization_fields": {"account_type": " open_partner ", "mark_for_deletion": "true"},
            "tags": ["x"], "notes": "kept in the artifact, not here"
        }))
        .unwrap();
        assert!(org.partner);
        assert_eq!(org.mark_for_deletion, Some(json!("true")));
        let typed: ZendeskOrg = serde_json::from_value(json!({
            "id": 7, "name": "Partner", "salesforce_id": "0011U00000V0tkDQAR",
            "organization_fields": {"account_type": " open_partner ", "mark_for_deletion": "true"}
        }))
        .unwrap();
        assert_eq!(RawZendeskOrg::from(&typed), org);
    }

    #[test]
    fn an_org_read_for_its_facts_agrees_with_the_whole_org() {
        let orgs = [
            json!({"id": 7, "name": "Partner", "salesforce_id": "0011U00000V0tkDQAR",
                   "organization_fields": {"account_type": " open_partner ", "aar": 5},
                   "tags": ["x"], "notes": "skipped"}),
            json!({"id": 8, "name": "Customer", "salesforce_id": "not an id",
                   "organization_fields": {"account_type": "customer"}}),
            json!({"id": 9, "name": "Bare", "salesforce_id": null}),
        ];
        for value in orgs {
            let whole: ZendeskOrg = serde_json::from_value(value.clone()).unwrap();
            let text = serde_json::to_string(&whole).unwrap();
            let facts: OrgFacts = serde_json::from_str(&text).unwrap();
            assert_eq!(facts.key, OrgKey::from(&whole), "{text}");
            assert_eq!(facts.key.managed_id(), whole.managed_id(), "{text}");
            assert_eq!(facts.key.partner, whole.is_partner(), "{text}");
            assert_eq!(
                facts.foreign(),
                ForeignRecord::of_org(whole.id, &whole.name, whole.salesforce_id.as_deref())
            );
        }
        // A stored org without a name is refused, as the whole org is.
        let nameless = r#"{"id":1,"salesforce_id":null}"#;
        assert!(serde_json::from_str::<OrgFacts>(nameless).is_err());
        assert!(serde_json::from_str::<ZendeskOrg>(nameless).is_err());
    }

    #[test]
    fn fields_that_are_not_an_object_are_refused_when_read() {
        let error = serde_json::from_str::<RawDesiredOrg>(
            r#"{"salesforce_id":"0011U00000V0tkDQAR","name":"Acme","organization_fields":[1]}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("expected an object of fields"),
            "{error}"
        );
    }
}
