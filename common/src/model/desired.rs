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

/// The fields of `{instance}_accounts.json` before its `orgs`, for a stage that encodes the
/// orgs one at a time ([`crate::store::StreamedArtifact`]).
#[derive(Serialize)]
pub struct DesiredOrgsHead {
    pub instance: Instance,
    pub as_of: NaiveDate,
}

/// The fields after `orgs`.
#[derive(Serialize)]
pub struct DesiredOrgsTail<'a> {
    pub held_salesforce_ids: &'a [SalesforceId],
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::StreamedArtifact;

    #[test]
    fn streamed_desired_orgs_are_the_artifact_serde_writes() {
        let org = |id: &str, name: &str| DesiredOrg {
            salesforce_id: SalesforceId::parse(id).unwrap(),
            name: name.into(),
            organization_fields: json!({"support_level": "premium", "aar": 12.5, "sub_x": true})
                .as_object()
                .unwrap()
                .clone(),
            sold_tos: vec![SoldTo {
                name: Some("Pat \"Q\" Lee".into()),
                email: "pat@acme.example".into(),
            }],
        };
        let as_of: NaiveDate = "2026-12-01".parse().unwrap();
        let held = vec![SalesforceId::parse("001D000000IRFmaIAH").unwrap()];
        let orgs = vec![
            org("0011U00000V0tkDQAR", "Acme"),
            org("0013l00002PMMqSAAX", "Ünïcode ✓"),
        ];
        let head = DesiredOrgsHead {
            instance: Instance::Usgov,
            as_of,
        };
        let mut streamed = StreamedArtifact::begin(&head, "orgs").unwrap();
        for o in &orgs {
            streamed.push(o).unwrap();
        }
        let bytes = streamed
            .finish(&DesiredOrgsTail {
                held_salesforce_ids: &held,
            })
            .unwrap();
        let whole = serde_json::to_vec(&DesiredOrgs {
            instance: Instance::Usgov,
            as_of,
            orgs,
            held_salesforce_ids: held,
        })
        .unwrap();
        assert_eq!(bytes, whole);
    }
}
