//! The sync's rules as pure functions: no I/O, no clock (`as_of` is always a parameter).
//! Stages read artifacts, call these, and write what they return.

pub mod account_mapping;
pub mod compare;
pub mod dates;
pub mod deletion_guard;
pub mod equality;
pub mod freshness;
pub mod overrides;
pub mod partners;
pub mod plans;
pub mod processor;
pub mod users;

use std::fmt;

pub use compare::{CompareRules, compare_users};
pub use dates::RunDates;
pub use deletion_guard::{DeletionGuard, GuardDecision};
pub use overrides::{Override, Overrides};
pub use plans::{Plans, Tier};
pub use processor::{ProcessInput, ProcessOutput, process};

/// An error in a hand-edited YAML file (`plans.yaml`, overrides): where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The path or store key the text came from.
    pub source_name: String,
    /// 1-based; `None` when the YAML parser gave no position.
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.source_name, self.message),
            None => write!(f, "{}: {}", self.source_name, self.message),
        }
    }
}
