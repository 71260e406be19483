//! The fixture: the data a sandbox starts with. The format is described in `FIXTURE.md`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FixtureError;
use crate::instance::ZendeskInstance;
use crate::salesforce::SalesforceFixture;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fixture {
    pub salesforce: SalesforceFixture,
    pub zendesk: ZendeskFixtures,
    pub slack: SlackFixture,
    /// Written by the generator to explain what it made; the emulator ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<GeneratedInfo>,
}

impl Fixture {
    pub fn from_path(path: impl AsRef<Path>) -> Result<Fixture, FixtureError> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|source| FixtureError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| FixtureError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Compact JSON to `out` (big worlds: no whole-text copy in memory); reads back with
    /// [`Fixture::from_path`].
    pub fn write_json(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut out, self)?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Pretty JSON with a trailing newline; the same fixture always gives the same bytes.
    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .expect("a fixture is plain JSON data and serializes");
        text.push('\n');
        text
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZendeskFixtures {
    pub global: ZendeskFixture,
    pub usgov: ZendeskFixture,
}

impl ZendeskFixtures {
    pub fn get(&self, instance: ZendeskInstance) -> &ZendeskFixture {
        match instance {
            ZendeskInstance::Global => &self.global,
            ZendeskInstance::Usgov => &self.usgov,
        }
    }

    pub fn get_mut(&mut self, instance: ZendeskInstance) -> &mut ZendeskFixture {
        match instance {
            ZendeskInstance::Global => &mut self.global,
            ZendeskInstance::Usgov => &mut self.usgov,
        }
    }
}

/// One Zendesk instance. Records are Zendesk API JSON (the attributes a create would take,
/// plus an optional `id`); fields left out get their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZendeskFixture {
    /// The API user; when absent, [`ZendeskCredentials::default_for`] applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<ZendeskCredentials>,
    /// When absent, the fields zdsync writes plus the agent-owned ones (see FIXTURE.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_fields: Option<Vec<FieldDefinition>>,
    /// When absent, the `not_in_sfdc` checkbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_fields: Option<Vec<FieldDefinition>>,
    pub organizations: Vec<Value>,
    pub users: Vec<Value>,
    pub organization_memberships: Vec<Value>,
    /// Whether Create Many Users is enabled (Zendesk turns it on only on request).
    pub bulk_user_import: bool,
}

impl Default for ZendeskFixture {
    fn default() -> Self {
        ZendeskFixture {
            credentials: None,
            organization_fields: None,
            user_fields: None,
            organizations: Vec::new(),
            users: Vec::new(),
            organization_memberships: Vec::new(),
            bulk_user_import: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZendeskCredentials {
    pub email: String,
    pub token: String,
}

impl ZendeskCredentials {
    pub fn default_for(instance: ZendeskInstance) -> Self {
        ZendeskCredentials {
            email: format!("zdsync@{instance}.sandbox.example"),
            token: format!("{instance}-sandbox-token"),
        }
    }
}

/// A custom organization or user field definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDefinition {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// The allowed values (tags) of a dropdown or multiselect field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl FieldDefinition {
    pub fn new(key: &str, kind: FieldType) -> Self {
        FieldDefinition {
            key: key.to_owned(),
            kind,
            options: Vec::new(),
        }
    }

    pub fn dropdown(key: &str, options: &[&str]) -> Self {
        FieldDefinition {
            key: key.to_owned(),
            kind: FieldType::Dropdown,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        }
    }
}

/// Zendesk's custom field types. The API calls a dropdown `tagger`; both names are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Textarea,
    Regexp,
    Checkbox,
    Date,
    Integer,
    Decimal,
    #[serde(alias = "tagger")]
    Dropdown,
    Multiselect,
    Lookup,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackFixture {
    /// When set, every webhook post is answered with this failure instead of `ok`.
    pub fail_with: Option<SlackFailure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackFailure {
    pub status: u16,
    pub body: String,
}

/// What the generator made, so end-to-end tests can find the interesting records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratedInfo {
    pub seed: u64,
    pub accounts: usize,
    pub as_of: String,
    /// The Salesforce id of the alliance partner account (partner sync configuration).
    pub alliance_account_id: String,
    /// Scenario name → the Salesforce ids (or Zendesk org names / emails) that play it.
    pub scenarios: BTreeMap<String, Vec<String>>,
}
