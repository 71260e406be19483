//! Desired organization objects: what the processor says each Zendesk org must look like
//! (SPEC §5, §6): `{global,usgov}_accounts.json`; the partner sync's desired partner orgs use the
//! same shape.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Instance, SalesforceId, SoldTo};

/// `{instance}_accounts.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredOrgs {
    pub instance: Instance,
    pub as_of: NaiveDate,
    pub orgs: Vec<DesiredOrg>,
    /// Accounts Salesforce returned but the gather stage rejected (bad data, valid id). Their
    /// Zendesk orgs are left exactly as they are: not updated, and above all not marked for
    /// deletion, because the account still exists — only its data could not be read.
    #[serde(default)]
    pub held_salesforce_ids: Vec<SalesforceId>,
}

/// One organization as Salesforce says it should be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredOrg {
    pub salesforce_id: SalesforceId,
    pub name: String,
    /// Exactly the keys the sync owns for this instance (SPEC §6), each with its value.
    pub organization_fields: Map<String, Value>,
    /// Global only: who to attach to a newly created org. Never sent as a field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sold_tos: Vec<SoldTo>,
}
