//! The Global partner sync (SPEC §9): `partner/salesforce_accounts.json`.

use serde::{Deserialize, Serialize};

use super::{RejectedRecord, SalesforceId};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartnerAccounts {
    pub accounts: Vec<PartnerAccount>,
    /// Records the partner query returned that are not a partner the sync knows (no alliance
    /// id, no Open or Select track) or could not be read. Those with a valid id keep their
    /// partner org exactly as it is.
    #[serde(default)]
    pub rejected: Vec<RejectedRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerAccount {
    pub salesforce_id: SalesforceId,
    pub name: String,
    pub account_type: PartnerType,
    pub account_owner: Option<String>,
    pub technical_account_manager: Option<String>,
    pub solutions_architect: Option<String>,
    pub restricted: bool,
    pub escalated: bool,
    pub support_hold: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerType {
    AlliancePartner,
    OpenPartner,
    SelectPartner,
}

impl PartnerType {
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerType::AlliancePartner => "alliance_partner",
            PartnerType::OpenPartner => "open_partner",
            PartnerType::SelectPartner => "select_partner",
        }
    }
}
