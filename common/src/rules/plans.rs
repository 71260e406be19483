//! `plans.yaml`: which charge names grant which entitlements (SPEC §5.1).
//!
//! The file is loaded and fully validated before any account is processed: a mistake in it would
//! otherwise silently change the SLA of every account carrying the charge. Every error names the
//! line and the entry.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::LoadError;
use crate::model::instance::is_known_flag;
use crate::model::{Instance, SupportLevel};

/// The `plans.yaml` the project ships; used when the configuration names no other file.
pub const DEFAULT_PLANS_YAML: &str = include_str!("../../data/plans.yaml");

/// A subscription tier: the level and flag its charges grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    pub support_level: SupportLevel,
    pub flag: Option<String>,
    pub seats: bool,
    pub charges: Vec<String>,
}

/// Where a charge's entitlement goes (SPEC §5.3 step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeRoute {
    /// Not a US Gov tier (or an exception tier of an account without the exception).
    Global,
    /// A tier of `usgov.tiers`: always US Gov.
    UsgovTier,
    /// A tier of `usgov.exception_tiers` on a `federal-support` account.
    UsgovException,
}

impl ChargeRoute {
    pub fn instance(self) -> Instance {
        match self {
            ChargeRoute::Global => Instance::Global,
            ChargeRoute::UsgovTier | ChargeRoute::UsgovException => Instance::Usgov,
        }
    }

    /// Why, in words.
    pub fn describe(self) -> &'static str {
        match self {
            ChargeRoute::Global => "Global: not a US Gov tier",
            ChargeRoute::UsgovTier => "US Gov: a US Gov tier (usgov.tiers)",
            ChargeRoute::UsgovException => {
                "US Gov: an exception tier on a federal-support account (usgov.exception_tiers)"
            }
        }
    }
}

/// The validated plans and the lookups derived from them.
#[derive(Debug, Clone)]
pub struct Plans {
    tiers: BTreeMap<String, Tier>,
    /// `plan_lookup`: charge name → tier name.
    plan_lookup: HashMap<String, String>,
    /// Charges that always go to the US Gov instance.
    usgov_plan_names: HashSet<String>,
    /// Charges that go to the US Gov instance for `federal-support` (exception) accounts.
    usgov_plan_names_for_exceptions: HashSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlans {
    tiers: BTreeMap<String, RawTier>,
    #[serde(default)]
    usgov: RawUsgov,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    support_level: Spanned<String>,
    #[serde(default)]
    flag: Option<Spanned<String>>,
    #[serde(default)]
    seats: bool,
    #[serde(default)]
    charges: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUsgov {
    #[serde(default)]
    tiers: Vec<Spanned<String>>,
    #[serde(default)]
    exception_tiers: Vec<Spanned<String>>,
}

impl Plans {
    /// The shipped `common/data/plans.yaml`.
    pub fn default_plans() -> Plans {
        Plans::from_yaml(DEFAULT_PLANS_YAML, "plans.yaml (built in)")
            .expect("the shipped plans.yaml is validated by the test suite")
    }

    /// Parses and validates a `plans.yaml`. `source_name` (a path or key) is quoted in errors.
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Plans, LoadError> {
        let error = |line: Option<u64>, message: String| LoadError {
            source_name: source_name.to_owned(),
            line,
            message,
        };
        let raw: RawPlans = serde_saphyr::from_str(text).map_err(|e| error(None, e.to_string()))?;
        if raw.tiers.is_empty() {
            return Err(error(None, "no tiers are defined".into()));
        }

        let mut tiers = BTreeMap::new();
        let mut plan_lookup: HashMap<String, String> = HashMap::new();
        let mut charge_lines: HashMap<String, u64> = HashMap::new();
        for (name, tier) in raw.tiers {
            let level = &tier.support_level;
            let support_level = SupportLevel::parse(level.value.trim())
                .filter(|l| *l != SupportLevel::Expired)
                .ok_or_else(|| {
                    error(
                        line_of(level),
                        format!(
                            "tier {name:?} has unknown support_level {:?}; expected one of {}",
                            level.value,
                            level_names()
                        ),
                    )
                })?;
            if let Some(flag) = &tier.flag
                && !is_known_flag(&flag.value)
            {
                return Err(error(
                    line_of(flag),
                    format!(
                        "tier {name:?} sets flag {:?}, which is no organization checkbox of SPEC §6 \
                         and not the internal usgov_fedramp",
                        flag.value
                    ),
                ));
            }
            for charge in &tier.charges {
                if charge.value.trim().is_empty() {
                    return Err(error(
                        line_of(charge),
                        format!("tier {name:?} lists an empty charge name"),
                    ));
                }
                if let Some(other) = plan_lookup.insert(charge.value.clone(), name.clone()) {
                    let first = charge_lines
                        .get(&charge.value)
                        .map(|l| format!(" (line {l})"))
                        .unwrap_or_default();
                    return Err(error(
                        line_of(charge),
                        format!(
                            "charge {:?} is in tier {name:?} and already in tier {other:?}{first}; \
                             a charge name may belong to one tier only",
                            charge.value
                        ),
                    ));
                }
                charge_lines.insert(charge.value.clone(), line_of(charge).unwrap_or(0));
            }
            tiers.insert(
                name.clone(),
                Tier {
                    name,
                    support_level,
                    flag: tier.flag.map(|f| f.value),
                    seats: tier.seats,
                    charges: tier.charges.into_iter().map(|c| c.value).collect(),
                },
            );
        }

        let charges_of =
            |entries: &[Spanned<String>], list: &str| -> Result<HashSet<String>, LoadError> {
                let mut charges = HashSet::new();
                for entry in entries {
                    let tier = tiers.get(&entry.value).ok_or_else(|| {
                        error(
                            line_of(entry),
                            format!(
                                "usgov.{list} names {:?}, which is no tier of this file",
                                entry.value
                            ),
                        )
                    })?;
                    charges.extend(tier.charges.iter().cloned());
                }
                Ok(charges)
            };
        let usgov_plan_names = charges_of(&raw.usgov.tiers, "tiers")?;
        let exception_only = charges_of(&raw.usgov.exception_tiers, "exception_tiers")?;
        let usgov_plan_names_for_exceptions =
            usgov_plan_names.union(&exception_only).cloned().collect();

        Ok(Plans {
            tiers,
            plan_lookup,
            usgov_plan_names,
            usgov_plan_names_for_exceptions,
        })
    }

    /// The tier a charge name belongs to (exact match), if any.
    pub fn tier_of(&self, charge_name: &str) -> Option<&Tier> {
        self.plan_lookup
            .get(charge_name)
            .and_then(|tier| self.tiers.get(tier))
    }

    /// `all_valid_plans`: whether any tier lists the charge name.
    pub fn is_valid_plan(&self, charge_name: &str) -> bool {
        self.plan_lookup.contains_key(charge_name)
    }

    /// Whether a charge goes to the US Gov instance for an account with or without the
    /// federal-support exception (SPEC §5.3 step 3).
    pub fn is_usgov_charge(&self, charge_name: &str, exception: bool) -> bool {
        self.route(charge_name, exception).instance() == Instance::Usgov
    }

    /// Which instance a charge goes to, and why (SPEC §5.3 step 3).
    pub fn route(&self, charge_name: &str, exception: bool) -> ChargeRoute {
        if self.usgov_plan_names.contains(charge_name) {
            ChargeRoute::UsgovTier
        } else if exception && self.usgov_plan_names_for_exceptions.contains(charge_name) {
            ChargeRoute::UsgovException
        } else {
            ChargeRoute::Global
        }
    }

    pub fn tiers(&self) -> impl Iterator<Item = &Tier> {
        self.tiers.values()
    }
}

fn line_of<T>(spanned: &Spanned<T>) -> Option<u64> {
    Some(spanned.referenced.line()).filter(|line| *line > 0)
}

fn level_names() -> String {
    SupportLevel::TIER_LEVELS
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::instance::{GLOBAL_FLAGS, USGOV_FEDRAMP_FLAG, USGOV_FLAGS};

    const SMALL: &str = r#"
tiers:
  sm_ultimate:
    support_level: ultimate
    flag: sub_sm_ultimate
    seats: true
    charges:
      - "Self-Managed - Ultimate - 1 Year"
  usgov_24x7:
    support_level: custom
    flag: sub_usgov_24x7
    charges: ["24x7 US Citizen Support - 1 Year"]
  usgov_fedramp:
    support_level: ultimate
    flag: usgov_fedramp
    charges: ["GitLab Dedicated for Government - 1 Year"]
usgov:
  tiers: [usgov_24x7, usgov_fedramp]
  exception_tiers: [sm_ultimate]
"#;

    fn load(text: &str) -> Result<Plans, LoadError> {
        Plans::from_yaml(text, "plans.yaml")
    }

    #[test]
    fn derives_the_lookups() {
        let plans = load(SMALL).unwrap();
        let tier = plans.tier_of("Self-Managed - Ultimate - 1 Year").unwrap();
        assert_eq!(tier.support_level, SupportLevel::Ultimate);
        assert_eq!(tier.flag.as_deref(), Some("sub_sm_ultimate"));
        assert!(tier.seats);
        assert!(
            !plans
                .tier_of("24x7 US Citizen Support - 1 Year")
                .unwrap()
                .seats
        );
        assert!(plans.is_valid_plan("GitLab Dedicated for Government - 1 Year"));
        assert!(
            !plans.is_valid_plan("self-managed - ultimate - 1 year"),
            "exact match only"
        );
        assert!(plans.is_usgov_charge("24x7 US Citizen Support - 1 Year", false));
        assert!(!plans.is_usgov_charge("Self-Managed - Ultimate - 1 Year", false));
        assert!(plans.is_usgov_charge("Self-Managed - Ultimate - 1 Year", true));
        assert!(plans.is_usgov_charge("24x7 US Citizen Support - 1 Year", true));
    }

    #[test]
    fn a_charge_in_two_tiers_is_an_error_naming_both_and_the_line() {
        let text = SMALL.replace(
            r#"charges: ["24x7 US Citizen Support - 1 Year"]"#,
            r#"charges: ["Self-Managed - Ultimate - 1 Year"]"#,
        );
        let err = load(&text).unwrap_err();
        assert_eq!(err.line, Some(12), "{err}");
        let text = err.to_string();
        assert!(text.starts_with("plans.yaml line 12: "), "{text}");
        assert!(
            text.contains("\"Self-Managed - Ultimate - 1 Year\""),
            "{text}"
        );
        assert!(
            text.contains("sm_ultimate") && text.contains("usgov_24x7"),
            "{text}"
        );
        assert!(text.contains("(line 8)"), "{text}");
    }

    #[test]
    fn an_unknown_support_level_is_an_error() {
        let err =
            load(&SMALL.replace("support_level: custom", "support_level: platinum")).unwrap_err();
        assert_eq!(err.line, Some(10));
        assert!(err.message.contains("\"platinum\"") && err.message.contains("usgov_24x7"));
        // `expired` is what no charge being active means; a tier cannot grant it.
        assert!(load(&SMALL.replace("support_level: custom", "support_level: expired")).is_err());
    }

    #[test]
    fn a_usgov_entry_naming_no_tier_is_an_error() {
        let err = load(&SMALL.replace(
            "exception_tiers: [sm_ultimate]",
            "exception_tiers: [sm_ultimate, sm_platinum]",
        ))
        .unwrap_err();
        assert_eq!(err.line, Some(19));
        assert!(
            err.message.contains("usgov.exception_tiers") && err.message.contains("sm_platinum")
        );
        let err = load(&SMALL.replace("tiers: [usgov_24x7, usgov_fedramp]", "tiers: [usgov_12x5]"))
            .unwrap_err();
        assert!(
            err.message.contains("usgov.tiers names \"usgov_12x5\""),
            "{err}"
        );
    }

    #[test]
    fn a_flag_outside_the_field_lists_is_an_error() {
        let err = load(&SMALL.replace("flag: sub_usgov_24x7", "flag: sub_usgov_48x7")).unwrap_err();
        assert_eq!(err.line, Some(11));
        assert!(err.message.contains("sub_usgov_48x7"));
    }

    #[test]
    fn structural_mistakes_are_errors() {
        assert!(load("tiers: {}").unwrap_err().message.contains("no tiers"));
        let err = load(&SMALL.replace("seats: true", "seat: true")).unwrap_err();
        assert!(err.to_string().contains("seat"), "{err}");
        assert!(load("tiers: [").is_err());
        assert!(
            load(&SMALL.replace(
                "charges:\n      - \"Self",
                "charges:\n      - \"\"\n      - \"Self"
            ))
            .is_err()
        );
    }

    #[test]
    fn the_shipped_plans_cover_every_flag_of_both_instances() {
        let plans = Plans::default_plans();
        let flags: HashSet<&str> = plans.tiers().filter_map(|t| t.flag.as_deref()).collect();
        for flag in GLOBAL_FLAGS
            .iter()
            .chain(USGOV_FLAGS)
            .chain([&USGOV_FEDRAMP_FLAG])
        {
            assert!(flags.contains(flag), "no tier sets {flag}");
        }
        let levels: HashSet<SupportLevel> = plans.tiers().map(|t| t.support_level).collect();
        assert_eq!(
            levels.len(),
            SupportLevel::TIER_LEVELS.len(),
            "every level is reachable"
        );
        // Every US Gov checkbox must be reachable by some charge that can go to US Gov.
        for flag in USGOV_FLAGS {
            assert!(
                plans.tiers().any(|t| t.flag.as_deref() == Some(flag)
                    && t.charges.iter().any(|c| plans.is_usgov_charge(c, true))),
                "{flag} can never be set on a US Gov object"
            );
        }
        assert!(plans.is_usgov_charge("GitLab Dedicated for Government - 1 Year", false));
    }
}
