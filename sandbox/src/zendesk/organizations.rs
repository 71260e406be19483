//! Organizations (apis.md A2, A3): the records the sync creates, updates and marks. Their
//! writes keep names unique (a name index) and note earlier states for the search index;
//! search is by name or external id. Listing, showing and the bulk endpoints are the shared
//! machinery's (`resource.rs`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::errors::{RecordInvalid, ZendeskError};
use super::fields::IgnoredFields;
use super::index::{Indexed, Lagging};
use super::job_book::{JobWork, UpdateItem};
use super::records::organization::{Organization, apply_attributes, name_key};
use super::resource::{Resource, Updatable};
use super::store::InstanceData;
use super::timestamps::{fixture_id, fixture_time};
use crate::error::FixtureError;

impl InstanceData {
    /// The organization as the API answers it (lists, show, the incremental export).
    pub(crate) fn render_organization(&self, id: u64) -> Value {
        self.organizations[&id].render(&self.base_url, &self.organization_fields)
    }

    pub(crate) fn organization_json(&self, id: u64) -> Option<Value> {
        self.organizations
            .contains_key(&id)
            .then(|| self.render_organization(id))
    }

    pub(crate) fn organizations_json(&self) -> Vec<Value> {
        self.organizations
            .keys()
            .map(|id| self.render_organization(*id))
            .collect()
    }

    pub(crate) fn find_organization_by_name(&self, name: &str) -> Option<u64> {
        self.organization_names
            .get(&name_key(name))
            .and_then(|ids| ids.first().copied())
    }

    /// Stores `org` under its id, keeping the name index right (a rename moves it).
    fn put_organization(&mut self, org: Organization) {
        if let Some(old) = self.organizations.get(&org.id) {
            let old_key = name_key(&old.name);
            if let Some(ids) = self.organization_names.get_mut(&old_key) {
                ids.remove(&org.id);
                if ids.is_empty() {
                    self.organization_names.remove(&old_key);
                }
            }
        }
        self.organization_names
            .entry(name_key(&org.name))
            .or_default()
            .insert(org.id);
        self.organizations.insert(org.id, org);
    }

    /// Name (trimmed, case-insensitive) and external id (case-insensitive) are unique.
    fn organization_conflicts(&self, org: &Organization) -> RecordInvalid {
        let mut invalid = RecordInvalid::default();
        if org.name.is_empty() {
            invalid.add("name", "BlankValue", "Name: cannot be blank".into());
        } else if self
            .find_organization_by_name(&org.name)
            .is_some_and(|id| id != org.id)
        {
            invalid.add(
                "name",
                "DuplicateValue",
                format!("Name: {} has already been taken", org.name),
            );
        }
        let taken_by_other = |external_id: &String| {
            self.find_by_external_id::<Organizations>(external_id)
                .is_some_and(|id| id != org.id)
        };
        if let Some(external_id) = org.external_id.as_ref().filter(|e| taken_by_other(e)) {
            invalid.add(
                "external_id",
                "DuplicateValue",
                format!("External id: {external_id} has already been taken"),
            );
        }
        invalid
    }

    pub(crate) fn create_organization(
        &mut self,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<u64, RecordInvalid> {
        let mut org = Organization::blank(now);
        apply_attributes(
            &mut org,
            attributes,
            &self.organization_fields,
            &mut self.ignored,
        )
        .into_result()?;
        self.organization_conflicts(&org).into_result()?;
        org.id = self.ids.organization();
        let id = org.id;
        self.index.note_organization(id, now, || None);
        self.put_organization(org);
        Ok(id)
    }

    /// Updates an existing organization; `None` when there is no such record.
    pub(crate) fn update_organization(
        &mut self,
        id: u64,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<Result<(), RecordInvalid>> {
        let mut org = self.organizations.get(&id)?.clone();
        let outcome = apply_attributes(
            &mut org,
            attributes,
            &self.organization_fields,
            &mut self.ignored,
        )
        .into_result()
        .and_then(|()| self.organization_conflicts(&org).into_result());
        if outcome.is_ok() {
            org.updated_at = now;
            let organizations = &self.organizations;
            self.index
                .note_organization(id, now, || organizations.get(&id).cloned());
            self.put_organization(org);
        }
        Some(outcome)
    }

    /// Loads a fixture record (or a test's insert): API attributes plus optional `id`,
    /// `created_at`, `updated_at`; unlike the API, unknown keys are an error.
    pub(crate) fn seed_organization(&mut self, record: &Value) -> Result<Value, FixtureError> {
        let now = self.now();
        let attributes = record
            .as_object()
            .ok_or_else(|| FixtureError::Invalid("an organization must be a JSON object".into()))?;
        let invalid = |reason: String| FixtureError::Invalid(reason);
        let mut org = Organization::blank(now);
        org.created_at = fixture_time(record, "created_at", now).map_err(invalid)?;
        org.updated_at = fixture_time(record, "updated_at", org.created_at).map_err(invalid)?;
        let mut unknown = IgnoredFields::default();
        let problems = apply_attributes(
            &mut org,
            attributes,
            &self.organization_fields,
            &mut unknown,
        );
        reject_unknown(&unknown)?;
        problems.into_result().map_err(|e| invalid(e.summary()))?;
        org.id = match fixture_id(record).map_err(invalid)? {
            Some(id) if self.organizations.contains_key(&id) => {
                return Err(invalid(format!("organization id {id} is used twice")));
            }
            Some(id) => id,
            None => self.ids.organization(),
        };
        self.organization_conflicts(&org)
            .into_result()
            .map_err(|e| invalid(e.summary()))?;
        self.ids.reserve_organization(org.id);
        let id = org.id;
        // A fixture's records are indexed; one a test adds later is new to the index.
        self.index.note_organization(id, now, || None);
        self.put_organization(org);
        Ok(self.render_organization(id))
    }

    /// The organization as the search index has it (`None`: not in the index).
    fn indexed_organization(&self, id: u64) -> Option<&Organization> {
        match self.index.organizations.get(id) {
            Indexed::Current => self.organizations.get(&id),
            Indexed::Earlier(before) => before,
        }
    }

    fn render_indexed_organization(&self, id: u64) -> Value {
        self.indexed_organization(id)
            .expect("search found it in the index")
            .render(&self.base_url, &self.organization_fields)
    }

    /// Name search as the index answers it: the organizations whose indexed name matches
    /// (trimmed, case-insensitively), the first of them as name search returns one.
    fn search_organizations_by_name(&self, name: &str) -> Option<u64> {
        let key = name_key(name);
        let lagging = &self.index.organizations;
        let mut ids: BTreeSet<u64> = self
            .organization_names
            .get(&key)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| !lagging.is_lagging(*id))
            .collect();
        ids.extend(lagging.ids().filter(|id| {
            self.indexed_organization(*id)
                .is_some_and(|org| name_key(&org.name) == key)
        }));
        ids.first().copied()
    }
}

pub(crate) fn reject_unknown(unknown: &IgnoredFields) -> Result<(), FixtureError> {
    let keys = unknown.snapshot();
    if keys.is_empty() {
        Ok(())
    } else {
        let names: Vec<&str> = keys.keys().map(String::as_str).collect();
        Err(FixtureError::Invalid(format!(
            "unknown keys: {}",
            names.join(", ")
        )))
    }
}

/// Organizations for the shared machinery (`resource.rs`): their rules are
/// `records/organization.rs` and the writes above.
pub(crate) struct Organizations;

impl Resource for Organizations {
    type Record = Organization;
    const SINGULAR: &'static str = "organization";
    const PLURAL: &'static str = "organizations";

    fn records(data: &InstanceData) -> &BTreeMap<u64, Organization> {
        &data.organizations
    }

    fn render(data: &InstanceData, id: u64) -> Value {
        data.render_organization(id)
    }

    fn create(
        data: &mut InstanceData,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<u64, RecordInvalid> {
        data.create_organization(attributes, now)
    }

    fn create_work(items: Vec<Map<String, Value>>) -> JobWork {
        JobWork::CreateOrganizations(items)
    }
}

impl Updatable for Organizations {
    type Indexed = Organization;

    fn lagging(data: &InstanceData) -> &Lagging<Organization> {
        &data.index.organizations
    }

    fn external_id(record: &Organization) -> Option<&str> {
        record.external_id.as_deref()
    }

    fn indexed_external_id(indexed: &Organization) -> Option<&str> {
        indexed.external_id.as_deref()
    }

    fn update(
        data: &mut InstanceData,
        id: u64,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<Result<(), RecordInvalid>> {
        data.update_organization(id, attributes, now)
    }

    /// Exact, case-insensitive match on the name (apis.md A3).
    const SEARCH_PARAM: &'static str = "name";
    const SEARCH_MISUSE: &'static str = "Provide either name or external_id, not both";

    fn search(data: &InstanceData, name: &str) -> Result<Vec<u64>, ZendeskError> {
        Ok(data
            .search_organizations_by_name(name)
            .into_iter()
            .collect())
    }

    fn render_indexed(data: &InstanceData, id: u64) -> Value {
        data.render_indexed_organization(id)
    }

    fn update_work(items: Vec<UpdateItem>) -> JobWork {
        JobWork::UpdateOrganizations(items)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::instance::ZendeskInstance;
    use crate::zendesk::attributes::tests::attrs;

    fn data() -> InstanceData {
        InstanceData::empty(ZendeskInstance::Global)
    }

    #[test]
    fn names_are_unique_after_trimming() {
        let mut data = data();
        let now = Utc::now();
        data.create_organization(&attrs(json!({"name": "API Company"})), now)
            .expect("created");
        let err = data
            .create_organization(&attrs(json!({"name": "API Company "})), now)
            .expect_err("duplicate");
        assert_eq!(err.code(), "DuplicateValue");
        assert_eq!(
            err.details_json()["name"][0]["error"],
            json!("DuplicateValue")
        );
    }

    #[test]
    fn external_ids_are_unique_case_insensitively() {
        let mut data = data();
        let now = Utc::now();
        data.create_organization(&attrs(json!({"name": "A", "external_id": "company1"})), now)
            .expect("created");
        let err = data
            .create_organization(&attrs(json!({"name": "B", "external_id": "Company1"})), now)
            .expect_err("duplicate");
        assert!(err.details_json().get("external_id").is_some());
    }

    #[test]
    fn update_merges_fields_and_keeps_other_keys() {
        let mut data = data();
        let now = Utc::now();
        let id = data
            .create_organization(
                &attrs(json!({"name": "A", "organization_fields": {"am_project_id": "77", "support_level": "gold"}})),
                now,
            )
            .expect("created");
        data.update_organization(
            id,
            &attrs(json!({"organization_fields": {"support_level": "ultimate"}})),
            now,
        )
        .expect("exists")
        .expect("valid");
        let fields = &data.render_organization(id)["organization_fields"];
        assert_eq!(fields["support_level"], json!("ultimate"));
        assert_eq!(fields["am_project_id"], json!("77"));
        assert_eq!(fields["salesforce_id"], Value::Null);
    }

    #[test]
    fn seeding_rejects_unknown_keys() {
        let mut data = data();
        assert!(
            data.seed_organization(&json!({"name": "A", "salesforce_id": "x"}))
                .is_err()
        );
        assert!(
            data.seed_organization(&json!({"name": "A", "id": 5}))
                .is_ok()
        );
        assert!(
            data.seed_organization(&json!({"name": "B", "id": 5}))
                .is_err()
        );
    }
}
