//! `process_report.json`: what the processor saw that an admin should act on (SPEC §5.3).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Instance, SalesforceId};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    pub accounts: usize,
    pub global_objects: usize,
    pub usgov_objects: usize,
    /// Charge names in no tier of `plans.yaml`, with how many charges carried each. This is how
    /// admins keep `plans.yaml` current.
    pub unmapped_charges: BTreeMap<String, u64>,
    pub skipped_accounts: Vec<SkippedAccount>,
    pub overrides: OverrideReport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedAccount {
    pub salesforce_id: Option<String>,
    pub name: Option<String>,
    pub reason: SkipReason,
    /// Set when only one instance's object was dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The account is a partner organization; the partner sync owns it.
    Partner,
    /// No subscription within the last three years.
    NoSubscriptions,
    /// Subscriptions, but no charge name that `plans.yaml` knows.
    NoMappedCharges,
    /// The object's expiration date is more than three years ago.
    ExpiredOverThreeYears,
    /// The same Salesforce id appeared twice in one gather; only the first is used.
    DuplicateSalesforceId,
    /// The gather stage could not map the record; its org is held as is.
    Rejected,
}

impl SkipReason {
    /// In words, for the run report.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::Partner => "partner organization (the partner sync owns it)",
            SkipReason::NoSubscriptions => "no subscription within the last three years",
            SkipReason::NoMappedCharges => "no charge name plans.yaml knows",
            SkipReason::ExpiredOverThreeYears => "expired more than three years ago",
            SkipReason::DuplicateSalesforceId => "Salesforce id seen twice (first one used)",
            SkipReason::Rejected => "record could not be mapped (its org is held as is)",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OverrideReport {
    pub applied: Vec<SalesforceId>,
    pub expired: Vec<ExpiredOverride>,
    /// Overrides whose account produced no Global object this run (nothing to apply them to).
    pub unused: Vec<SalesforceId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredOverride {
    pub salesforce_id: SalesforceId,
    pub expires: NaiveDate,
    pub reason: String,
}
