//! The organization fields an account should produce (SPEC §5.3, §6), used to seed Zendesk
//! organizations that start out in sync. It covers what the generator makes (no overrides);
//! the Processor in the common crate is the authority.

use chrono::{Days, NaiveDate};
use serde_json::{Map, Value, json};

use super::plans::{Plans, Tier};
use super::records::{Account, Charge};
use crate::instance::ZendeskInstance;
use crate::zendesk::default_fields::{GLOBAL_FLAGS, SUPPORT_LEVELS, USGOV_FLAGS};

const ACTIVE_GRACE_DAYS: u64 = 15;

/// Fields common to customer and partner organizations.
fn identity_fields(account: &Account) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("salesforce_id".into(), json!(account.id));
    fields.insert("sfdc_short_id".into(), json!(&account.id[..15]));
    fields.insert("account_owner".into(), json!(account.owner));
    fields.insert(
        "technical_account_manager".into(),
        json!(account.technical_account_manager),
    );
    fields.insert(
        "solutions_architect".into(),
        json!(account.solutions_architect),
    );
    fields.insert(
        "restricted_account".into(),
        json!(account.restricted == Some("Restricted Party")),
    );
    fields.insert(
        "org_in_escalated_state".into(),
        json!(account.risk == Some("At Risk - Escalated")),
    );
    fields.insert(
        "support_hold".into(),
        json!(account.support_hold.unwrap_or(false)),
    );
    fields.insert("mark_for_deletion".into(), json!(false));
    fields
}

pub(crate) fn partner_fields(account: &Account, account_type: &str) -> Map<String, Value> {
    let mut fields = identity_fields(account);
    fields.insert("account_type".into(), json!(account_type));
    fields
}

/// The charges of `account` that go to `instance` (SPEC §5.3 step 3).
fn instance_charges(account: &Account, instance: ZendeskInstance) -> Vec<(&Charge, &'static Tier)> {
    let plans = Plans::get();
    let exception = account.support_instance == Some("federal-support");
    account
        .charges()
        .filter_map(|charge| {
            plans
                .tier_of_charge(&charge.charge_name)
                .map(|tier| (charge, tier))
        })
        .filter(|(_, tier)| {
            let usgov = plans.is_usgov_tier(&tier.name)
                || (exception && plans.is_exception_tier(&tier.name));
            usgov == (instance == ZendeskInstance::Usgov)
        })
        .collect()
}

/// The desired custom fields of `account`'s organization in `instance`, or `None` when the
/// account has no charges there.
pub(crate) fn customer_fields(
    account: &Account,
    instance: ZendeskInstance,
    as_of: NaiveDate,
) -> Option<Map<String, Value>> {
    let charges = instance_charges(account, instance);
    if charges.is_empty() {
        return None;
    }
    let cutoff = as_of - Days::new(ACTIVE_GRACE_DAYS);
    let active: Vec<&(&Charge, &Tier)> = charges.iter().filter(|(c, _)| c.end >= cutoff).collect();
    let level = SUPPORT_LEVELS
        .iter()
        .find(|level| active.iter().any(|(_, t)| t.support_level == **level))
        .copied()
        .unwrap_or("expired");
    let expired = level == "expired";
    let expiration = charges.iter().map(|(c, _)| c.end).max().expect("non-empty");
    let seats = active
        .iter()
        .filter(|(_, t)| t.seats)
        .map(|(c, _)| c.quantity)
        .fold(None, |max: Option<f64>, q| {
            Some(max.map_or(q, |m| m.max(q)))
        });
    let mut active_flags: Vec<&str> = active
        .iter()
        .filter_map(|(_, t)| t.flag.as_deref())
        .collect();

    let mut fields = identity_fields(account);
    fields.insert(
        "account_type".into(),
        json!(if expired {
            "former_customer"
        } else {
            "customer"
        }),
    );
    fields.insert("support_level".into(), json!(level));
    fields.insert(
        "expiration_date".into(),
        json!(expiration.format("%Y-%m-%d").to_string()),
    );
    let arr = if expired { Some(0.0) } else { account.arr };
    let segment = account
        .segment
        .map_or("unknown".to_owned(), str::to_lowercase);
    match instance {
        ZendeskInstance::Global => {
            if active_flags.contains(&"sub_ss_enterprise") {
                active_flags.push("sub_ss_ase");
            }
            fields.insert("aar".into(), json!(arr));
            fields.insert("sales_segmentation".into(), json!(segment));
            fields.insert("org_region".into(), json!(region(account)));
            fields.insert("seats_decimal".into(), json!(seats));
            insert_flags(&mut fields, GLOBAL_FLAGS, &active_flags);
        }
        ZendeskInstance::Usgov => {
            if active_flags.contains(&"usgov_fedramp") {
                active_flags.extend(["sub_gitlab_dedicated", "sub_usgov_24x7"]);
            }
            fields.insert("arr".into(), json!(arr));
            fields.insert("market_segment".into(), json!(segment));
            fields.insert("number_of_seats".into(), json!(seats.map(|s| s as i64)));
            insert_flags(&mut fields, USGOV_FLAGS, &active_flags);
            fields.insert(
                "emergency_support_24x7".into(),
                json!(active_flags.contains(&"sub_usgov_24x7")),
            );
        }
    }
    Some(fields)
}

fn insert_flags(fields: &mut Map<String, Value>, all: &[&str], set: &[&str]) {
    for flag in all {
        fields.insert((*flag).into(), json!(set.contains(flag)));
    }
}

/// Geo if it is a region the field knows, else Region, else none (SPEC §3).
fn region(account: &Account) -> Option<String> {
    fn known(value: Option<&str>) -> Option<&str> {
        value.filter(|v| ["AMER", "APJ", "EMEA"].contains(v))
    }
    known(account.geo)
        .or_else(|| known(account.region))
        .map(str::to_lowercase)
}
