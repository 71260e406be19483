//! The two Zendesk instances and the organization fields each one carries (SPEC §6).
//!
//! This is the one place the field lists live: the processor builds objects from it, `plans.yaml`
//! and override validation check against it, and the sandbox/docs derive from it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Zendesk instance the sync writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Instance {
    Global,
    Usgov,
}

impl Instance {
    pub const ALL: [Instance; 2] = [Instance::Global, Instance::Usgov];

    /// The lower-case name used in artifact names, inputs and config (`global`, `usgov`).
    pub fn as_str(self) -> &'static str {
        match self {
            Instance::Global => "global",
            Instance::Usgov => "usgov",
        }
    }

    /// The subscription checkboxes this instance has; each is written true or false.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Instance::Global => GLOBAL_FLAGS,
            Instance::Usgov => USGOV_FLAGS,
        }
    }

    /// ARR: Global's field key is `aar` (sic, as in GitLab's Zendesk), US Gov's is `arr`.
    pub fn arr_key(self) -> &'static str {
        match self {
            Instance::Global => "aar",
            Instance::Usgov => "arr",
        }
    }

    pub fn segment_key(self) -> &'static str {
        match self {
            Instance::Global => "sales_segmentation",
            Instance::Usgov => "market_segment",
        }
    }

    pub fn seats_key(self) -> &'static str {
        match self {
            Instance::Global => "seats_decimal",
            Instance::Usgov => "number_of_seats",
        }
    }

    /// Only Global tracks the account's region.
    pub fn region_key(self) -> Option<&'static str> {
        match self {
            Instance::Global => Some("org_region"),
            Instance::Usgov => None,
        }
    }

    /// Only US Gov switches between the 12x5 and 24x7 schedules.
    pub fn schedule_key(self) -> Option<&'static str> {
        match self {
            Instance::Global => None,
            Instance::Usgov => Some("emergency_support_24x7"),
        }
    }

    /// Every organization field key the sync writes on this instance, in a stable order.
    /// Keys outside this list (agent and deletion-job fields) are never written.
    pub fn field_keys(self) -> Vec<&'static str> {
        let mut keys = vec![
            field::SALESFORCE_ID,
            field::SFDC_SHORT_ID,
            field::ACCOUNT_OWNER,
            field::TECHNICAL_ACCOUNT_MANAGER,
            field::SOLUTIONS_ARCHITECT,
            self.arr_key(),
            self.segment_key(),
        ];
        keys.extend(self.region_key());
        keys.extend([
            field::RESTRICTED_ACCOUNT,
            field::ORG_IN_ESCALATED_STATE,
            field::SUPPORT_HOLD,
            field::ACCOUNT_TYPE,
            field::SUPPORT_LEVEL,
            field::EXPIRATION_DATE,
            self.seats_key(),
        ]);
        keys.extend(self.schedule_key());
        keys.extend(self.flags());
        keys.push(field::MARK_FOR_DELETION);
        keys
    }
}

impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Instance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "global" => Ok(Instance::Global),
            "usgov" => Ok(Instance::Usgov),
            other => Err(format!(
                "unknown Zendesk instance {other:?}; expected \"global\" or \"usgov\""
            )),
        }
    }
}

/// Organization field keys shared by both instances (and the partner sync).
pub mod field {
    pub const SALESFORCE_ID: &str = "salesforce_id";
    pub const SFDC_SHORT_ID: &str = "sfdc_short_id";
    pub const ACCOUNT_OWNER: &str = "account_owner";
    pub const TECHNICAL_ACCOUNT_MANAGER: &str = "technical_account_manager";
    pub const SOLUTIONS_ARCHITECT: &str = "solutions_architect";
    pub const RESTRICTED_ACCOUNT: &str = "restricted_account";
    pub const ORG_IN_ESCALATED_STATE: &str = "org_in_escalated_state";
    pub const SUPPORT_HOLD: &str = "support_hold";
    pub const ACCOUNT_TYPE: &str = "account_type";
    pub const SUPPORT_LEVEL: &str = "support_level";
    pub const EXPIRATION_DATE: &str = "expiration_date";
    pub const MARK_FOR_DELETION: &str = "mark_for_deletion";
    /// User field set on end-users the US Gov user sync no longer finds in Salesforce.
    pub const NOT_IN_SFDC: &str = "not_in_sfdc";
}

/// Global subscription checkboxes (SPEC §6).
pub const GLOBAL_FLAGS: &[&str] = &[
    "sub_edu",
    "sub_oss",
    "sub_community_other",
    "sub_consumption_cicd_minutes",
    "sub_consumption_eap",
    "sub_consumption_duo_enterprise",
    "sub_consumption_duo_amazon_q",
    "sub_consumption_duo_premium",
    "sub_consumption_storage",
    "sub_dotcom_premium",
    "sub_dotcom_ultimate",
    "sub_gitlab_dedicated",
    "sub_sm_premium",
    "sub_sm_ultimate",
    "sub_ss_ase",
    "sub_ss_growth",
    "sub_ss_enterprise",
];

/// US Government subscription checkboxes (SPEC §6).
pub const USGOV_FLAGS: &[&str] = &[
    "sub_consumption_duo_enterprise",
    "sub_consumption_duo_amazon_q",
    "sub_consumption_duo_premium",
    "sub_gitlab_dedicated",
    "sub_sm_premium",
    "sub_sm_ultimate",
    "sub_ss_ase",
    "sub_usgov_12x5",
    "sub_usgov_24x7",
];

/// A tier flag that exists only inside the processor: FedRAMP (Dedicated for Government)
/// implies Dedicated and 24x7 on the US Gov object and is never sent to Zendesk.
pub const USGOV_FEDRAMP_FLAG: &str = "usgov_fedramp";

/// Whether `flag` may appear in `plans.yaml`: a checkbox of either instance or the internal flag.
pub fn is_known_flag(flag: &str) -> bool {
    flag == USGOV_FEDRAMP_FLAG || GLOBAL_FLAGS.contains(&flag) || USGOV_FLAGS.contains(&flag)
}

/// The organization fields the partner sync writes on Global partner orgs (SPEC §9), in order.
pub const PARTNER_FIELD_KEYS: &[&str] = &[
    field::SALESFORCE_ID,
    field::SFDC_SHORT_ID,
    field::ACCOUNT_TYPE,
    field::ACCOUNT_OWNER,
    field::TECHNICAL_ACCOUNT_MANAGER,
    field::SOLUTIONS_ARCHITECT,
    field::RESTRICTED_ACCOUNT,
    field::ORG_IN_ESCALATED_STATE,
    field::SUPPORT_HOLD,
    field::MARK_FOR_DELETION,
];

/// Zendesk `account_type` values of partner organizations (SPEC §5.3 step 1, §7, §9).
pub const PARTNER_ACCOUNT_TYPES: &[&str] = &["alliance_partner", "open_partner", "select_partner"];

/// Support levels, from the highest to the lowest entitlement. `Expired` is what an object
/// gets when none of its charges is active; it never appears in `plans.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportLevel {
    Ultimate,
    Gold,
    Premium,
    Silver,
    ConsumptionOnly,
    Custom,
    Community,
    Expired,
}

impl SupportLevel {
    /// The levels a tier may grant, highest first (SPEC §5.3 step 4).
    pub const TIER_LEVELS: [SupportLevel; 7] = [
        SupportLevel::Ultimate,
        SupportLevel::Gold,
        SupportLevel::Premium,
        SupportLevel::Silver,
        SupportLevel::ConsumptionOnly,
        SupportLevel::Custom,
        SupportLevel::Community,
    ];

    /// Higher rank = more support. `Expired` ranks below everything.
    pub fn rank(self) -> u8 {
        match self {
            SupportLevel::Ultimate => 7,
            SupportLevel::Gold => 6,
            SupportLevel::Premium => 5,
            SupportLevel::Silver => 4,
            SupportLevel::ConsumptionOnly => 3,
            SupportLevel::Custom => 2,
            SupportLevel::Community => 1,
            SupportLevel::Expired => 0,
        }
    }

    /// The Zendesk dropdown tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            SupportLevel::Ultimate => "ultimate",
            SupportLevel::Gold => "gold",
            SupportLevel::Premium => "premium",
            SupportLevel::Silver => "silver",
            SupportLevel::ConsumptionOnly => "consumption_only",
            SupportLevel::Custom => "custom",
            SupportLevel::Community => "community",
            SupportLevel::Expired => "expired",
        }
    }

    pub fn parse(tag: &str) -> Option<SupportLevel> {
        Self::TIER_LEVELS
            .into_iter()
            .chain([SupportLevel::Expired])
            .find(|level| level.as_str() == tag)
    }
}

impl fmt::Display for SupportLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_rank_in_the_documented_order() {
        let ranks: Vec<u8> = SupportLevel::TIER_LEVELS.iter().map(|l| l.rank()).collect();
        assert!(ranks.windows(2).all(|w| w[0] > w[1]), "{ranks:?}");
        assert!(SupportLevel::Community.rank() > SupportLevel::Expired.rank());
    }

    #[test]
    fn level_tags_round_trip() {
        for level in SupportLevel::TIER_LEVELS
            .into_iter()
            .chain([SupportLevel::Expired])
        {
            assert_eq!(SupportLevel::parse(level.as_str()), Some(level));
            assert_eq!(
                serde_json::to_value(level).unwrap(),
                serde_json::json!(level.as_str())
            );
        }
        assert_eq!(SupportLevel::parse("platinum"), None);
    }

    #[test]
    fn instance_specific_keys() {
        assert_eq!(Instance::Global.arr_key(), "aar");
        assert_eq!(Instance::Usgov.arr_key(), "arr");
        let global = Instance::Global.field_keys();
        let usgov = Instance::Usgov.field_keys();
        assert!(global.contains(&"org_region") && !usgov.contains(&"org_region"));
        assert!(usgov.contains(&"emergency_support_24x7"));
        assert!(!global.contains(&"emergency_support_24x7"));
        assert!(global.contains(&"seats_decimal") && usgov.contains(&"number_of_seats"));
        for keys in [&global, &usgov] {
            assert!(!keys.contains(&USGOV_FEDRAMP_FLAG));
            let mut sorted = keys.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), keys.len(), "duplicate key in {keys:?}");
        }
    }

    #[test]
    fn known_flags() {
        assert!(is_known_flag("sub_ss_ase"));
        assert!(is_known_flag("sub_usgov_24x7"));
        assert!(is_known_flag(USGOV_FEDRAMP_FLAG));
        assert!(!is_known_flag("sub_platinum"));
        assert!(!is_known_flag("support_level"));
    }

    #[test]
    fn instance_parses_from_its_name_only() {
        assert_eq!("usgov".parse::<Instance>(), Ok(Instance::Usgov));
        assert!("US Gov".parse::<Instance>().is_err());
    }
}
