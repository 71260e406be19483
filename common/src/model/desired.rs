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

/// Encodes `{instance}_accounts.json` one org at a time, so the process stage never holds every
/// desired object at once: each is encoded as it is made and dropped. The bytes are exactly
/// those of `serde_json::to_vec(&DesiredOrgs { … })`.
pub struct DesiredOrgsEncoder {
    body: Vec<u8>,
    orgs: usize,
}

impl DesiredOrgsEncoder {
    pub fn new(instance: Instance, as_of: NaiveDate) -> DesiredOrgsEncoder {
        let mut body = Vec::with_capacity(1 << 20);
        body.extend_from_slice(b"{\"instance\":");
        serde_json::to_writer(&mut body, &instance).expect("an instance encodes");
        body.extend_from_slice(b",\"as_of\":");
        serde_json::to_writer(&mut body, &as_of).expect("a date encodes");
        body.extend_from_slice(b",\"orgs\":[");
        DesiredOrgsEncoder { body, orgs: 0 }
    }

    pub fn push(&mut self, org: &DesiredOrg) -> Result<(), serde_json::Error> {
        if self.orgs > 0 {
            self.body.push(b',');
        }
        serde_json::to_writer(&mut self.body, org)?;
        self.orgs += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.orgs
    }

    pub fn is_empty(&self) -> bool {
        self.orgs == 0
    }

    pub fn finish(mut self, held_salesforce_ids: &[SalesforceId]) -> Vec<u8> {
        self.body.extend_from_slice(b"],\"held_salesforce_ids\":");
        serde_json::to_writer(&mut self.body, held_salesforce_ids).expect("ids encode");
        self.body.push(b'}');
        self.body
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_encoder_writes_what_serde_writes() {
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
        for orgs in [
            vec![],
            vec![org("0011U00000V0tkDQAR", "Acme")],
            vec![
                org("0011U00000V0tkDQAR", "Acme"),
                org("0013l00002PMMqSAAX", "Ünïcode ✓"),
            ],
        ] {
            let mut encoder = DesiredOrgsEncoder::new(Instance::Usgov, as_of);
            for o in &orgs {
                encoder.push(o).unwrap();
            }
            let expected = serde_json::to_vec(&DesiredOrgs {
                instance: Instance::Usgov,
                as_of,
                orgs: orgs.clone(),
                held_salesforce_ids: held.clone(),
            })
            .unwrap();
            assert_eq!(
                String::from_utf8(encoder.finish(&held)).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}
