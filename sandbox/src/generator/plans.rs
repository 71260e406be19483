//! The subscription tiers of `common/data/plans.yaml`, read at compile time so generated
//! charge names are always ones the Processor knows.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

const PLANS_YAML: &str = include_str!("../../../common/data/plans.yaml");

#[derive(Deserialize)]
struct PlansFile {
    tiers: BTreeMap<String, TierEntry>,
    usgov: UsgovEntry,
}

#[derive(Deserialize)]
struct TierEntry {
    support_level: String,
    flag: Option<String>,
    #[serde(default)]
    seats: bool,
    charges: Vec<String>,
}

#[derive(Deserialize)]
struct UsgovEntry {
    tiers: Vec<String>,
    exception_tiers: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Tier {
    pub name: String,
    pub support_level: String,
    pub flag: Option<String>,
    pub seats: bool,
    pub charges: Vec<String>,
}

pub(crate) struct Plans {
    tiers: Vec<Tier>,
    usgov_tiers: Vec<String>,
    exception_tiers: Vec<String>,
}

impl Plans {
    pub(crate) fn get() -> &'static Plans {
        static PLANS: OnceLock<Plans> = OnceLock::new();
        PLANS.get_or_init(|| {
            let file: PlansFile = serde_saphyr::from_str(PLANS_YAML)
                .expect("common/data/plans.yaml parses (its own tests check the schema)");
            Plans {
                tiers: file
                    .tiers
                    .into_iter()
                    .map(|(name, t)| Tier {
                        name,
                        support_level: t.support_level,
                        flag: t.flag,
                        seats: t.seats,
                        charges: t.charges,
                    })
                    .collect(),
                usgov_tiers: file.usgov.tiers,
                exception_tiers: file.usgov.exception_tiers,
            }
        })
    }

    pub(crate) fn tier(&self, name: &str) -> &Tier {
        self.tiers
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("plans.yaml has no tier {name}"))
    }

    pub(crate) fn tier_of_charge(&self, charge: &str) -> Option<&Tier> {
        self.tiers
            .iter()
            .find(|t| t.charges.iter().any(|c| c == charge))
    }

    pub(crate) fn is_usgov_tier(&self, tier: &str) -> bool {
        self.usgov_tiers.iter().any(|t| t == tier)
    }

    pub(crate) fn is_exception_tier(&self, tier: &str) -> bool {
        self.exception_tiers.iter().any(|t| t == tier)
    }

    /// Tiers that carry seats and are sold outside US Gov: a customer's main product.
    pub(crate) fn main_tiers(&self) -> Vec<&Tier> {
        self.tiers
            .iter()
            .filter(|t| t.seats && !self.is_usgov_tier(&t.name))
            .collect()
    }

    /// Seatless Global tiers: add-ons and programs.
    pub(crate) fn addon_tiers(&self) -> Vec<&Tier> {
        self.tiers
            .iter()
            .filter(|t| !t.seats && !self.is_usgov_tier(&t.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tiers_and_usgov_sections() {
        let plans = Plans::get();
        assert!(plans.is_usgov_tier("usgov_24x7"));
        assert!(plans.is_exception_tier("sm_ultimate"));
        assert_eq!(plans.tier("sm_premium").support_level, "premium");
        assert!(!plans.main_tiers().is_empty());
        assert!(plans.addon_tiers().iter().all(|t| !t.seats));
        assert_eq!(
            plans
                .tier_of_charge("24x7 US Citizen Support - 1 Year")
                .map(|t| t.name.as_str()),
            Some("usgov_24x7")
        );
    }
}
