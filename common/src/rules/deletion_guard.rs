//! The deletion guard (SPEC §10): a sync that would mark an unusual number of orgs for deletion
//! holds the marks back and fails, so a broken Salesforce query or a wrong filter cannot flag a
//! large part of the customer base in one hour. An operator who has checked the list allows it
//! for one execution with `{"allow_deletions": {"global": N}}`.

use serde::{Deserialize, Serialize};

pub use crate::model::GuardDecision;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeletionGuard {
    /// Marks up to this many are always allowed (default 25).
    pub min: usize,
    /// … or up to this share of the managed records, when that is more (default 0.05).
    pub ratio: f64,
}

impl Default for DeletionGuard {
    fn default() -> Self {
        DeletionGuard {
            min: 25,
            ratio: 0.05,
        }
    }
}

impl DeletionGuard {
    /// The most marks one sync may apply without an operator's allowance.
    pub fn limit(&self, managed: usize) -> f64 {
        (self.min as f64).max(self.ratio * managed as f64)
    }

    /// `marks` the sync wants to apply among `managed` Zendesk records; `allowance` is the
    /// operator's N for this instance, if given.
    pub fn decide(&self, marks: usize, managed: usize, allowance: Option<usize>) -> GuardDecision {
        let limit = self.limit(managed);
        if marks as f64 <= limit {
            GuardDecision::Allowed { marks, limit }
        } else if let Some(allowed) = allowance.filter(|n| *n >= marks) {
            GuardDecision::AllowedByOperator {
                marks,
                limit,
                allowed,
            }
        } else {
            GuardDecision::Tripped {
                marks,
                limit,
                managed,
            }
        }
    }
}

/// Whether a gather rejected too many records to trust the rest (SPEC §10: more than
/// `max_rejected`, default 1%, of the records fails the stage).
pub fn too_many_rejected(rejected: usize, total: usize, max_ratio: f64) -> bool {
    rejected as f64 > max_ratio * total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_applies_to_small_instances() {
        let guard = DeletionGuard::default();
        assert_eq!(guard.limit(0), 25.0);
        assert_eq!(guard.limit(500), 25.0);
        assert!(!guard.decide(25, 100, None).is_tripped());
        assert!(guard.decide(26, 100, None).is_tripped());
    }

    #[test]
    fn the_ratio_applies_to_large_instances() {
        let guard = DeletionGuard::default();
        assert_eq!(guard.limit(1000), 50.0);
        assert!(!guard.decide(50, 1000, None).is_tripped());
        assert_eq!(
            guard.decide(51, 1000, None),
            GuardDecision::Tripped {
                marks: 51,
                limit: 50.0,
                managed: 1000
            }
        );
        // Fractional limits: 5% of 1010 is 50.5, so 50 passes and 51 trips.
        assert!(!guard.decide(50, 1010, None).is_tripped());
        assert!(guard.decide(51, 1010, None).is_tripped());
    }

    #[test]
    fn an_operator_allowance_must_cover_every_mark() {
        let guard = DeletionGuard::default();
        assert_eq!(
            guard.decide(80, 1000, Some(80)),
            GuardDecision::AllowedByOperator {
                marks: 80,
                limit: 50.0,
                allowed: 80
            }
        );
        assert!(!guard.decide(80, 1000, Some(100)).is_tripped());
        assert!(guard.decide(80, 1000, Some(79)).is_tripped());
        // An allowance never matters below the limit.
        assert_eq!(
            guard.decide(3, 1000, Some(0)),
            GuardDecision::Allowed {
                marks: 3,
                limit: 50.0
            }
        );
    }

    #[test]
    fn custom_thresholds() {
        let guard = DeletionGuard { min: 0, ratio: 0.0 };
        assert!(!guard.decide(0, 10, None).is_tripped());
        assert!(guard.decide(1, 10, None).is_tripped());
    }

    #[test]
    fn rejected_share() {
        assert!(!too_many_rejected(0, 0, 0.01));
        assert!(!too_many_rejected(10, 1000, 0.01));
        assert!(too_many_rejected(11, 1000, 0.01));
        assert!(too_many_rejected(1, 10, 0.01));
    }
}
