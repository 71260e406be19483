//! Salesforce `Account` records → [`Account`]s (SPEC §3).
//!
//! A record that cannot be mapped is rejected with a reason naming the field, never guessed at:
//! a guessed charge date is a wrong SLA. Rejected records whose id is valid keep their Zendesk
//! org untouched downstream (see `DesiredOrgs::held_salesforce_ids`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Value};

use crate::model::org::json_type;
use crate::model::{
    Account, Charge, Region, RejectedRecord, SalesforceAccounts, SalesforceId, SoldTo, Subscription,
};

/// The account query's child relationships (seed 001).
pub const SUBSCRIPTIONS_RELATIONSHIP: &str = "Zuora__Subscriptions__r";
pub const CHARGES_RELATIONSHIP: &str = "Zuora__R00N40000001lGjTEAU__r";

const RESTRICTED_PARTY: &str = "Restricted Party";
const ESCALATED_RISK: &str = "At Risk - Escalated";
const FEDERAL_SUPPORT: &str = "federal-support";

/// Maps every record of the account query (see [`collect_accounts`]).
pub fn map_accounts(records: &[Value], as_of: NaiveDate) -> SalesforceAccounts {
    collect_accounts(records.iter().map(map_account).collect(), as_of)
}

/// Assembles the artifact from per-record results (so a gather can map page by page).
pub fn collect_accounts(
    mapped: Vec<Result<Account, RejectedRecord>>,
    as_of: NaiveDate,
) -> SalesforceAccounts {
    let (accounts, rejected) = reject_shared_ids(mapped, |a| &a.salesforce_id, |a| a.name);
    SalesforceAccounts {
        as_of,
        accounts,
        rejected,
    }
}

/// Why a record whose `Account_ID_18__c` appears on `records` records is rejected.
pub(crate) fn shared_id(id: &SalesforceId, name: String, records: usize) -> RejectedRecord {
    RejectedRecord {
        salesforce_id: Some(id.to_string()),
        name: Some(name),
        reason: format!("Account_ID_18__c appears on {records} records of the query"),
    }
}

/// On how many records each `Account_ID_18__c` appears.
pub(crate) fn occurrences<'a>(
    ids: impl IntoIterator<Item = &'a SalesforceId>,
) -> HashMap<&'a SalesforceId, usize> {
    let mut counted: HashMap<&SalesforceId, usize> = HashMap::new();
    for id in ids {
        *counted.entry(id).or_default() += 1;
    }
    counted
}

/// Records sharing one `Account_ID_18__c` are all rejected: there is no way to tell which one
/// is right, so the Zendesk org is held as it is.
pub(crate) fn reject_shared_ids<T>(
    mapped: Vec<Result<T, RejectedRecord>>,
    id_of: impl Fn(&T) -> &SalesforceId,
    name_of: impl Fn(T) -> String,
) -> (Vec<T>, Vec<RejectedRecord>) {
    let occurrences: HashMap<SalesforceId, usize> =
        occurrences(mapped.iter().flatten().map(&id_of))
            .into_iter()
            .map(|(id, n)| (id.clone(), n))
            .collect();
    let mut kept = Vec::with_capacity(mapped.len());
    let mut rejected = Vec::new();
    for result in mapped {
        match result {
            Ok(record) => match occurrences[id_of(&record)] {
                1 => kept.push(record),
                n => {
                    let id = id_of(&record).clone();
                    rejected.push(shared_id(&id, name_of(record), n));
                }
            },
            Err(rejection) => rejected.push(rejection),
        }
    }
    (kept, rejected)
}

/// The record as a JSON object with its `Account_ID_18__c` and `Name` as sent, for rejections.
pub(crate) fn record_fields(value: &Value) -> Result<&Map<String, Value>, RejectedRecord> {
    value.as_object().ok_or_else(|| RejectedRecord {
        salesforce_id: None,
        name: None,
        reason: format!("record is a JSON {}, not an object", json_type(value)),
    })
}

/// A rejection of `record` for `reason`, naming the record by the id and name it carries.
pub(crate) fn rejection(record: &Map<String, Value>, reason: String) -> RejectedRecord {
    RejectedRecord {
        salesforce_id: record
            .get("Account_ID_18__c")
            .and_then(Value::as_str)
            .map(excerpt),
        name: record
            .get("Name")
            .and_then(Value::as_str)
            .map(|n| excerpt(n.trim())),
        reason,
    }
}

/// The record's `Account_ID_18__c`, validated.
pub(crate) fn account_id(record: &Map<String, Value>) -> Result<SalesforceId, String> {
    match text(record, "Account_ID_18__c")? {
        Some(id) => SalesforceId::parse(id.trim()).map_err(|e| format!("Account_ID_18__c: {e}")),
        None => Err("Account_ID_18__c is missing".into()),
    }
}

/// The record's `Name`, trimmed; blank is an error (Zendesk requires a name).
pub(crate) fn account_name(record: &Map<String, Value>) -> Result<String, String> {
    let name = text(record, "Name")?
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or("Name is missing or blank")?;
    let length = name.chars().count();
    if length > MAX_NAME_CHARS {
        return Err(format!(
            "Name is {length} characters long; Salesforce names have at most {MAX_NAME_CHARS}"
        ));
    }
    Ok(name.to_owned())
}

/// Salesforce's limit on a record's Name, and Zendesk's on an organization's or user's name.
pub const MAX_NAME_CHARS: usize = 255;

/// A value as a rejection reports it: never longer than a name may be, so one bad record cannot
/// blow up the artifact that lists it.
pub(crate) fn excerpt(value: &str) -> String {
    match value.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

/// Maps one record, or says exactly what is wrong with it.
pub fn map_account(record: &Value) -> Result<Account, RejectedRecord> {
    let fields = record_fields(record)?;
    map_fields(fields).map_err(|reason| rejection(fields, reason))
}

fn map_fields(record: &Map<String, Value>) -> Result<Account, String> {
    let salesforce_id = account_id(record)?;
    let name = account_name(record)?;
    let subs = children(record, SUBSCRIPTIONS_RELATIONSHIP)?
        .iter()
        .enumerate()
        .map(|(i, sub)| {
            subscription(sub).map_err(|e| format!("{SUBSCRIPTIONS_RELATIONSHIP}[{i}].{e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let charges = children(record, CHARGES_RELATIONSHIP)?
        .iter()
        .enumerate()
        .map(|(i, charge)| {
            charge_of(charge).map_err(|e| format!("{CHARGES_RELATIONSHIP}[{i}].{e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sold_tos = sold_tos(record, &subs)?;

    Ok(Account {
        salesforce_id,
        name,
        arr: number(record, "CARR_This_Account__c")?,
        account_type: text(record, "Type")?.map(str::to_owned),
        sales_segment: sales_segment(text(record, "Ultimate_Parent_Sales_Segment_Employees__c")?),
        account_owner: text(record, "Account_Owner_Calc__c")?.map(str::to_owned),
        technical_account_manager: text(record, "Technical_Account_Manager_Name__c")?
            .map(str::to_owned),
        solutions_architect: lookup_text(record, "Solutions_Architect_Lookup__r", "Name")?,
        region: region(
            text(record, "Account_Demographics_Geo__c")?,
            text(record, "Account_Demographics_Region__c")?,
        ),
        restricted: text(record, "Restricted_Account__c")?
            .is_some_and(|v| v.trim() == RESTRICTED_PARTY),
        escalated: text(record, "Account_Risk_Level__c")?
            .is_some_and(|v| v.trim() == ESCALATED_RISK),
        exception: text(record, "Support_Instance__c")?
            .is_some_and(|v| v.trim() == FEDERAL_SUPPORT),
        support_hold: checkbox(record, "Support_Hold__c")?,
        partner_track: text(record, "Partner_Track__c")?.map(str::to_owned),
        partner_type: text(record, "Partners_Partner_Type__c")?.map(str::to_owned),
        sold_tos,
        subs,
        charges,
    })
}

/// Lower-cased; `unknown` when Salesforce has no value.
pub fn sales_segment(value: Option<&str>) -> String {
    match value.map(str::trim) {
        Some(segment) if !segment.is_empty() => segment.to_lowercase(),
        _ => "unknown".to_owned(),
    }
}

/// The demographic Geo when it is one of the three regions, else the Region field when it is,
/// else none.
pub fn region(geo: Option<&str>, region: Option<&str>) -> Option<Region> {
    geo.and_then(Region::parse)
        .or_else(|| region.and_then(Region::parse))
}

/// The latest sold-to contact, then each subscription's sold-to email; one per email
/// (case-insensitive), blank emails dropped.
fn sold_tos(record: &Map<String, Value>, subs: &[Subscription]) -> Result<Vec<SoldTo>, String> {
    let latest = SoldTo {
        name: lookup_text(record, "Latest_Sold_To_Contact__r", "Name")?,
        email: lookup_text(record, "Latest_Sold_To_Contact__r", "Email")?.unwrap_or_default(),
    };
    let from_subs = subs.iter().map(|sub| SoldTo {
        name: None,
        email: sub.sold_to_email.clone().unwrap_or_default(),
    });
    let mut seen = HashSet::new();
    Ok(std::iter::once(latest)
        .chain(from_subs)
        .filter_map(|sold_to| {
            let email = sold_to.email.trim().to_lowercase();
            (!email.is_empty() && seen.insert(email.clone())).then_some(SoldTo {
                name: sold_to.name,
                email,
            })
        })
        .collect())
}

fn subscription(value: &Value) -> Result<Subscription, String> {
    let record = as_record(value)?;
    Ok(Subscription {
        id: required_text(record, "Id")?,
        name: text(record, "Name")?.map(str::to_owned),
        status: text(record, "Zuora__Status__c")?.map(str::to_owned),
        start: date(record, "Zuora__SubscriptionStartDate__c")?,
        end: date(record, "Zuora__SubscriptionEndDate__c")?,
        sold_to_email: text(record, "Sold_To_Email__c")?.map(str::to_owned),
    })
}

fn charge_of(value: &Value) -> Result<Charge, String> {
    let record = as_record(value)?;
    Ok(Charge {
        id: required_text(record, "Id")?,
        name: required_text(record, "Zuora__SubscriptionRatePlanChargeName__c")?,
        subscription_id: text(record, "Zuora__Subscription__c")?.map(str::to_owned),
        effective_start: date(record, "Zuora__EffectiveStartDate__c")?,
        effective_end: date(record, "Zuora__EffectiveEndDate__c")?
            .ok_or("Zuora__EffectiveEndDate__c is missing")?,
        quantity: number(record, "Zuora__Quantity__c")?,
    })
}

pub(crate) fn as_record(value: &Value) -> Result<&Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("record is a JSON {}, not an object", json_type(value)))
}

/// The rows of a child relationship. `null` (Salesforce's answer when there are none) is empty.
/// A page that is not `done` means the gather did not follow its `nextRecordsUrl`; mapping it
/// would silently drop charges, so it is an error.
fn children<'a>(record: &'a Map<String, Value>, relationship: &str) -> Result<&'a [Value], String> {
    match record.get(relationship) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Object(page)) => {
            if page.get("done").and_then(Value::as_bool) == Some(false) {
                return Err(format!(
                    "{relationship} is truncated (done: false): its nextRecordsUrl was not followed"
                ));
            }
            match page.get("records") {
                Some(Value::Array(rows)) => Ok(rows),
                None | Some(Value::Null) => Ok(&[]),
                Some(other) => Err(format!(
                    "{relationship}.records is a JSON {}",
                    json_type(other)
                )),
            }
        }
        // Tolerate a bare array (e.g. hand-written fixtures) — it has the same meaning.
        Some(Value::Array(rows)) => Ok(rows),
        Some(other) => Err(format!("{relationship} is a JSON {}", json_type(other))),
    }
}

pub(crate) fn text<'a>(
    record: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, String> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "{field} is a JSON {}, expected text",
            json_type(other)
        )),
    }
}

pub(crate) fn required_text(record: &Map<String, Value>, field: &str) -> Result<String, String> {
    text(record, field)?
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("{field} is missing"))
}

pub(crate) fn lookup_text(
    record: &Map<String, Value>,
    lookup: &str,
    field: &str,
) -> Result<Option<String>, String> {
    match record.get(lookup) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(related)) => text(related, field)
            .map(|v| v.map(str::to_owned))
            .map_err(|e| format!("{lookup}.{e}")),
        Some(other) => Err(format!(
            "{lookup} is a JSON {}, expected an object",
            json_type(other)
        )),
    }
}

fn number(record: &Map<String, Value>, field: &str) -> Result<Option<f64>, String> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or_else(|| format!("{field}: {s:?} is not a number")),
        Some(other) => Err(format!(
            "{field} is a JSON {}, expected a number",
            json_type(other)
        )),
    }
}

pub(crate) fn checkbox(record: &Map<String, Value>, field: &str) -> Result<bool, String> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!(
            "{field} is a JSON {}, expected a checkbox",
            json_type(other)
        )),
    }
}

/// Salesforce dates are `YYYY-MM-DD`; a timestamp (RFC 3339, or Salesforce's `+0000` offset
/// form) is accepted for its UTC date.
fn date(record: &Map<String, Value>, field: &str) -> Result<Option<NaiveDate>, String> {
    let Some(value) = text(record, field)? else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(value)
                .or_else(|_| DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f%z"))
                .ok()
                .map(|t| t.naive_utc().date())
        })
        .map(Some)
        .ok_or_else(|| format!("{field}: {value:?} is not a date (YYYY-MM-DD)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "0011U00000V0tkDQAR";

    /// A record shaped exactly as the account query returns it (lookups and subqueries with
    /// `attributes`, subqueries as `{totalSize, done, records}`).
    fn record() -> Value {
        json!({
            "attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/0011U00000V0tkDQAR"},
            "Account_ID_18__c": ID,
            "Name": "  Acme Corp ",
            "CARR_This_Account__c": 120000.5,
            "Type": "Customer",
            "Ultimate_Parent_Sales_Segment_Employees__c": "Large",
            "Account_Owner_Calc__c": "Jane Owner",
            "Technical_Account_Manager_Name__c": "Tom Tam",
            "Restricted_Account__c": "Restricted Party",
            "Solutions_Architect_Lookup__r": {"attributes": {"type": "User"}, "Name": "Sam Architect"},
            "Account_Demographics_Geo__c": "EMEA",
            "Account_Demographics_Region__c": "AMER",
            "Latest_Sold_To_Contact__r": {"attributes": {"type": "Contact"}, "Name": "Bea Buyer", "Email": "Bea@Acme.test"},
            "Partner_Track__c": null,
            "Partners_Partner_Type__c": null,
            "Support_Hold__c": true,
            "Account_Risk_Level__c": "At Risk - Escalated",
            "Support_Instance__c": "federal-support",
            "Zuora__Subscriptions__r": {"totalSize": 2, "done": true, "records": [
                {"attributes": {"type": "Zuora__Subscription__c"}, "Id": "a1x000000000001AAA", "Name": "A-S0001",
                 "Subscription_ID_18__c": "a1x000000000001AAA", "Zuora__Status__c": "Active",
                 "Zuora__SubscriptionStartDate__c": "2025-01-01", "Zuora__SubscriptionEndDate__c": "2026-12-31",
                 "Sold_To_Email__c": "bea@acme.test"},
                {"attributes": {"type": "Zuora__Subscription__c"}, "Id": "a1x000000000002AAA", "Name": "A-S0002",
                 "Subscription_ID_18__c": "a1x000000000002AAA", "Zuora__Status__c": "Active",
                 "Zuora__SubscriptionStartDate__c": "2025-01-01", "Zuora__SubscriptionEndDate__c": null,
                 "Sold_To_Email__c": " ops@acme.test "}
            ]},
            "Zuora__R00N40000001lGjTEAU__r": {"totalSize": 1, "done": true, "records": [
                {"attributes": {"type": "Zuora__SubscriptionProductCharge__c"}, "Id": "a1y000000000001AAA", "Name": "C-1",
                 "Zuora__SubscriptionRatePlanChargeName__c": "Self-Managed - Ultimate - 1 Year",
                 "Zuora__Subscription__c": "a1x000000000001AAA", "Zuora__EffectiveStartDate__c": "2025-01-01",
                 "Zuora__EffectiveEndDate__c": "2026-12-31", "Zuora__Quantity__c": 250.0}
            ]}
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut r = record();
        r[field] = value;
        r
    }

    fn map(record: Value) -> Account {
        map_account(&record).unwrap()
    }

    fn rejection(record: Value) -> String {
        map_account(&record).unwrap_err().reason
    }

    #[test]
    fn maps_every_field_of_the_table() {
        let a = map(record());
        assert_eq!(a.salesforce_id.as_str(), ID);
        assert_eq!(a.name, "Acme Corp");
        assert_eq!(a.arr, Some(120000.5));
        assert_eq!(a.account_type.as_deref(), Some("Customer"));
        assert_eq!(a.sales_segment, "large");
        assert_eq!(a.account_owner.as_deref(), Some("Jane Owner"));
        assert_eq!(a.technical_account_manager.as_deref(), Some("Tom Tam"));
        assert_eq!(a.solutions_architect.as_deref(), Some("Sam Architect"));
        assert_eq!(a.region, Some(Region::Emea));
        assert!(a.restricted && a.escalated && a.exception && a.support_hold);
        assert_eq!(a.partner_track, None);
        assert_eq!(a.subs.len(), 2);
        assert_eq!(a.subs[0].end, Some("2026-12-31".parse().unwrap()));
        assert_eq!(a.subs[1].end, None);
        assert_eq!(a.charges.len(), 1);
        let c = &a.charges[0];
        assert_eq!(c.name, "Self-Managed - Ultimate - 1 Year");
        assert_eq!(c.effective_end, "2026-12-31".parse().unwrap());
        assert_eq!(c.quantity, Some(250.0));
        assert_eq!(c.subscription_id.as_deref(), Some("a1x000000000001AAA"));
    }

    #[test]
    fn fifteen_character_ids_become_eighteen() {
        let a = map(with("Account_ID_18__c", json!("0011U00000V0tkD")));
        assert_eq!(a.salesforce_id.as_str(), ID);
    }

    #[test]
    fn region_prefers_geo_then_region_then_none() {
        let cases = [
            (json!("AMER"), json!("EMEA"), Some(Region::Amer)),
            (json!("APJ"), json!(null), Some(Region::Apj)),
            (json!("LATAM"), json!("EMEA"), Some(Region::Emea)),
            (json!(null), json!("APJ"), Some(Region::Apj)),
            (json!("PubSec"), json!("Global"), None),
            (json!(null), json!(null), None),
            (json!(" emea "), json!(null), Some(Region::Emea)),
        ];
        for (geo, reg, expected) in cases {
            let mut r = record();
            r["Account_Demographics_Geo__c"] = geo.clone();
            r["Account_Demographics_Region__c"] = reg.clone();
            assert_eq!(map(r).region, expected, "geo {geo} region {reg}");
        }
    }

    #[test]
    fn segment_is_lower_cased_or_unknown() {
        for (value, expected) in [
            (json!("Large"), "large"),
            (json!("PUBSEC"), "pubsec"),
            (json!("Mid-Market"), "mid-market"),
            (json!(""), "unknown"),
            (json!("  "), "unknown"),
            (json!(null), "unknown"),
        ] {
            let a = map(with("Ultimate_Parent_Sales_Segment_Employees__c", value));
            assert_eq!(a.sales_segment, expected);
        }
        let mut r = record();
        r.as_object_mut()
            .unwrap()
            .remove("Ultimate_Parent_Sales_Segment_Employees__c");
        assert_eq!(map(r).sales_segment, "unknown");
    }

    #[test]
    fn restricted_escalated_and_exception_need_their_exact_literals() {
        type Flag = fn(&Account) -> bool;
        let cases: [(&str, Value, Flag, bool); 9] = [
            (
                "Restricted_Account__c",
                json!("Restricted Party"),
                |a| a.restricted,
                true,
            ),
            (
                "Restricted_Account__c",
                json!("Not Restricted"),
                |a| a.restricted,
                false,
            ),
            (
                "Restricted_Account__c",
                json!(null),
                |a| a.restricted,
                false,
            ),
            (
                "Account_Risk_Level__c",
                json!("At Risk - Escalated"),
                |a| a.escalated,
                true,
            ),
            (
                "Account_Risk_Level__c",
                json!("At Risk"),
                |a| a.escalated,
                false,
            ),
            ("Account_Risk_Level__c", json!(null), |a| a.escalated, false),
            (
                "Support_Instance__c",
                json!("federal-support"),
                |a| a.exception,
                true,
            ),
            (
                "Support_Instance__c",
                json!("global-support"),
                |a| a.exception,
                false,
            ),
            ("Support_Instance__c", json!(null), |a| a.exception, false),
        ];
        for (field, value, get, expected) in cases {
            assert_eq!(
                get(&map(with(field, value.clone()))),
                expected,
                "{field} = {value}"
            );
        }
    }

    #[test]
    fn support_hold_null_is_false() {
        assert!(!map(with("Support_Hold__c", json!(null))).support_hold);
        assert!(!map(with("Support_Hold__c", json!(false))).support_hold);
        let mut r = record();
        r.as_object_mut().unwrap().remove("Support_Hold__c");
        assert!(!map(r).support_hold);
    }

    #[test]
    fn null_lookups_are_none() {
        let a = map(with("Solutions_Architect_Lookup__r", json!(null)));
        assert_eq!(a.solutions_architect, None);
        let a = map(with("Latest_Sold_To_Contact__r", json!(null)));
        assert_eq!(
            a.sold_tos
                .iter()
                .map(|s| s.email.as_str())
                .collect::<Vec<_>>(),
            vec!["bea@acme.test", "ops@acme.test"]
        );
        assert_eq!(a.sold_tos[0].name, None);
    }

    #[test]
    fn null_or_empty_subqueries_are_empty() {
        for empty in [
            json!(null),
            json!({"totalSize": 0, "done": true, "records": []}),
        ] {
            let mut r = record();
            r[SUBSCRIPTIONS_RELATIONSHIP] = empty.clone();
            r[CHARGES_RELATIONSHIP] = empty;
            let a = map(r);
            assert!(a.subs.is_empty() && a.charges.is_empty());
        }
        let mut r = record();
        r.as_object_mut().unwrap().remove(CHARGES_RELATIONSHIP);
        assert!(map(r).charges.is_empty());
    }

    #[test]
    fn sold_tos_are_distinct_by_lower_cased_email_and_blank_emails_dropped() {
        let mut r = record();
        r[SUBSCRIPTIONS_RELATIONSHIP]["records"][1]["Sold_To_Email__c"] = json!("BEA@acme.test");
        let a = map(r);
        assert_eq!(a.sold_tos.len(), 1);
        assert_eq!(a.sold_tos[0].email, "bea@acme.test");
        assert_eq!(a.sold_tos[0].name.as_deref(), Some("Bea Buyer"));

        let mut r = record();
        r["Latest_Sold_To_Contact__r"]["Email"] = json!("  ");
        r[SUBSCRIPTIONS_RELATIONSHIP]["records"][0]["Sold_To_Email__c"] = json!(null);
        r[SUBSCRIPTIONS_RELATIONSHIP]["records"][1]["Sold_To_Email__c"] = json!("");
        assert!(map(r).sold_tos.is_empty());
    }

    #[test]
    fn arr_is_a_number_or_null() {
        assert_eq!(map(with("CARR_This_Account__c", json!(null))).arr, None);
        assert_eq!(
            map(with("CARR_This_Account__c", json!(5000))).arr,
            Some(5000.0)
        );
        assert_eq!(
            map(with("CARR_This_Account__c", json!("5000.0"))).arr,
            Some(5000.0)
        );
        assert!(
            rejection(with("CARR_This_Account__c", json!("lots"))).contains("CARR_This_Account__c")
        );
    }

    #[test]
    fn missing_or_invalid_ids_are_rejected_with_the_reason() {
        let mut r = record();
        r.as_object_mut().unwrap().remove("Account_ID_18__c");
        assert_eq!(rejection(r), "Account_ID_18__c is missing");
        let reason = rejection(with("Account_ID_18__c", json!("001' OR Name != '")));
        assert!(reason.starts_with("Account_ID_18__c:"), "{reason}");
        let reason = rejection(with("Account_ID_18__c", json!("0011U00000V0tkDAAA")));
        assert!(reason.contains("checksum"), "{reason}");
        let rejected = map_account(&with("Account_ID_18__c", json!("bad"))).unwrap_err();
        assert_eq!(rejected.salesforce_id.as_deref(), Some("bad"));
        assert_eq!(rejected.name.as_deref(), Some("Acme Corp"));
        assert_eq!(rejected.valid_id(), None);
    }

    #[test]
    fn unparseable_dates_are_rejected_naming_the_row_and_field() {
        let mut r = record();
        r[CHARGES_RELATIONSHIP]["records"][0]["Zuora__EffectiveEndDate__c"] = json!("2026-02-30");
        let rejected = map_account(&r).unwrap_err();
        assert_eq!(
            rejected.reason,
            "Zuora__R00N40000001lGjTEAU__r[0].Zuora__EffectiveEndDate__c: \"2026-02-30\" is not a date (YYYY-MM-DD)"
        );
        assert_eq!(rejected.valid_id().unwrap().as_str(), ID);

        let mut r = record();
        r[SUBSCRIPTIONS_RELATIONSHIP]["records"][1]["Zuora__SubscriptionStartDate__c"] =
            json!("01/02/2025");
        assert!(
            rejection(r).starts_with("Zuora__Subscriptions__r[1].Zuora__SubscriptionStartDate__c")
        );

        let mut r = record();
        r[CHARGES_RELATIONSHIP]["records"][0]["Zuora__EffectiveEndDate__c"] = json!(null);
        assert!(rejection(r).contains("Zuora__EffectiveEndDate__c is missing"));
    }

    #[test]
    fn timestamps_are_accepted_for_their_date() {
        let mut r = record();
        for stamp in ["2026-12-31T00:00:00.000Z", "2026-12-31T00:00:00.000+0000"] {
            r[CHARGES_RELATIONSHIP]["records"][0]["Zuora__EffectiveEndDate__c"] = json!(stamp);
            assert_eq!(
                map(r.clone()).charges[0].effective_end,
                "2026-12-31".parse().unwrap()
            );
        }
    }

    #[test]
    fn a_truncated_subquery_is_an_error_not_silently_short() {
        let mut r = record();
        r[CHARGES_RELATIONSHIP]["done"] = json!(false);
        r[CHARGES_RELATIONSHIP]["nextRecordsUrl"] = json!("/services/data/v62.0/query/01g-2000");
        assert!(rejection(r).contains("truncated"));
    }

    #[test]
    fn blank_names_and_wrong_types_are_rejected() {
        assert_eq!(
            rejection(with("Name", json!("  "))),
            "Name is missing or blank"
        );
        assert!(rejection(with("Support_Hold__c", json!("yes"))).contains("Support_Hold__c"));
        assert!(
            rejection(with("Solutions_Architect_Lookup__r", json!("Sam")))
                .contains("Solutions_Architect_Lookup__r")
        );
        assert!(rejection(json!([1, 2])).contains("not an object"));
        let mut r = record();
        r[CHARGES_RELATIONSHIP]["records"][0]["Zuora__SubscriptionRatePlanChargeName__c"] =
            json!(null);
        assert!(rejection(r).contains("Zuora__SubscriptionRatePlanChargeName__c is missing"));
    }

    #[test]
    fn a_batch_keeps_good_records_and_rejects_bad_and_duplicated_ones() {
        let other = with("Account_ID_18__c", json!("001D000000IRFmaIAH"));
        let bad = with("Account_ID_18__c", json!("nope"));
        let batch = map_accounts(
            &[record(), other, bad, record()],
            "2026-11-23".parse().unwrap(),
        );
        assert_eq!(batch.accounts.len(), 1);
        assert_eq!(
            batch.accounts[0].salesforce_id.as_str(),
            "001D000000IRFmaIAH"
        );
        assert_eq!(batch.rejected.len(), 3);
        let duplicates: Vec<_> = batch
            .rejected
            .iter()
            .filter(|r| r.reason.contains("appears on 2 records"))
            .collect();
        assert_eq!(duplicates.len(), 2);
        assert!(duplicates.iter().all(|r| r.valid_id().is_some()));
    }
}
