//! SPEC §5.3 and §6, rule by rule. Dates are relative to AS_OF so the boundaries read plainly.

use chrono::{Days, NaiveDate};
use serde_json::{Value, json};

use super::*;
use crate::model::instance::{GLOBAL_FLAGS, USGOV_FLAGS};
use crate::model::{RejectedRecord, SoldTo, Subscription, ZendeskOrg};

const AS_OF: &str = "2026-11-23";
const ID: &str = "0011U00000V0tkDQAR";
const OTHER_ID: &str = "001D000000IRFmaIAH";

/// A plans file shaped like SPEC §5.1's example, with one tier per level.
const PLANS: &str = r#"
tiers:
  sm_ultimate: { support_level: ultimate, flag: sub_sm_ultimate, seats: true, charges: ["SM Ultimate"] }
  sm_premium: { support_level: premium, flag: sub_sm_premium, seats: true, charges: ["SM Premium"] }
  gold_legacy: { support_level: gold, seats: true, charges: ["Gold"] }
  silver_legacy: { support_level: silver, flag: sub_dotcom_premium, charges: ["Silver"] }
  duo: { support_level: consumption_only, flag: sub_consumption_duo_enterprise, charges: ["Duo Enterprise"] }
  ss_ase: { support_level: custom, flag: sub_ss_ase, charges: ["ASE"] }
  ss_enterprise: { support_level: custom, flag: sub_ss_enterprise, charges: ["Success Enterprise"] }
  edu: { support_level: community, flag: sub_edu, charges: ["Edu"] }
  gitlab_dedicated: { support_level: ultimate, flag: sub_gitlab_dedicated, seats: true, charges: ["Dedicated"] }
  usgov_12x5: { support_level: custom, flag: sub_usgov_12x5, charges: ["12x5 US Citizen Support"] }
  usgov_24x7: { support_level: custom, flag: sub_usgov_24x7, charges: ["24x7 US Citizen Support"] }
  usgov_fedramp: { support_level: ultimate, flag: usgov_fedramp, seats: true, charges: ["Dedicated for Government"] }
usgov:
  tiers: [usgov_12x5, usgov_24x7, usgov_fedramp]
  exception_tiers: [sm_ultimate, sm_premium, gitlab_dedicated]
"#;

fn as_of() -> NaiveDate {
    AS_OF.parse().unwrap()
}

/// `days` before AS_OF (negative: after).
fn ago(days: i64) -> NaiveDate {
    if days >= 0 {
        as_of() - Days::new(days as u64)
    } else {
        as_of() + Days::new((-days) as u64)
    }
}

fn charge(name: &str, end: NaiveDate, quantity: Option<f64>) -> Charge {
    Charge {
        id: format!("a1y-{name}-{end}"),
        name: name.into(),
        subscription_id: Some("a1x000000000001AAA".into()),
        effective_start: Some(end - Days::new(365)),
        effective_end: end,
        quantity,
    }
}

/// An active charge (ends in a year) of `name`.
fn active(name: &str) -> Charge {
    charge(name, ago(-365), Some(10.0))
}

fn account(charges: Vec<Charge>) -> Account {
    Account {
        salesforce_id: SalesforceId::parse(ID).unwrap(),
        name: "Acme Corp".into(),
        arr: Some(120000.0),
        account_type: Some("Customer".into()),
        sales_segment: "large".into(),
        account_owner: Some("Jane Owner".into()),
        technical_account_manager: Some("Tom Tam".into()),
        solutions_architect: None,
        region: Some(crate::model::Region::Emea),
        restricted: false,
        escalated: true,
        exception: false,
        support_hold: false,
        partner_track: None,
        partner_type: None,
        sold_tos: vec![SoldTo {
            name: Some("Bea Buyer".into()),
            email: "bea@acme.test".into(),
        }],
        subs: vec![Subscription {
            id: "a1x000000000001AAA".into(),
            name: Some("A-S0001".into()),
            status: Some("Active".into()),
            start: None,
            end: None,
            sold_to_email: None,
        }],
        charges,
    }
}

struct World {
    accounts: SalesforceAccounts,
    global_orgs: Vec<ZendeskOrg>,
    plans: Plans,
    overrides: Overrides,
}

impl World {
    fn new(accounts: Vec<Account>) -> World {
        World {
            accounts: SalesforceAccounts {
                as_of: as_of(),
                accounts,
                rejected: Vec::new(),
            },
            global_orgs: Vec::new(),
            plans: Plans::from_yaml(PLANS, "test plans").unwrap(),
            overrides: Overrides::default(),
        }
    }

    fn overrides(mut self, yaml: &str) -> World {
        self.overrides = Overrides::from_yaml(yaml, "test overrides").unwrap();
        self
    }

    fn run(&self) -> ProcessOutput {
        let keys: Vec<OrgKey> = self.global_orgs.iter().map(OrgKey::from).collect();
        process(&ProcessInput {
            accounts: &self.accounts,
            partner_ids: &partner_ids(&keys),
            plans: &self.plans,
            overrides: &self.overrides,
            dates: RunDates::new(as_of()),
        })
    }
}

fn run(charges: Vec<Charge>) -> ProcessOutput {
    World::new(vec![account(charges)]).run()
}

fn only(orgs: &DesiredOrgs) -> &Map<String, Value> {
    assert_eq!(
        orgs.orgs.len(),
        1,
        "expected one {} object: {:#?}",
        orgs.instance,
        orgs.orgs
    );
    &orgs.orgs[0].organization_fields
}

fn global(charges: Vec<Charge>) -> Map<String, Value> {
    only(&run(charges).global).clone()
}

fn usgov_of(account: Account) -> Map<String, Value> {
    only(&World::new(vec![account]).run().usgov).clone()
}

// --- §6: the object's shape -------------------------------------------------------------------

#[test]
fn a_global_object_has_exactly_the_global_keys_with_their_values() {
    let out = run(vec![active("SM Ultimate")]);
    let object = &out.global.orgs[0];
    assert_eq!(object.name, "Acme Corp");
    assert_eq!(
        object.sold_tos.len(),
        1,
        "sold_tos ride along on Global objects"
    );
    let keys: Vec<&str> = object
        .organization_fields
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, Instance::Global.field_keys());
    let f = &object.organization_fields;
    assert_eq!(f["salesforce_id"], json!(ID));
    assert_eq!(f["sfdc_short_id"], json!("0011U00000V0tkD"));
    assert_eq!(f["account_owner"], json!("Jane Owner"));
    assert_eq!(f["technical_account_manager"], json!("Tom Tam"));
    assert_eq!(f["solutions_architect"], Value::Null);
    assert_eq!(f["aar"], json!(120000.0));
    assert_eq!(f["sales_segmentation"], json!("large"));
    assert_eq!(f["org_region"], json!("emea"));
    assert_eq!(f["restricted_account"], json!(false));
    assert_eq!(f["org_in_escalated_state"], json!(true));
    assert_eq!(f["support_hold"], json!(false));
    assert_eq!(f["account_type"], json!("customer"));
    assert_eq!(f["support_level"], json!("ultimate"));
    assert_eq!(f["expiration_date"], json!(ago(-365).to_string()));
    assert_eq!(f["seats_decimal"], json!(10.0));
    assert_eq!(f["mark_for_deletion"], json!(false));
    for flag in GLOBAL_FLAGS {
        assert_eq!(f[*flag], json!(*flag == "sub_sm_ultimate"), "{flag}");
    }
    assert!(out.usgov.orgs.is_empty());
}

#[test]
fn a_usgov_object_has_exactly_the_usgov_keys() {
    let f = usgov_of(account(vec![active("12x5 US Citizen Support")]));
    let keys: Vec<&str> = f.keys().map(String::as_str).collect();
    assert_eq!(keys, Instance::Usgov.field_keys());
    assert_eq!(f["arr"], json!(120000.0));
    assert_eq!(f["market_segment"], json!("large"));
    assert!(
        !f.contains_key("org_region") && !f.contains_key("aar") && !f.contains_key("usgov_fedramp")
    );
    assert_eq!(f["number_of_seats"], Value::Null);
    for flag in USGOV_FLAGS {
        assert_eq!(f[*flag], json!(*flag == "sub_usgov_12x5"), "{flag}");
    }
    let out = World::new(vec![account(vec![active("12x5 US Citizen Support")])]).run();
    assert!(out.usgov.orgs[0].sold_tos.is_empty());
}

#[test]
fn a_null_arr_stays_null_and_no_region_is_null() {
    let mut a = account(vec![active("SM Premium")]);
    a.arr = None;
    a.region = None;
    let out = World::new(vec![a]).run();
    let f = only(&out.global);
    assert_eq!(f["aar"], Value::Null);
    assert_eq!(f["org_region"], Value::Null);
}

// --- step 1: skips ----------------------------------------------------------------------------

#[test]
fn partner_accounts_are_skipped() {
    let mut world = World::new(vec![account(vec![active("SM Ultimate")])]);
    for partner_type in ["alliance_partner", "open_partner", "select_partner"] {
        world.global_orgs = vec![
            ZendeskOrg::from_api(
                json!({"id": 9, "name": "Acme Partner", "organization_fields": {"salesforce_id": ID, "account_type": partner_type}})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap(),
        ];
        let out = world.run();
        assert!(
            out.global.orgs.is_empty() && out.usgov.orgs.is_empty(),
            "{partner_type}"
        );
        assert_eq!(out.report.skipped_accounts[0].reason, SkipReason::Partner);
    }
    // A customer org with the same id is not a partner: the account is processed.
    world.global_orgs[0]
        .organization_fields
        .insert("account_type".into(), json!("customer"));
    assert_eq!(world.run().global.orgs.len(), 1);
}

#[test]
fn accounts_without_subscriptions_are_skipped() {
    let mut a = account(vec![active("SM Ultimate")]);
    a.subs.clear();
    let out = World::new(vec![a]).run();
    assert!(out.global.orgs.is_empty());
    assert_eq!(
        out.report.skipped_accounts[0].reason,
        SkipReason::NoSubscriptions
    );
    assert_eq!(
        out.report.skipped_accounts[0].salesforce_id.as_deref(),
        Some(ID)
    );
}

// --- step 2: unmapped charges -----------------------------------------------------------------

#[test]
fn unmapped_charge_names_are_counted_and_ignored() {
    let out = run(vec![
        active("SM Premium"),
        active("Mystery SKU"),
        active("Mystery SKU"),
        active("sm premium"),
    ]);
    assert_eq!(only(&out.global)["support_level"], json!("premium"));
    assert_eq!(out.report.unmapped_charges["Mystery SKU"], 2);
    assert_eq!(
        out.report.unmapped_charges["sm premium"], 1,
        "matching is exact"
    );
    let out = run(vec![active("Mystery SKU")]);
    assert!(out.global.orgs.is_empty());
    assert_eq!(
        out.report.skipped_accounts[0].reason,
        SkipReason::NoMappedCharges
    );
}

// --- step 3: the instance split ---------------------------------------------------------------

#[test]
fn usgov_tiers_always_go_to_usgov() {
    let out = run(vec![
        active("SM Ultimate"),
        active("24x7 US Citizen Support"),
    ]);
    let g = only(&out.global);
    let u = only(&out.usgov);
    assert_eq!(g["sub_sm_ultimate"], json!(true));
    assert_eq!(u["sub_usgov_24x7"], json!(true));
    assert_eq!(u["sub_sm_ultimate"], json!(false));
    assert_eq!(u["support_level"], json!("custom"));
    assert_eq!(g["support_level"], json!("ultimate"));
}

#[test]
fn exception_accounts_send_exception_tiers_to_usgov_and_the_rest_to_global() {
    let mut a = account(vec![
        active("SM Ultimate"),
        active("Duo Enterprise"),
        active("12x5 US Citizen Support"),
    ]);
    a.exception = true;
    let out = World::new(vec![a.clone()]).run();
    let u = only(&out.usgov);
    assert_eq!(u["sub_sm_ultimate"], json!(true));
    assert_eq!(u["sub_usgov_12x5"], json!(true));
    assert_eq!(u["support_level"], json!("ultimate"));
    let g = only(&out.global);
    assert_eq!(g["sub_consumption_duo_enterprise"], json!(true));
    assert_eq!(g["sub_sm_ultimate"], json!(false));
    assert_eq!(g["support_level"], json!("consumption_only"));

    // The same charges without the exception: Self-Managed stays on Global.
    a.exception = false;
    let out = World::new(vec![a]).run();
    assert_eq!(only(&out.global)["sub_sm_ultimate"], json!(true));
    assert_eq!(only(&out.usgov)["sub_sm_ultimate"], json!(false));
}

#[test]
fn an_exception_account_with_only_exception_tiers_has_no_global_object() {
    let mut a = account(vec![active("SM Premium")]);
    a.exception = true;
    let out = World::new(vec![a]).run();
    assert!(out.global.orgs.is_empty());
    assert_eq!(only(&out.usgov)["support_level"], json!("premium"));
}

// --- step 4: entitlements ---------------------------------------------------------------------

#[test]
fn the_fifteen_day_grace_boundary() {
    // Ends exactly 15 days ago: still active.
    let f = global(vec![charge("SM Ultimate", ago(15), Some(5.0))]);
    assert_eq!(f["support_level"], json!("ultimate"));
    assert_eq!(f["sub_sm_ultimate"], json!(true));
    assert_eq!(f["account_type"], json!("customer"));
    // 16 days ago: expired.
    let f = global(vec![charge("SM Ultimate", ago(16), Some(5.0))]);
    assert_eq!(f["support_level"], json!("expired"));
    assert_eq!(f["sub_sm_ultimate"], json!(false));
    assert_eq!(f["account_type"], json!("former_customer"));
    assert_eq!(f["aar"], json!(0));
    assert_eq!(f["seats_decimal"], Value::Null);
    assert_eq!(f["expiration_date"], json!(ago(16).to_string()));
}

#[test]
fn the_level_is_the_highest_among_active_charges() {
    let cases: &[(&[&str], &str)] = &[
        (&["SM Ultimate", "SM Premium"], "ultimate"),
        (&["SM Premium", "Gold"], "gold"),
        (&["SM Premium", "Silver"], "premium"),
        (&["Silver", "Duo Enterprise"], "silver"),
        (&["Duo Enterprise", "ASE"], "consumption_only"),
        (&["ASE", "Edu"], "custom"),
        (&["Edu"], "community"),
        (&["Edu", "Duo Enterprise", "ASE"], "consumption_only"),
        (&["Gold", "Dedicated"], "ultimate"),
    ];
    for (names, level) in cases {
        let f = global(names.iter().map(|n| active(n)).collect());
        assert_eq!(f["support_level"], json!(level), "{names:?}");
    }
}

#[test]
fn expired_charges_neither_set_flags_nor_raise_the_level() {
    let f = global(vec![
        charge("SM Ultimate", ago(100), Some(900.0)),
        active("SM Premium"),
    ]);
    assert_eq!(f["support_level"], json!("premium"));
    assert_eq!(f["sub_sm_ultimate"], json!(false));
    assert_eq!(f["sub_sm_premium"], json!(true));
    assert_eq!(
        f["seats_decimal"],
        json!(10.0),
        "seats of expired charges do not count"
    );
}

#[test]
fn the_expiration_date_is_the_latest_end_of_all_the_instances_charges() {
    let f = global(vec![
        charge("SM Premium", ago(-30), None),
        charge("SM Ultimate", ago(100), None),
        charge("ASE", ago(-400), None),
    ]);
    assert_eq!(f["expiration_date"], json!(ago(-400).to_string()));
    // Only this instance's charges count.
    let out = run(vec![
        charge("SM Premium", ago(-30), None),
        charge("24x7 US Citizen Support", ago(-900), None),
    ]);
    assert_eq!(
        only(&out.global)["expiration_date"],
        json!(ago(-30).to_string())
    );
    assert_eq!(
        only(&out.usgov)["expiration_date"],
        json!(ago(-900).to_string())
    );
}

#[test]
fn seats_are_the_largest_active_seat_tier_quantity() {
    let f = global(vec![
        charge("SM Ultimate", ago(-10), Some(25.0)),
        charge("SM Premium", ago(-10), Some(40.0)),
        charge("Duo Enterprise", ago(-10), Some(500.0)), // not a seat tier
    ]);
    assert_eq!(f["seats_decimal"], json!(40.0));
    let f = global(vec![charge("ASE", ago(-10), Some(3.0))]);
    assert_eq!(f["seats_decimal"], Value::Null, "no seat tier: null");
    let f = global(vec![charge("SM Ultimate", ago(-10), None)]);
    assert_eq!(f["seats_decimal"], Value::Null, "no quantity: null");
    // US Gov's seat field is an integer.
    let mut a = account(vec![charge("SM Ultimate", ago(-10), Some(12.6))]);
    a.exception = true;
    assert_eq!(usgov_of(a)["number_of_seats"], json!(13));
}

// --- step 5: overrides ------------------------------------------------------------------------

#[test]
fn an_override_replaces_computed_global_values_before_the_post_rules() {
    let world = World::new(vec![account(vec![charge("SM Premium", ago(100), Some(5.0))])]).overrides(&format!(
        "- salesforce_id: {ID}\n  reason: contract 42\n  fields: {{ support_level: ultimate, sub_sm_ultimate: true, expiration_date: \"2027-06-30\" }}\n"
    ));
    let out = world.run();
    let f = only(&out.global);
    assert_eq!(f["support_level"], json!("ultimate"));
    assert_eq!(f["sub_sm_ultimate"], json!(true));
    assert_eq!(f["expiration_date"], json!("2027-06-30"));
    // Post-rules saw the overridden level: a customer with its ARR, not an expired one.
    assert_eq!(f["account_type"], json!("customer"));
    assert_eq!(f["aar"], json!(120000.0));
    assert_eq!(
        out.report.overrides.applied,
        vec![SalesforceId::parse(ID).unwrap()]
    );
}

#[test]
fn an_override_to_expired_makes_a_former_customer_with_no_arr() {
    let world = World::new(vec![account(vec![active("SM Premium")])]).overrides(&format!(
        "- salesforce_id: {ID}\n  reason: churned\n  fields: {{ support_level: expired }}\n"
    ));
    let f = only(&world.run().global).clone();
    assert_eq!(f["account_type"], json!("former_customer"));
    assert_eq!(f["aar"], json!(0));
}

#[test]
fn an_override_setting_ss_enterprise_implies_ase() {
    let world = World::new(vec![account(vec![active("SM Premium")])]).overrides(&format!(
        "- salesforce_id: {ID}\n  reason: pilot\n  fields: {{ sub_ss_enterprise: true }}\n"
    ));
    let f = only(&world.run().global).clone();
    assert_eq!(f["sub_ss_enterprise"], json!(true));
    assert_eq!(f["sub_ss_ase"], json!(true));
}

#[test]
fn expired_overrides_are_ignored_and_reported() {
    let world = World::new(vec![account(vec![active("SM Premium")])]).overrides(&format!(
        "- salesforce_id: {ID}\n  reason: old deal\n  expires: {}\n  fields: {{ support_level: ultimate }}\n",
        ago(1)
    ));
    let out = world.run();
    assert_eq!(only(&out.global)["support_level"], json!("premium"));
    assert!(out.report.overrides.applied.is_empty());
    assert_eq!(out.report.overrides.expired.len(), 1);
    assert_eq!(out.report.overrides.expired[0].expires, ago(1));
    assert_eq!(out.report.overrides.expired[0].reason, "old deal");
    // Expiring today still applies.
    let world = World::new(vec![account(vec![active("SM Premium")])]).overrides(&format!(
        "- salesforce_id: {ID}\n  reason: last day\n  expires: {AS_OF}\n  fields: {{ support_level: ultimate }}\n"
    ));
    assert_eq!(
        only(&world.run().global)["support_level"],
        json!("ultimate")
    );
}

#[test]
fn overrides_apply_to_global_objects_only_and_unused_ones_are_reported() {
    let mut a = account(vec![active("SM Premium")]);
    a.exception = true; // everything goes to US Gov
    let world = World::new(vec![a]).overrides(&format!(
        "- salesforce_id: {ID}\n  reason: x\n  fields: {{ support_level: ultimate }}\n- salesforce_id: {OTHER_ID}\n  reason: y\n  fields: {{ sub_oss: true }}\n"
    ));
    let out = world.run();
    assert_eq!(only(&out.usgov)["support_level"], json!("premium"));
    assert!(out.report.overrides.applied.is_empty());
    assert_eq!(
        out.report.overrides.unused,
        vec![
            SalesforceId::parse(ID).unwrap(),
            SalesforceId::parse(OTHER_ID).unwrap()
        ]
    );
}

// --- step 6: post-rules -----------------------------------------------------------------------

#[test]
fn aar_on_global_and_arr_on_usgov_are_zero_when_expired() {
    let out = run(vec![
        charge("SM Premium", ago(20), None),
        charge("12x5 US Citizen Support", ago(20), None),
    ]);
    let g = only(&out.global);
    let u = only(&out.usgov);
    assert_eq!((g["aar"].clone(), g.get("arr")), (json!(0), None));
    assert_eq!((u["arr"].clone(), u.get("aar")), (json!(0), None));
    assert_eq!(u["account_type"], json!("former_customer"));
    let out = run(vec![
        active("SM Premium"),
        active("12x5 US Citizen Support"),
    ]);
    assert_eq!(only(&out.global)["aar"], json!(120000.0));
    assert_eq!(only(&out.usgov)["arr"], json!(120000.0));
}

#[test]
fn ss_enterprise_implies_ase_on_global() {
    let f = global(vec![active("Success Enterprise")]);
    assert_eq!(f["sub_ss_enterprise"], json!(true));
    assert_eq!(f["sub_ss_ase"], json!(true));
    let f = global(vec![active("SM Premium")]);
    assert_eq!(f["sub_ss_ase"], json!(false));
}

#[test]
fn fedramp_implies_dedicated_and_24x7_and_the_24x7_schedule() {
    let f = usgov_of(account(vec![active("Dedicated for Government")]));
    assert_eq!(f["sub_gitlab_dedicated"], json!(true));
    assert_eq!(f["sub_usgov_24x7"], json!(true));
    assert_eq!(f["emergency_support_24x7"], json!(true));
    assert_eq!(f["support_level"], json!("ultimate"));
    assert!(
        !f.contains_key("usgov_fedramp"),
        "the internal flag is never sent"
    );

    let f = usgov_of(account(vec![active("24x7 US Citizen Support")]));
    assert_eq!(f["emergency_support_24x7"], json!(true));
    assert_eq!(f["sub_gitlab_dedicated"], json!(false));

    let f = usgov_of(account(vec![active("12x5 US Citizen Support")]));
    assert_eq!(f["emergency_support_24x7"], json!(false));

    // An expired FedRAMP charge implies nothing.
    let f = usgov_of(account(vec![
        charge("Dedicated for Government", ago(30), None),
        active("12x5 US Citizen Support"),
    ]));
    assert_eq!(f["sub_gitlab_dedicated"], json!(false));
    assert_eq!(f["emergency_support_24x7"], json!(false));
}

// --- step 7: the three-year drop --------------------------------------------------------------

#[test]
fn objects_expired_more_than_three_years_are_dropped() {
    let dates = RunDates::new(as_of());
    // Expiring exactly on three_years_out (three years and one day ago) is kept, as expired.
    let f = global(vec![charge("SM Premium", dates.three_years_out, None)]);
    assert_eq!(f["support_level"], json!("expired"));
    // One day earlier is dropped.
    let out = run(vec![charge(
        "SM Premium",
        dates.three_years_out - Days::new(1),
        None,
    )]);
    assert!(out.global.orgs.is_empty());
    let skipped = &out.report.skipped_accounts[0];
    assert_eq!(skipped.reason, SkipReason::ExpiredOverThreeYears);
    assert_eq!(skipped.instance, Some(Instance::Global));
}

#[test]
fn an_override_expiration_date_can_keep_an_old_object() {
    let dates = RunDates::new(as_of());
    let world = World::new(vec![account(vec![charge("SM Premium", dates.three_years_out - Days::new(10), None)])])
        .overrides(&format!("- salesforce_id: {ID}\n  reason: legal hold\n  fields: {{ expiration_date: \"2030-01-01\" }}\n"));
    let f = only(&world.run().global).clone();
    assert_eq!(f["expiration_date"], json!("2030-01-01"));
    assert_eq!(f["support_level"], json!("expired"));
}

// --- the run as a whole -----------------------------------------------------------------------

#[test]
fn rejected_accounts_are_held_and_reported() {
    let mut world = World::new(vec![account(vec![active("SM Premium")])]);
    world.accounts.rejected = vec![
        RejectedRecord {
            salesforce_id: Some(OTHER_ID.into()),
            name: Some("Broken Co".into()),
            reason:
                "Zuora__R00N40000001lGjTEAU__r[0].Zuora__EffectiveEndDate__c: \"x\" is not a date"
                    .into(),
        },
        RejectedRecord {
            salesforce_id: Some("garbage".into()),
            name: None,
            reason: "Account_ID_18__c: bad".into(),
        },
    ];
    let out = world.run();
    let held = vec![SalesforceId::parse(OTHER_ID).unwrap()];
    assert_eq!(out.global.held_salesforce_ids, held);
    assert_eq!(out.usgov.held_salesforce_ids, held);
    let rejected: Vec<_> = out
        .report
        .skipped_accounts
        .iter()
        .filter(|s| s.reason == SkipReason::Rejected)
        .collect();
    assert_eq!(rejected.len(), 2);
    assert!(
        rejected[0]
            .details
            .as_deref()
            .unwrap()
            .contains("EffectiveEndDate")
    );
}

#[test]
fn output_is_sorted_and_counted() {
    let mut second = account(vec![active("SM Premium")]);
    second.salesforce_id = SalesforceId::parse(OTHER_ID).unwrap();
    let out = World::new(vec![second, account(vec![active("SM Ultimate")])]).run();
    let ids: Vec<&str> = out
        .global
        .orgs
        .iter()
        .map(|o| o.salesforce_id.as_str())
        .collect();
    assert_eq!(ids, vec![ID, OTHER_ID]);
    assert_eq!(
        (
            out.report.accounts,
            out.report.global_objects,
            out.report.usgov_objects
        ),
        (2, 2, 0)
    );
    assert_eq!(out.global.as_of, as_of());
    assert_eq!(out.global.instance, Instance::Global);
    assert_eq!(out.usgov.instance, Instance::Usgov);
}

#[test]
fn the_shipped_plans_process_a_typical_account() {
    let mut world = World::new(vec![account(vec![
        active("Self-Managed - Ultimate - 1 Year"),
        active("GitLab Duo Enterprise - 1 Year"),
        active("Success Services - Enterprise - 1 Year"),
    ])]);
    world.plans = Plans::default_plans();
    let out = world.run();
    let f = only(&out.global);
    assert_eq!(f["support_level"], json!("ultimate"));
    assert_eq!(f["sub_sm_ultimate"], json!(true));
    assert_eq!(f["sub_consumption_duo_enterprise"], json!(true));
    assert_eq!(f["sub_ss_ase"], json!(true));
    assert!(out.report.unmapped_charges.is_empty());
}
