//! SPEC §7 for organizations: joins, minimal updates, equality by meaning, marks and their
//! exclusions, conflicts; plus properties (compare(x, x) is empty, output order is stable).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::model::{DesiredOrg, FieldsText, HoldReason, OrgDiff, SyncAction, SyncKind, ZendeskOrg};
use crate::syncs::compare_orgs;

const A: &str = "0011U00000V0tkDQAR";
const B: &str = "001D000000IRFmaIAH";
const C: &str = "0013l00002PMMqSAAX";

fn id(s: &str) -> SalesforceId {
    SalesforceId::parse(s).unwrap()
}

/// As compare reads it: through the artifact's JSON.
fn read_back<T: serde::Serialize, R: serde::de::DeserializeOwned>(value: &T) -> R {
    serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
}

fn desired(salesforce_id: &str, name: &str, fields: Value) -> RawDesiredOrg {
    let mut organization_fields = json!({
        "salesforce_id": salesforce_id, "support_level": "premium", "aar": 1000,
        "sub_sm_premium": true, "sub_sm_ultimate": false, "account_owner": null,
        "mark_for_deletion": false
    });
    for (k, v) in fields.as_object().unwrap() {
        organization_fields[k] = v.clone();
    }
    read_back(&DesiredOrg {
        salesforce_id: id(salesforce_id),
        name: name.into(),
        organization_fields: organization_fields.as_object().unwrap().clone(),
        sold_tos: Vec::new(),
    })
}

/// A Zendesk org that matches `desired(salesforce_id, name, {})` in meaning but not in text.
fn org(zendesk_id: u64, salesforce_id: &str, name: &str, fields: Value) -> RawZendeskOrg {
    let mut organization_fields = json!({
        "salesforce_id": salesforce_id, "support_level": "premium", "aar": "1000.0",
        "sub_sm_premium": true, "account_owner": "", "am_project_id": 77
    });
    for (k, v) in fields.as_object().unwrap() {
        organization_fields[k] = v.clone();
    }
    read_back(
        &ZendeskOrg::from_api(
            json!({"id": zendesk_id, "name": name, "organization_fields": organization_fields, "notes": "agent notes"})
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap(),
    )
}

/// `org` with its organization fields edited, read back as compare reads an artifact.
fn edit_org(org: &RawZendeskOrg, edit: impl FnOnce(&mut Map<String, Value>)) -> RawZendeskOrg {
    let mut fields = org.organization_fields.parse();
    edit(&mut fields);
    read_back(
        &json!({"id": org.id, "name": org.name, "salesforce_id": org.salesforce_id, "organization_fields": fields}),
    )
}

fn edit_desired(
    desired: &RawDesiredOrg,
    edit: impl FnOnce(&mut Map<String, Value>),
) -> RawDesiredOrg {
    let mut fields = desired.organization_fields.parse();
    edit(&mut fields);
    RawDesiredOrg {
        organization_fields: FieldsText::of(&fields),
        ..desired.clone()
    }
}

fn global(desired: &[RawDesiredOrg], zendesk: &[RawZendeskOrg]) -> OrgDiff {
    orgs(SyncKind::Global, desired, zendesk, &CompareRules::default())
}

fn orgs(
    sync: SyncKind,
    desired: &[RawDesiredOrg],
    zendesk: &[RawZendeskOrg],
    rules: &CompareRules<SalesforceId>,
) -> OrgDiff {
    compare_orgs(sync, desired, zendesk, &[], rules)
}

#[test]
fn matching_orgs_produce_nothing_even_when_spelled_differently() {
    let diff = global(
        &[desired(A, "Acme", json!({}))],
        &[org(1, A, " Acme ", json!({}))],
    );
    assert!(diff.is_empty(), "{diff:#?}");
}

#[test]
fn a_desired_object_without_an_org_is_created() {
    let diff = global(
        &[desired(A, "Acme", json!({})), desired(B, "Beta", json!({}))],
        &[org(1, A, "Acme", json!({}))],
    );
    assert_eq!(diff.creates.len(), 1);
    assert_eq!(diff.creates[0].salesforce_id, id(B));
    assert!(diff.updates.is_empty() && diff.not_in_sync.is_empty());
}

#[test]
fn expired_objects_are_not_created_for_org_syncs() {
    let expired = desired(B, "Beta", json!({"support_level": "expired"}));
    for sync in [SyncKind::Global, SyncKind::Usgov] {
        assert!(
            orgs(
                sync,
                std::slice::from_ref(&expired),
                &[],
                &CompareRules::default()
            )
            .creates
            .is_empty()
        );
    }
    // … but an existing org is still updated to expired.
    let diff = global(
        std::slice::from_ref(&expired),
        &[org(2, B, "Beta", json!({}))],
    );
    assert_eq!(
        diff.updates[0].organization_fields["support_level"],
        json!("expired")
    );
    // Partner objects carry no support level: every one of them is created.
    let partner = edit_desired(
        &desired(B, "Beta", json!({"account_type": "open_partner"})),
        |f| {
            f.remove("support_level");
        },
    );
    assert_eq!(
        orgs(
            SyncKind::Partners,
            &[partner],
            &[],
            &CompareRules::default()
        )
        .creates
        .len(),
        1
    );
}

#[test]
fn an_update_holds_the_zendesk_id_and_only_the_changed_keys() {
    let diff = global(
        &[desired(
            A,
            "Acme Corp",
            json!({"support_level": "ultimate", "sub_sm_ultimate": true}),
        )],
        &[org(1, A, "Acme", json!({"sub_sm_ultimate": false}))],
    );
    assert_eq!(diff.updates.len(), 1);
    let update = &diff.updates[0];
    assert_eq!(update.id, 1);
    assert_eq!(update.salesforce_id, id(A));
    assert_eq!(update.name.as_deref(), Some("Acme Corp"));
    assert_eq!(
        Value::Object(update.organization_fields.clone()),
        json!({"support_level": "ultimate", "sub_sm_ultimate": true})
    );
    // Only the name.
    let diff = global(
        &[desired(A, "Acme Corp", json!({}))],
        &[org(1, A, "Acme", json!({}))],
    );
    assert_eq!(diff.updates[0].name.as_deref(), Some("Acme Corp"));
    assert!(diff.updates[0].organization_fields.is_empty());
    // Serialised, an update without a name change has no `name` key at all.
    let diff = global(
        &[desired(A, "Acme", json!({"aar": 2000}))],
        &[org(1, A, "Acme", json!({}))],
    );
    let json = serde_json::to_value(&diff.updates[0]).unwrap();
    assert_eq!(
        json,
        json!({"id": 1, "salesforce_id": A, "organization_fields": {"aar": 2000}})
    );
}

#[test]
fn equality_is_by_meaning() {
    let cases = [
        (json!({"aar": 12345}), json!({"aar": "12345.0"}), true),
        (json!({"aar": 12345}), json!({"aar": 12345.0}), true),
        (json!({"aar": 12345}), json!({"aar": 12346}), false),
        (
            json!({"account_owner": null}),
            json!({"account_owner": ""}),
            true,
        ),
        (json!({"account_owner": null}), json!({}), true),
        (
            json!({"account_owner": "Jane"}),
            json!({"account_owner": " Jane "}),
            true,
        ),
        (
            json!({"account_owner": "Jane"}),
            json!({"account_owner": null}),
            false,
        ),
        (json!({"sub_sm_ultimate": false}), json!({}), true),
        (
            json!({"sub_sm_ultimate": false}),
            json!({"sub_sm_ultimate": null}),
            true,
        ),
        (json!({"sub_sm_ultimate": true}), json!({}), false),
        (
            json!({"expiration_date": "2027-01-31"}),
            json!({"expiration_date": "2027-01-31T00:00:00Z"}),
            true,
        ),
    ];
    for (want, have, equal) in cases {
        let zendesk = edit_org(&org(1, A, "Acme", json!({})), |fields| {
            for key in want.as_object().unwrap().keys() {
                fields.remove(key);
            }
            for (k, v) in have.as_object().unwrap() {
                fields.insert(k.clone(), v.clone());
            }
        });
        let diff = global(&[desired(A, "Acme", want.clone())], &[zendesk]);
        assert_eq!(
            diff.updates.is_empty(),
            equal,
            "desired {want} vs zendesk {have}"
        );
    }
}

#[test]
fn keys_the_desired_object_does_not_have_are_never_compared_or_written() {
    let diff = global(
        &[desired(A, "Acme", json!({}))],
        &[org(
            1,
            A,
            "Acme",
            json!({"am_project_id": 1, "ignore_deletion": true, "assigned_se": "x"}),
        )],
    );
    assert!(diff.is_empty());
}

#[test]
fn managed_orgs_without_a_desired_object_are_marked() {
    let diff = global(
        &[desired(A, "Acme", json!({}))],
        &[
            org(1, A, "Acme", json!({})),
            org(2, B, "Gone Inc", json!({})),
        ],
    );
    assert_eq!(diff.not_in_sync.len(), 1);
    let mark = &diff.not_in_sync[0];
    assert_eq!(
        (mark.id, mark.salesforce_id.clone(), mark.name.as_str()),
        (2, id(B), "Gone Inc")
    );
    assert_eq!(
        serde_json::to_value(mark).unwrap()["organization_fields"],
        json!({"mark_for_deletion": true})
    );
}

#[test]
fn unmanaged_orgs_are_never_touched() {
    let zendesk = [
        org(1, "", "No Id", json!({})),
        org(2, "not-a-salesforce-id", "Bad Id", json!({})),
        org(3, "0011U00000V0tkDAAA", "Bad Checksum", json!({})),
    ];
    let mut no_field = edit_org(&org(4, A, "No Field", json!({})), |f| {
        f.remove("salesforce_id");
    });
    no_field.salesforce_id = None;
    let mut zendesk = zendesk.to_vec();
    zendesk.push(no_field);
    let diff = global(&[], &zendesk);
    assert!(diff.is_empty(), "{diff:#?}");
}

#[test]
fn partner_orgs_belong_to_the_partner_sync_only() {
    let zendesk: Vec<RawZendeskOrg> = ["alliance_partner", "open_partner", "select_partner"]
        .iter()
        .zip([A, B, C])
        .enumerate()
        .map(|(i, (t, sf))| org(i as u64 + 1, sf, t, json!({"account_type": t})))
        .collect();
    assert!(global(&[], &zendesk).not_in_sync.is_empty());
    let rules = CompareRules::default();
    assert_eq!(
        orgs(SyncKind::Usgov, &[], &zendesk, &rules)
            .not_in_sync
            .len(),
        3
    );
    assert_eq!(
        orgs(SyncKind::Partners, &[], &zendesk, &rules)
            .not_in_sync
            .len(),
        3
    );
    let customer = [org(1, A, "Former", json!({"account_type": "customer"}))];
    assert_eq!(global(&[], &customer).not_in_sync.len(), 1);
    assert!(
        orgs(SyncKind::Partners, &[], &customer, &rules)
            .not_in_sync
            .is_empty()
    );
}

#[test]
fn protected_ids_are_never_marked_by_any_org_sync() {
    let zendesk = [
        org(1, A, "Internal", json!({})),
        org(2, B, "Gone", json!({})),
    ];
    for sync in [SyncKind::Global, SyncKind::Usgov, SyncKind::Partners] {
        let mut zendesk = zendesk.clone();
        if sync == SyncKind::Partners {
            for org in &mut zendesk {
                *org = edit_org(org, |f| {
                    f.insert("account_type".into(), json!("open_partner"));
                });
            }
        }
        let rules = CompareRules::default().with_protected([id(A)]);
        let diff = orgs(sync, &[], &zendesk, &rules);
        assert_eq!(
            diff.not_in_sync.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![2]
        );
    }
}

#[test]
fn already_marked_orgs_are_not_marked_again() {
    for marked in [json!(true), json!("true")] {
        let diff = global(
            &[],
            &[org(1, A, "Gone", json!({"mark_for_deletion": marked}))],
        );
        assert!(diff.not_in_sync.is_empty());
    }
    assert_eq!(
        global(
            &[],
            &[org(1, A, "Gone", json!({"mark_for_deletion": false}))]
        )
        .not_in_sync
        .len(),
        1
    );
}

#[test]
fn a_returning_account_is_unmarked() {
    let diff = global(
        &[desired(A, "Acme", json!({}))],
        &[org(1, A, "Acme", json!({"mark_for_deletion": true}))],
    );
    assert_eq!(diff.updates.len(), 1);
    assert_eq!(
        Value::Object(diff.updates[0].organization_fields.clone()),
        json!({"mark_for_deletion": false})
    );
}

#[test]
fn held_accounts_are_neither_updated_nor_marked() {
    let zendesk = [
        org(1, A, "Old Name", json!({})),
        org(2, B, "Broken Data Co", json!({})),
    ];
    let rules = CompareRules::default().with_held([id(A), id(B)]);
    let diff = orgs(
        SyncKind::Global,
        &[desired(A, "New Name", json!({}))],
        &zendesk,
        &rules,
    );
    assert!(diff.is_empty(), "{diff:#?}");
}

#[test]
fn orgs_sharing_a_salesforce_id_are_a_conflict_and_nothing_is_written() {
    // The same account under its 15- and 18-character spellings is still one id.
    let zendesk = [
        org(7, A, "Acme", json!({})),
        org(3, &A[..15], "Acme (old)", json!({})),
        org(9, B, "Beta", json!({})),
        org(10, B, "Beta 2", json!({})),
        org(11, C, "Gamma", json!({})),
    ];
    let diff = global(&[desired(A, "Acme Corp", json!({"aar": 5}))], &zendesk);
    assert!(diff.creates.is_empty() && diff.updates.is_empty());
    // Only the unconflicted orphan is marked.
    assert_eq!(
        diff.not_in_sync.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![11]
    );
    assert_eq!(diff.conflicts.len(), 2);
    let a = &diff.conflicts[0];
    assert_eq!(a.key, A);
    assert_eq!(
        a.records.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![3, 7]
    );
    assert_eq!(a.desired_name.as_deref(), Some("Acme Corp"));
    let b = &diff.conflicts[1];
    assert_eq!(b.key, B);
    assert_eq!(b.desired_name, None);
}

#[test]
fn output_is_sorted() {
    let zendesk = [
        org(30, A, "a", json!({})),
        org(10, B, "b", json!({})),
        org(20, C, "c", json!({})),
    ];
    let desired_objects = [desired(C, "C!", json!({})), desired(A, "A!", json!({}))];
    let diff = global(&desired_objects, &zendesk);
    assert_eq!(
        diff.updates.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![20, 30]
    );
    let diff = global(
        &[desired(C, "c", json!({})), desired(A, "a", json!({}))],
        &[],
    );
    assert_eq!(
        diff.creates
            .iter()
            .map(|c| c.salesforce_id.as_str())
            .collect::<Vec<_>>(),
        vec![A, C]
    );
}

// --- properties -------------------------------------------------------------------------------

/// Random but valid Salesforce ids.
fn any_id() -> impl Strategy<Value = SalesforceId> {
    "[A-Za-z0-9]{15}".prop_map(|s| SalesforceId::parse(&s).unwrap())
}

fn any_field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1_000_000i64..1_000_000).prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|n| json!(n)),
        "[ A-Za-z0-9_-]{0,10}".prop_map(Value::String),
    ]
}

fn any_desired() -> impl Strategy<Value = Vec<RawDesiredOrg>> {
    prop::collection::btree_map(
        any_id(),
        (
            "[A-Za-z][A-Za-z ]{0,12}",
            prop::collection::btree_map("[a-z_]{1,8}", any_field_value(), 0..6),
        ),
        0..12,
    )
    .prop_map(|objects| {
        objects
            .into_iter()
            .map(|(salesforce_id, (name, fields))| {
                read_back(&DesiredOrg {
                    salesforce_id,
                    name,
                    organization_fields: fields.into_iter().collect(),
                    sold_tos: Vec::new(),
                })
            })
            .collect()
    })
}

/// The Zendesk orgs a perfect sync would leave behind for `desired`.
fn orgs_matching(desired: &[RawDesiredOrg]) -> Vec<RawZendeskOrg> {
    desired
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut fields = d.organization_fields.parse();
            fields.insert("salesforce_id".into(), json!(d.salesforce_id.as_str()));
            read_back(
                &ZendeskOrg::from_api(
                    json!({"id": i as u64 + 1, "name": d.name, "organization_fields": fields})
                        .as_object()
                        .unwrap()
                        .clone(),
                )
                .unwrap(),
            )
        })
        .collect()
}

proptest! {
    #[test]
    fn comparing_a_state_with_itself_changes_nothing(desired in any_desired()) {
        for sync in [SyncKind::Global, SyncKind::Usgov] {
            let diff = orgs(sync, &desired, &orgs_matching(&desired), &CompareRules::default());
            prop_assert!(diff.is_empty(), "{:#?}", diff);
        }
    }

    #[test]
    fn output_does_not_depend_on_input_order(
        desired in any_desired(),
        extra in any_desired(),
        seed in any::<u64>(),
    ) {
        // Zendesk: orgs for `extra` (some will be marked, some updated, some conflicting).
        let mut zendesk = orgs_matching(&extra);
        zendesk.extend(orgs_matching(&desired).into_iter().take(desired.len() / 2).map(|mut o| {
            o.id += 1000;
            o.name.push('!');
            o
        }));
        let rules = CompareRules::default();
        let diff = orgs(SyncKind::Global, &desired, &zendesk, &rules);
        let mut shuffled_desired = desired.clone();
        let mut shuffled_zendesk = zendesk.clone();
        shuffle(&mut shuffled_desired, seed);
        shuffle(&mut shuffled_zendesk, seed.rotate_left(7));
        prop_assert_eq!(&orgs(SyncKind::Global, &shuffled_desired, &shuffled_zendesk, &rules), &diff);
    }
}

fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

// --- names (Zendesk org names are unique) -----------------------------------------------------

#[test]
fn a_create_whose_name_is_taken_is_held_back_not_sent() {
    // Held by another managed org, by an unmanaged org (case and blanks ignored), or by an
    // earlier create of this compare.
    let zendesk = [
        org(1, A, "Acme", json!({})),
        org(2, "", " Beta Corp ", json!({})),
    ];
    let diff = global(
        &[
            desired(A, "Acme", json!({})),
            desired(B, "ACME", json!({})),
            desired(C, "beta corp", json!({})),
        ],
        &zendesk,
    );
    assert!(diff.creates.is_empty(), "{:#?}", diff.creates);
    let held: Vec<(&str, Option<u64>)> = diff
        .held_back
        .iter()
        .map(|h| (h.key.as_str(), h.holder_id))
        .collect();
    assert_eq!(
        held,
        vec![(C, Some(2)), (B, Some(1))],
        "sorted by salesforce_id"
    );
    assert!(
        diff.held_back
            .iter()
            .all(|h| h.reason == HoldReason::NameTaken)
    );
    assert!(
        diff.held_back
            .iter()
            .all(|h| h.action == SyncAction::Create)
    );
    assert_eq!(diff.held_back[1].holder_key.as_deref(), Some(A));

    let diff = global(
        &[
            desired(B, "Twin", json!({})),
            desired(C, "twin ", json!({})),
        ],
        &[],
    );
    assert_eq!(diff.creates.len(), 1);
    assert_eq!(diff.creates[0].salesforce_id, id(C), "the first by id wins");
    assert_eq!(diff.held_back[0].key, B);
    assert_eq!(
        diff.held_back[0].holder_id, None,
        "held by a create of this run"
    );
}

#[test]
fn a_rename_onto_a_taken_name_keeps_the_other_changes() {
    let zendesk = [org(1, A, "Acme", json!({})), org(2, B, "Beta", json!({}))];
    let diff = global(&[desired(A, "Beta", json!({"aar": 5}))], &zendesk);
    assert_eq!(diff.updates.len(), 1);
    assert_eq!(diff.updates[0].name, None);
    assert_eq!(
        Value::Object(diff.updates[0].organization_fields.clone()),
        json!({"aar": 5})
    );
    assert_eq!(diff.held_back[0].action, SyncAction::Update);
    assert_eq!(diff.held_back[0].holder_id, Some(2));
    // Only the rename: no update at all, just the held-back name.
    let diff = global(&[desired(A, "beta", json!({}))], &zendesk);
    assert!(diff.updates.is_empty());
    assert_eq!(diff.held_back.len(), 1);
    // A change of case of its own name is not a collision.
    let diff = global(&[desired(A, "ACME", json!({}))], &zendesk);
    assert_eq!(diff.updates[0].name.as_deref(), Some("ACME"));
    assert!(diff.held_back.is_empty());
}

#[test]
fn an_existing_org_keeps_or_takes_a_name_before_a_create_of_this_run() {
    // A (an existing org) is renamed to "Delta"; C, a new account, also wants "Delta". C sorts
    // before A's update would in a single pass by id, and still A wins (SPEC §7).
    let zendesk = [org(1, B, "Beta", json!({}))];
    let zendesk_a = [zendesk[0].clone(), org(2, A, "Alpha", json!({}))];
    let diff = global(
        &[
            desired(B, "Beta", json!({})),
            desired(A, "Delta", json!({})),
            desired(C, "delta", json!({})),
        ],
        &zendesk_a,
    );
    assert_eq!(diff.updates.len(), 1);
    assert_eq!(diff.updates[0].name.as_deref(), Some("Delta"));
    assert!(diff.creates.is_empty(), "{:#?}", diff.creates);
    assert_eq!(diff.held_back.len(), 1);
    let held = &diff.held_back[0];
    assert_eq!((held.key.as_str(), held.action), (C, SyncAction::Create));
    assert_eq!(held.holder_id, Some(2), "held by the org being renamed");
    // An org keeping its own name is never displaced by a create either.
    let diff = global(
        &[desired(B, "Beta", json!({})), desired(C, "BETA", json!({}))],
        &zendesk,
    );
    assert!(diff.creates.is_empty());
    assert_eq!(diff.held_back[0].holder_id, Some(1));
}

#[test]
fn records_of_another_sync_are_never_written_duplicated_or_renamed_onto() {
    // A partner org for A: the Global org sync leaves it alone, holds back a create for A
    // (it would duplicate the account) and a create onto its name.
    let partner = org(5, A, "Partner Co", json!({"account_type": "open_partner"}));
    let diff = global(
        &[
            desired(A, "Acme", json!({})),
            desired(B, "partner co", json!({})),
        ],
        std::slice::from_ref(&partner),
    );
    assert!(diff.creates.is_empty() && diff.updates.is_empty() && diff.not_in_sync.is_empty());
    let reasons: Vec<(&str, HoldReason, Option<u64>)> = diff
        .held_back
        .iter()
        .map(|h| (h.key.as_str(), h.reason, h.holder_id))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (A, HoldReason::OwnedElsewhere, Some(5)),
            (B, HoldReason::NameTaken, Some(5))
        ]
    );
    // Foreign records given by id, name and key only (the partner artifact's `others`).
    let customer = ForeignRecord {
        id: 9,
        name: "Customer Co".into(),
        key: Some(B.into()),
    };
    let partner_object = |sf, name: &str| {
        edit_desired(
            &desired(sf, name, json!({"account_type": "open_partner"})),
            |f| {
                f.remove("support_level");
            },
        )
    };
    let diff = compare_orgs(
        SyncKind::Partners,
        &[
            partner_object(B, "New Partner"),
            partner_object(C, "customer co"),
        ],
        &[],
        std::slice::from_ref(&customer),
        &CompareRules::default(),
    );
    assert!(diff.creates.is_empty(), "{:#?}", diff.creates);
    let reason = |key: &str| diff.held_back.iter().find(|h| h.key == key).unwrap();
    assert_eq!(reason(B).reason, HoldReason::OwnedElsewhere);
    assert_eq!(reason(C).reason, HoldReason::NameTaken);
    assert!(reason(B).describe().contains("not this sync's to write"));
}

#[test]
fn a_key_on_an_owned_and_a_foreign_record_is_a_conflict() {
    let zendesk = [
        org(1, A, "Acme", json!({"account_type": "customer"})),
        org(
            2,
            A,
            "Acme Partner",
            json!({"account_type": "select_partner"}),
        ),
    ];
    for sync in [SyncKind::Global, SyncKind::Partners] {
        let diff = orgs(sync, &[], &zendesk, &CompareRules::default());
        assert!(diff.not_in_sync.is_empty(), "{sync}: nothing is marked");
        assert_eq!(diff.conflicts.len(), 1);
        assert_eq!(diff.conflicts[0].records.len(), 2);
        assert!(diff.conflicts[0].describe().contains("\"Acme Partner\""));
    }
    // Two customer orgs sharing an id are the Global org sync's conflict, not the partner sync's.
    let customers = [org(1, B, "Beta", json!({})), org(2, B, "Beta 2", json!({}))];
    assert_eq!(global(&[], &customers).conflicts.len(), 1);
    let diff = orgs(
        SyncKind::Partners,
        &[],
        &customers,
        &CompareRules::default(),
    );
    assert!(diff.is_empty(), "{diff:#?}");
}

// --- users ------------------------------------------------------------------------------------

fn user(
    id: u64,
    email: Option<&str>,
    name: &str,
    org_id: Option<u64>,
    fields: Value,
) -> ZendeskUser {
    ZendeskUser::from_api(
        json!({"id": id, "name": name, "email": email, "role": "end-user",
               "organization_id": org_id, "user_fields": fields, "verified": true})
        .as_object()
        .unwrap()
        .clone(),
    )
    .unwrap()
}

fn wanted(email: &str, name: &str, org_id: u64) -> DesiredUser {
    DesiredUser {
        name: name.into(),
        email: email.into(),
        organization_id: org_id,
        salesforce_id: id(A),
        user_fields: json!({"not_in_sfdc": false}).as_object().unwrap().clone(),
    }
}

fn users(desired: &[DesiredUser], zendesk: &[ZendeskUser]) -> UserDiff {
    compare_users(desired, zendesk, &[], &CompareRules::default())
}

#[test]
fn users_join_on_the_lower_cased_email_and_update_only_what_differs() {
    let zendesk = [
        user(1, Some("Ana@Acme.example"), "Ana", Some(10), json!({})),
        user(
            2,
            Some("bo@acme.example"),
            "Bo (old)",
            Some(10),
            json!({"not_in_sfdc": false}),
        ),
        user(3, Some("cy@acme.example"), "Cy", Some(10), json!({})),
    ];
    let diff = users(
        &[
            wanted("ana@acme.example", "Ana", 10),
            wanted("bo@acme.example", "Bo", 10),
            wanted("cy@acme.example", "Cy", 20),
            wanted("di@acme.example", "Di", 20),
        ],
        &zendesk,
    );
    assert_eq!(
        diff.creates
            .iter()
            .map(|u| u.email.as_str())
            .collect::<Vec<_>>(),
        vec!["di@acme.example"]
    );
    let updates: Vec<Value> = diff
        .updates
        .iter()
        .map(|u| serde_json::to_value(u).unwrap())
        .collect();
    assert_eq!(
        updates,
        vec![
            json!({"id": 2, "email": "bo@acme.example", "name": "Bo"}),
            json!({"id": 3, "email": "cy@acme.example", "organization_id": 20}),
        ]
    );
    assert!(diff.not_in_sync.is_empty());
}

#[test]
fn users_no_contact_accounts_for_are_marked_once_and_returning_ones_unmarked() {
    let zendesk = [
        user(
            1,
            Some("gone@acme.example"),
            "Gone",
            Some(10),
            json!({"not_in_sfdc": false}),
        ),
        user(
            2,
            Some("marked@acme.example"),
            "Marked",
            None,
            json!({"not_in_sfdc": true}),
        ),
        user(
            3,
            Some("back@acme.example"),
            "Back",
            Some(10),
            json!({"not_in_sfdc": true}),
        ),
        user(4, None, "No Email", Some(10), json!({})),
    ];
    let diff = users(&[wanted("back@acme.example", "Back", 10)], &zendesk);
    assert_eq!(
        serde_json::to_value(&diff.not_in_sync).unwrap(),
        json!([{"id": 1, "email": "gone@acme.example", "user_fields": {"not_in_sfdc": true}}])
    );
    assert_eq!(
        serde_json::to_value(&diff.updates).unwrap(),
        json!([{"id": 3, "email": "back@acme.example", "user_fields": {"not_in_sfdc": false}}])
    );
}

#[test]
fn held_emails_and_foreign_users_are_left_alone_and_names_need_not_be_unique() {
    let zendesk = [user(
        1,
        Some("pat@shared.example"),
        "Pat",
        Some(10),
        json!({}),
    )];
    let agent = ForeignRecord {
        id: 7,
        name: "Agent".into(),
        key: Some("agent@acme.example".into()),
    };
    let rules = CompareRules::default().with_held(["pat@shared.example".to_owned()]);
    let diff = compare_users(
        &[
            wanted("pat@shared.example", "Pat", 20),
            wanted("agent@acme.example", "Agent", 10),
            wanted("sam1@acme.example", "Sam", 10),
            wanted("sam2@acme.example", "Sam", 10),
        ],
        &zendesk,
        std::slice::from_ref(&agent),
        &rules,
    );
    assert_eq!(diff.creates.len(), 2, "two users may share a name");
    assert!(diff.updates.is_empty() && diff.not_in_sync.is_empty());
    assert_eq!(diff.held_back.len(), 1);
    assert_eq!(diff.held_back[0].key, "agent@acme.example");
    assert_eq!(diff.held_back[0].reason, HoldReason::OwnedElsewhere);
    // Held, the user is not marked either when no contact is left.
    assert!(
        compare_users(&[], &zendesk, &[], &rules)
            .not_in_sync
            .is_empty()
    );
}
