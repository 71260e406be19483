//! The pure parts of explain: subjects, and what a sync result says about one key.

use super::story::{Decision, Outcome, outcomes};
use super::*;
use crate::model::{GuardDecision, Pending, RecordOutcome};

const ID: &str = "0011U00000V0tkDQAR";

#[test]
fn a_subject_is_an_account_id_or_an_email() {
    assert_eq!(
        Subject::parse(" 0011U00000V0tkD ").unwrap(),
        Subject::Account(SalesforceId::parse(ID).unwrap())
    );
    assert_eq!(
        Subject::parse("Pat.Lee@Example.com").unwrap(),
        Subject::Email("pat.lee@example.com".into())
    );
    for bad in ["a@b@c", "@example.com", "pat@", "pat lee@example.com"] {
        let error = Subject::parse(bad).unwrap_err();
        assert!(error.contains("not an email"), "{bad}: {error}");
    }
    let error = Subject::parse("001' OR '1'='1").unwrap_err();
    assert!(
        error.contains("neither a Salesforce account id nor an email"),
        "{error}"
    );
}

fn result() -> SyncResult {
    SyncResult {
        sync: Some(SyncKind::Global),
        ..SyncResult::default()
    }
}

#[test]
fn a_mark_held_by_a_tripped_guard_says_so() {
    let mut r = result();
    r.deletion_guard = Some(GuardDecision::Tripped {
        marks: 40,
        limit: 10.0,
        managed: 100,
    });
    let said = outcomes(ID, &[Decision::Mark], Some(&r));
    let [Outcome::HeldByGuard { decision }] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert!(decision.contains("TRIPPED"), "{decision}");
    // A mark that did land is not "held".
    r.marked.push(RecordOutcome::new(ID, Some(7)));
    assert_eq!(
        outcomes(ID, &[Decision::Mark], Some(&r)),
        [Outcome::Marked { id: Some(7) }]
    );
}

#[test]
fn work_past_the_runs_time_is_left_for_the_next_run() {
    let mut r = result();
    r.left_for_next_run = Pending {
        creates: 3,
        updates: 0,
        marks: 0,
    };
    assert_eq!(
        outcomes(ID, &[Decision::Create], Some(&r)),
        [Outcome::LeftForNextRun]
    );
    // Nothing to write: nothing left.
    assert!(outcomes(ID, &[Decision::InSync], Some(&r)).is_empty());
}

#[test]
fn without_a_sync_result_a_write_was_not_made() {
    assert!(matches!(
        outcomes(ID, &[Decision::Create], None).as_slice(),
        [Outcome::NotWritten { .. }]
    ));
    assert!(outcomes(ID, &[Decision::Nothing], None).is_empty());
}

#[test]
fn errors_and_already_done_creates_are_the_keys_own() {
    let mut r = result();
    r.created.push(RecordOutcome {
        key: ID.into(),
        id: Some(9),
        already: true,
        attempt: 0,
    });
    r.created
        .push(RecordOutcome::new("001D000000IRFmaIAH", Some(10)));
    r.errors.push(crate::model::RecordError {
        key: ID.into(),
        action: crate::model::SyncAction::AssociateUser,
        error: "RecordInvalid".into(),
        details: Some("email".into()),
        attempt: 0,
    });
    let said = outcomes(ID, &[Decision::Create], Some(&r));
    assert_eq!(said.len(), 2, "{said:?}");
    assert_eq!(
        said[0],
        Outcome::Created {
            id: Some(9),
            already: true
        }
    );
    assert!(matches!(&said[1], Outcome::Error { what } if what.starts_with("associate user")));
}

/// Explain tells each sync's compare from the sync's spec — the compare input and rules the
/// compare stage itself builds (`SyncSpec::compare_input`) — so a rule changed in a spec shows in
/// the run and in explain alike. This fails the moment explain builds a compare input or states
/// a compare rule of its own: the names of every part a compare input is built from.
#[test]
fn explain_builds_no_compare_input_or_rule_of_its_own() {
    let sources = [
        ("mod.rs", include_str!("mod.rs")),
        ("story.rs", include_str!("story.rs")),
        ("render.rs", include_str!("render.rs")),
    ];
    let builders = [
        "CompareRules",
        "with_held",
        "with_protected",
        "protected_salesforce_ids",
        "held_salesforce_ids",
        "held_emails",
        "desired_users",
        "partner_object",
        "compare_orgs",
        "compare_users",
        ".owns(",
        "partition(",
        "ForeignRecord {",
        ".foreign()",
    ];
    for (file, text) in sources {
        for builder in builders {
            assert!(
                !text.contains(builder),
                "explain/{file} names {builder}: a compare input or rule must come from the sync's spec"
            );
        }
    }
}
