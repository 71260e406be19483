//! The org sync of each instance (SPEC §7, §8): every customer account the processor wants on
//! Global or US Gov becomes one organization there, keyed by its Salesforce id. The sync owns
//! the instance's managed orgs that are not partner orgs, writes the instance's organization
//! fields, and on Global attaches a new org's sold-to contacts and sends the run's one Slack
//! digest of new orgs left without contacts.

use std::borrow::Cow;

use super::records::GatheredRecord;
use super::spec::SyncSpec;
use crate::artifacts;
use crate::config::SyncSettings;
use crate::model::{
    Instance, RawDesiredOrg, RawDesiredOrgs, RawZendeskOrgs, SalesforceId, SyncKind, ZendeskOrgKeys,
};
use crate::rules::compare::{CompareRules, Orgs};

/// The org sync of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerOrgs(pub Instance);

impl SyncSpec for CustomerOrgs {
    type Kind = Orgs;
    /// Both sides keep their fields as text until a pair is compared (see `RawZendeskOrg`).
    type Desired = RawDesiredOrgs;
    type Records = RawZendeskOrgs;
    /// Only ids and keys: the sync checks its targets against the gather, it does not read the
    /// orgs' fields (at 200 000 accounts the whole artifact as maps was 1.3 GB).
    type RecordKeys = ZendeskOrgKeys;

    fn sync(self) -> SyncKind {
        SyncKind::orgs(self.0)
    }

    fn desired_artifact(self) -> String {
        artifacts::desired_orgs(self.0)
    }

    fn records_artifact(self) -> String {
        artifacts::zendesk_orgs(self.0)
    }

    fn outputs(self) -> &'static str {
        match self.0 {
            Instance::Global => "global_",
            Instance::Usgov => "usgov_",
        }
    }

    /// The desired objects derive from the Salesforce gather.
    fn plan_sources(self) -> Vec<String> {
        vec![
            artifacts::SALESFORCE_ACCOUNTS.to_owned(),
            artifacts::zendesk_orgs(self.0),
        ]
    }

    fn desired_instance(desired: &RawDesiredOrgs) -> Option<Instance> {
        Some(desired.instance)
    }

    fn desired(self, desired: &RawDesiredOrgs) -> Cow<'_, [RawDesiredOrg]> {
        Cow::Borrowed(&desired.orgs)
    }

    /// Protected ids (config) are never marked; the orgs of accounts rejected at gather are left
    /// exactly as they are: the account exists, only its data could not be read.
    fn rules(
        self,
        desired: &RawDesiredOrgs,
        settings: &SyncSettings,
    ) -> CompareRules<SalesforceId> {
        CompareRules::default()
            .with_protected(settings.protected_salesforce_ids())
            .with_held(desired.held_salesforce_ids.iter().cloned())
    }

    /// Partner orgs belong to the partner sync alone: the Global org sync never touches them.
    /// US Gov has no partner sync, so every managed org there is its org sync's.
    fn owns<R: GatheredRecord>(self, record: &R) -> bool {
        self.0 == Instance::Usgov || !record.is_partner()
    }

    /// SPEC §6: the instance's fields.
    fn owned_fields(self) -> Vec<&'static str> {
        self.0.field_keys()
    }

    fn attaches_sold_tos(self) -> bool {
        self.0 == Instance::Global
    }

    fn sends_digest(self) -> bool {
        self.0 == Instance::Global
    }
}
