//! The stage table: the Lambda functions of the state machine, what each needs (its clients,
//! its secrets) and the names it is known by (function, ASL substitution).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::SecretKind;
use crate::model::Instance;

/// The Lambda functions of the state machine, one per stage. Stages that serve several syncs
/// (gather accounts and orgs, compare, sync) take the instance or the sync from their input
/// rather than having one function each: one mechanism, parameterised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Guard,
    GatherAccounts,
    GatherOrgs,
    Process,
    Compare,
    Sync,
    GatherUsers,
    GatherContacts,
    Summarize,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Guard,
        Stage::GatherAccounts,
        Stage::GatherOrgs,
        Stage::Process,
        Stage::Compare,
        Stage::Sync,
        Stage::GatherUsers,
        Stage::GatherContacts,
        Stage::Summarize,
    ];

    /// The function's short name: the `functions/<name>/` binary and the Lambda function name
    /// suffix (`zdsync-<name>`).
    pub fn function_name(self) -> &'static str {
        match self {
            Stage::Guard => "guard",
            Stage::GatherAccounts => "gather-accounts",
            Stage::GatherOrgs => "gather-orgs",
            Stage::Process => "process",
            Stage::Compare => "compare",
            Stage::Sync => "sync",
            Stage::GatherUsers => "gather-users",
            Stage::GatherContacts => "gather-contacts",
            Stage::Summarize => "summarize",
        }
    }

    /// The `${…}` definition substitution holding the function's ARN in the ASL.
    pub fn substitution(self) -> &'static str {
        match self {
            Stage::Guard => "GuardFunctionArn",
            Stage::GatherAccounts => "GatherAccountsFunctionArn",
            Stage::GatherOrgs => "GatherOrgsFunctionArn",
            Stage::Process => "ProcessFunctionArn",
            Stage::Compare => "CompareFunctionArn",
            Stage::Sync => "SyncFunctionArn",
            Stage::GatherUsers => "GatherUsersFunctionArn",
            Stage::GatherContacts => "GatherContactsFunctionArn",
            Stage::Summarize => "SummarizeFunctionArn",
        }
    }

    /// The stage of a function name or ARN (`zdsync-sync`, `arn:…:function:zdsync-sync`,
    /// `sync`; a deployment may prefix the name, e.g. `prod-zdsync-sync`).
    pub fn from_function(name_or_arn: &str) -> Option<Stage> {
        let name = name_or_arn
            .split(":function:")
            .nth(1)
            .unwrap_or(name_or_arn)
            .split(':') // a qualifier (version or alias)
            .next()
            .unwrap_or_default();
        Stage::ALL
            .into_iter()
            .filter(|stage| {
                name == stage.function_name()
                    || name.ends_with(&format!("zdsync-{}", stage.function_name()))
            })
            .max_by_key(|stage| stage.function_name().len())
    }

    /// What the stage needs from the outside world, checked when a function starts.
    pub fn needs(self) -> Needs {
        let none = Needs::default();
        match self {
            Stage::Guard => Needs {
                executions: true,
                ..none
            },
            Stage::GatherAccounts | Stage::GatherContacts => Needs {
                salesforce: true,
                ..none
            },
            Stage::GatherOrgs => Needs {
                zendesk: &Instance::ALL,
                ..none
            },
            // The user sync is US Gov's alone: its function never holds the Global token.
            Stage::GatherUsers => Needs {
                zendesk: &[Instance::Usgov],
                ..none
            },
            Stage::Process => Needs { http: true, ..none },
            Stage::Compare => none,
            // A failed run's summary names the failed state (from the execution's history)
            // and posts the alert.
            Stage::Summarize => Needs {
                slack: true,
                executions: true,
                ..none
            },
            // A redriven sync checks that no other execution is running before it writes.
            Stage::Sync => Needs {
                zendesk: &Instance::ALL,
                slack: true,
                executions: true,
                ..none
            },
        }
    }

    /// The secrets the stage's function reads at cold start (and so the only ones its role may
    /// read: `tests/infra.rs` checks the template against this).
    pub fn secrets(self) -> Vec<SecretKind> {
        let needs = self.needs();
        let mut kinds = Vec::new();
        if needs.salesforce {
            kinds.push(SecretKind::Salesforce);
        }
        kinds.extend(needs.zendesk.iter().copied().map(SecretKind::Zendesk));
        if needs.slack {
            kinds.push(SecretKind::Slack);
        }
        // The overrides file may come from a private project, which serves it with a token.
        if needs.http {
            kinds.push(SecretKind::Overrides);
        }
        kinds
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.function_name())
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::from_function(s).ok_or_else(|| {
            let names: Vec<&str> = Stage::ALL.iter().map(|s| s.function_name()).collect();
            format!("unknown stage {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// Ports a stage uses. Slack is optional even when wanted (SPEC §8: no webhook → warn only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub salesforce: bool,
    /// The Zendesk instances whose client (and token) the stage needs.
    pub zendesk: &'static [Instance],
    pub slack: bool,
    pub executions: bool,
    /// Plain HTTP(S) for fetching the overrides file from a URL.
    pub http: bool,
}
