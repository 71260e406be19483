//! Salesforce accounts as the gather stage maps them (SPEC §3): `salesforce_accounts.json`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::SalesforceId;

/// `salesforce_accounts.json`: every mapped account plus the records that could not be mapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SalesforceAccounts {
    pub as_of: NaiveDate,
    pub accounts: Vec<Account>,
    #[serde(default)]
    pub rejected: Vec<RejectedRecord>,
}

/// The fields of `salesforce_accounts.json` before its `accounts`, for a gather that encodes the
/// accounts one at a time ([`crate::store::StreamedArtifact`]).
#[derive(Serialize)]
pub struct SalesforceAccountsHead {
    pub as_of: NaiveDate,
}

/// The fields after `accounts`.
#[derive(Serialize)]
pub struct SalesforceAccountsTail<'a> {
    pub rejected: &'a [RejectedRecord],
}

/// A Salesforce record the sync could not use, with the reason, so an admin can fix the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// The record's id as Salesforce sent it (may itself be the invalid part), if any.
    pub salesforce_id: Option<String>,
    pub name: Option<String>,
    pub reason: String,
}

impl RejectedRecord {
    /// The canonical id of a rejected record whose id itself was fine: the sync must leave the
    /// matching Zendesk org alone rather than treat the account as gone.
    pub fn valid_id(&self) -> Option<SalesforceId> {
        self.salesforce_id
            .as_deref()
            .and_then(|id| SalesforceId::parse(id.trim()).ok())
    }
}

/// A customer account (one Salesforce `Account` row with its subscriptions and charges).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub salesforce_id: SalesforceId,
    pub name: String,
    pub arr: Option<f64>,
    #[serde(rename = "type")]
    pub account_type: Option<String>,
    pub sales_segment: String,
    pub account_owner: Option<String>,
    pub technical_account_manager: Option<String>,
    pub solutions_architect: Option<String>,
    pub region: Option<Region>,
    pub restricted: bool,
    pub escalated: bool,
    /// `Support_Instance__c == "federal-support"`: a US Gov customer served under an exception,
    /// whose exception-tier charges go to the US Gov instance instead of Global.
    pub exception: bool,
    pub support_hold: bool,
    pub partner_track: Option<String>,
    pub partner_type: Option<String>,
    pub sold_tos: Vec<SoldTo>,
    pub subs: Vec<Subscription>,
    pub charges: Vec<Charge>,
}

/// The account's demographic region, as the Zendesk `org_region` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Amer,
    Apj,
    Emea,
}

impl Region {
    /// Recognises `AMER`, `APJ`, `EMEA` (surrounding blanks and case ignored).
    pub fn parse(value: &str) -> Option<Region> {
        match value.trim().to_ascii_uppercase().as_str() {
            "AMER" => Some(Region::Amer),
            "APJ" => Some(Region::Apj),
            "EMEA" => Some(Region::Emea),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Region::Amer => "amer",
            Region::Apj => "apj",
            Region::Emea => "emea",
        }
    }
}

/// A sold-to contact: who bought the subscription and should be able to open tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoldTo {
    pub name: Option<String>,
    /// Trimmed and lower-cased; Zendesk matches emails case-insensitively.
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub name: Option<String>,
    pub status: Option<String>,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub sold_to_email: Option<String>,
}

/// A rate plan charge: the unit entitlements are computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
    /// `Zuora__SubscriptionRatePlanChargeName__c`, matched exactly against `plans.yaml`.
    pub name: String,
    pub subscription_id: Option<String>,
    pub effective_start: Option<NaiveDate>,
    pub effective_end: NaiveDate,
    pub quantity: Option<f64>,
}
