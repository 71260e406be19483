//! The four syncs of a run (SPEC §2, §9, §10): the org sync of each instance, the Global partner
//! sync and the US Gov user sync. Each one compares and writes one kind of Zendesk record, has
//! its own artifacts, and its own deletion-guard count and allowance key.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Instance;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncKind {
    /// Global customer organizations.
    Global,
    /// US Government customer organizations.
    Usgov,
    /// Global partner organizations (alliance, open and select partners).
    Partners,
    /// US Government end-users.
    Users,
}

impl SyncKind {
    pub const ALL: [SyncKind; 4] = [
        SyncKind::Global,
        SyncKind::Usgov,
        SyncKind::Partners,
        SyncKind::Users,
    ];

    /// The org sync of `instance`.
    pub fn orgs(instance: Instance) -> SyncKind {
        match instance {
            Instance::Global => SyncKind::Global,
            Instance::Usgov => SyncKind::Usgov,
        }
    }

    /// The instance this sync writes to.
    pub fn instance(self) -> Instance {
        match self {
            SyncKind::Global | SyncKind::Partners => Instance::Global,
            SyncKind::Usgov | SyncKind::Users => Instance::Usgov,
        }
    }

    /// The name in inputs, artifacts, allowances and the summary (`global`, `partners`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Global => "global",
            SyncKind::Usgov => "usgov",
            SyncKind::Partners => "partners",
            SyncKind::Users => "users",
        }
    }

    /// What a person reads in progress lines and reports.
    pub fn label(self) -> &'static str {
        match self {
            SyncKind::Global => "Global orgs",
            SyncKind::Usgov => "US Gov orgs",
            SyncKind::Partners => "Global partners",
            SyncKind::Users => "US Gov users",
        }
    }

    /// The records the guard counts and the result names: organizations or users.
    pub fn records(self) -> &'static str {
        match self {
            SyncKind::Users => "users",
            _ => "orgs",
        }
    }
}

impl fmt::Display for SyncKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SyncKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SyncKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = SyncKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown sync {s:?}; expected one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_each_sync_has_its_instance() {
        for kind in SyncKind::ALL {
            assert_eq!(kind.as_str().parse::<SyncKind>().unwrap(), kind);
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(SyncKind::Partners.instance(), Instance::Global);
        assert_eq!(SyncKind::Users.instance(), Instance::Usgov);
        assert_eq!(SyncKind::orgs(Instance::Usgov), SyncKind::Usgov);
        assert!(
            "partner"
                .parse::<SyncKind>()
                .unwrap_err()
                .contains("partners")
        );
    }
}
