//! The partner sync (SPEC §10): every alliance, open and select partner account becomes one
//! Global organization, keyed by its Salesforce id. The sync owns the Global partner orgs and
//! no other, and writes the partner fields only.

use std::borrow::Cow;

use super::records::GatheredRecord;
use super::spec::SyncSpec;
use crate::artifacts;
use crate::config::SyncSettings;
use crate::model::instance::PARTNER_FIELD_KEYS;
use crate::model::{
    PartnerAccounts, RawDesiredOrg, RawZendeskOrgs, SalesforceId, SyncKind, ZendeskOrgKeys,
};
use crate::rules::compare::{CompareRules, Orgs};
use crate::rules::partners::partner_object;

/// The partner sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartnerOrgs;

impl SyncSpec for PartnerOrgs {
    type Kind = Orgs;
    type Desired = PartnerAccounts;
    type Records = RawZendeskOrgs;
    type RecordKeys = ZendeskOrgKeys;

    fn sync(self) -> SyncKind {
        SyncKind::Partners
    }

    fn desired_artifact(self) -> String {
        artifacts::PARTNER_ACCOUNTS.to_owned()
    }

    fn records_artifact(self) -> String {
        artifacts::PARTNER_ORGS.to_owned()
    }

    fn outputs(self) -> &'static str {
        "partner/"
    }

    fn plan_sources(self) -> Vec<String> {
        vec![
            artifacts::PARTNER_ACCOUNTS.to_owned(),
            artifacts::PARTNER_ORGS.to_owned(),
        ]
    }

    /// Each partner account's partner object.
    fn desired(self, partners: &PartnerAccounts) -> Cow<'_, [RawDesiredOrg]> {
        Cow::Owned(
            partners
                .accounts
                .iter()
                .map(|a| RawDesiredOrg::from(&partner_object(a)))
                .collect(),
        )
    }

    /// Protected ids (config) are never marked; the orgs of partner records rejected at gather
    /// are left exactly as they are.
    fn rules(
        self,
        partners: &PartnerAccounts,
        settings: &SyncSettings,
    ) -> CompareRules<SalesforceId> {
        CompareRules::default()
            .with_protected(settings.protected_salesforce_ids())
            .with_held(partners.rejected.iter().filter_map(|r| r.valid_id()))
    }

    /// Partner orgs, and nothing else.
    fn owns<R: GatheredRecord>(self, record: &R) -> bool {
        record.is_partner()
    }

    fn owned_fields(self) -> Vec<&'static str> {
        PARTNER_FIELD_KEYS.to_vec()
    }
}
