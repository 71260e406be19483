//! The sync's SOQL, built from validated values only.
//!
//! Only [`SalesforceId`]s and dates are ever interpolated (SPEC §10): both are proven to
//! contain nothing but `[A-Za-z0-9]` and `-`, so no quoting or escaping can go wrong.
//!
//! A query travels in the URL of a GET, and Salesforce refuses a URI over 16,384 bytes (414)
//! and a URI plus headers over the same (431) (reference/apis.md B2). The contact query's id
//! list is therefore cut into chunks by the real length of the URL each chunk produces, not
//! by a fixed count.

use chrono::{DateTime, NaiveDate, Utc};
use url::form_urlencoded::byte_serialize;

use crate::model::{ApiName, SalesforceId};

/// Salesforce's limit on the request URI, and on URI plus headers combined.
pub const MAX_URI_BYTES: usize = 16_384;

/// Room kept for the request headers (`Authorization` with a ~110-byte token, `Host`,
/// `Sforce-Query-Options`, `Accept`, …) under the combined limit.
pub const HEADER_ALLOWANCE_BYTES: usize = 2_048;

/// The longest query URL the builders produce.
pub const MAX_QUERY_URL_BYTES: usize = MAX_URI_BYTES - HEADER_ALLOWANCE_BYTES;

/// Where queries are sent: the session's `instance_url` and the API version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryEndpoint {
    pub instance_url: String,
    pub api_version: String,
}

impl QueryEndpoint {
    /// The exact URL the client GETs for `soql`.
    pub fn url_for(&self, soql: &str) -> String {
        format!(
            "{}{}",
            self.instance_url.trim_end_matches('/'),
            query_path(&self.api_version, soql)
        )
    }
}

/// `/services/data/{version}/query?q=<soql, form-encoded>`. Form encoding is byte-wise, so
/// the encoded length of a concatenation is the sum of the parts' encoded lengths.
pub fn query_path(api_version: &str, soql: &str) -> String {
    format!("/services/data/{api_version}/query?q={}", encode(soql))
}

/// `/services/data/{version}/queryAll?q=<soql>`: deleted and merged records too.
pub fn query_all_path(api_version: &str, soql: &str) -> String {
    format!("/services/data/{api_version}/queryAll?q={}", encode(soql))
}

fn encode(text: &str) -> String {
    byte_serialize(text.as_bytes()).collect()
}

/// Seed 001's customer account query with both subscription child relationships;
/// `end_date` is SPEC §2's `three_years_out`, written as an unquoted SOQL date literal.
pub fn accounts_query(end_date: NaiveDate) -> String {
    let end_date = end_date.format("%Y-%m-%d");
    format!(
        "SELECT Id, Account_ID_18__c, Name, CARR_This_Account__c, Type, \
         Ultimate_Parent_Sales_Segment_Employees__c, Account_Owner_Calc__c, \
         Technical_Account_Manager_Name__c, Restricted_Account__c, \
         Solutions_Architect_Lookup__r.Name, Account_Demographics_Geo__c, \
         Account_Demographics_Region__c, Latest_Sold_To_Contact__r.Email, \
         Latest_Sold_To_Contact__r.Name, Partner_Track__c, Partners_Partner_Type__c, \
         Support_Hold__c, Account_Risk_Level__c, Support_Instance__c, \
         (SELECT Id, Name, Subscription_ID_18__c, Zuora__Status__c, \
         Zuora__SubscriptionStartDate__c, Zuora__SubscriptionEndDate__c, Sold_To_Email__c \
         FROM Zuora__Subscriptions__r \
         WHERE Zuora__Status__c != 'Cancelled' AND Zuora__SubscriptionEndDate__c >= {end_date}), \
         (SELECT Id, Name, Zuora__SubscriptionRatePlanChargeName__c, Zuora__Subscription__c, \
         Zuora__EffectiveStartDate__c, Zuora__EffectiveEndDate__c, Zuora__Quantity__c \
         FROM Zuora__R00N40000001lGjTEAU__r \
         WHERE Subscription_Status__c != 'Cancelled' AND Zuora__EffectiveEndDate__c >= {end_date}) \
         FROM Account WHERE Type IN ('Customer', 'Former Customer')"
    )
}

/// Seed 003's partner query; the alliance partner's account id is configuration.
pub fn partners_query(alliance_id: &SalesforceId) -> String {
    format!(
        "SELECT Id, Account_ID_18__c, Name, Account_Owner_Calc__c, \
         Technical_Account_Manager_Name__c, Restricted_Account__c, \
         Solutions_Architect_Lookup__r.Name, Partner_Track__c, Support_Hold__c, \
         Account_Risk_Level__c, Type, Partners_Partner_Status__c \
         FROM Account \
         WHERE (Account_ID_18__c = '{alliance_id}' OR (Type = 'Partner' AND \
         Partners_Partner_Status__c IN ('Authorized') AND Partner_Track__c IN ('Open', 'Select')))"
    )
}

/// Seed 000's contact query, split before and after its id list.
const CONTACTS_HEAD: &str = "SELECT Id, Name, Email, Account.Account_ID_18__c FROM Contact \
     WHERE Inactive_Contact__c = false AND Role__c INCLUDES ('Gitlab Admin') AND Name != '' \
     AND Email != '' AND Account.Account_ID_18__c IN (";
const CONTACTS_TAIL: &str = ")";
const ID_SEPARATOR: &str = ",";

/// Seed 000's contact query for the accounts `ids` (one chunk; see [`contacts_queries`]).
pub fn contacts_query(ids: &[SalesforceId]) -> String {
    id_list_query(CONTACTS_HEAD, CONTACTS_TAIL, ids)
}

/// `{head}'id','id',…{tail}`.
fn id_list_query(head: &str, tail: &str, ids: &[SalesforceId]) -> String {
    let list: Vec<String> = ids.iter().map(quoted).collect();
    format!("{head}{}{tail}", list.join(ID_SEPARATOR))
}

fn quoted(id: &SalesforceId) -> String {
    format!("'{id}'")
}

/// The contact queries for all of `ids`, each as long as fits: the URL `endpoint` would be
/// sent (instance URL, path, encoded query) stays within [`MAX_QUERY_URL_BYTES`]. An empty
/// list needs no query. Every id lands in exactly one query, in the given order.
pub fn contacts_queries(ids: &[SalesforceId], endpoint: &QueryEndpoint) -> Vec<String> {
    id_list_queries(CONTACTS_HEAD, CONTACTS_TAIL, ids, endpoint)
}

/// `query` (whose `WHERE` ends the statement) restricted to the records with these `Id`s, in as
/// few queries as fit the URL limit: how a delta gather re-reads the records a change feed
/// named, with the very conditions of the full read.
pub fn restricted_queries(
    query: &str,
    ids: &[SalesforceId],
    endpoint: &QueryEndpoint,
) -> Vec<String> {
    id_list_queries(&format!("{query} AND Id IN ("), ")", ids, endpoint)
}

/// `{head}'id','id',…{tail}` for all of `ids`, cut where the next id would take the URL past
/// [`MAX_QUERY_URL_BYTES`].
fn id_list_queries(
    head: &str,
    tail: &str,
    ids: &[SalesforceId],
    endpoint: &QueryEndpoint,
) -> Vec<String> {
    let query = |ids: &[SalesforceId]| id_list_query(head, tail, ids);
    let base_bytes = endpoint.url_for(&query(&[])).len();
    let separator_bytes = encode(ID_SEPARATOR).len();
    let mut queries = Vec::new();
    let mut chunk_start = 0;
    let mut chunk_bytes = base_bytes;
    for (index, id) in ids.iter().enumerate() {
        let id_bytes = encode(&quoted(id)).len();
        let first_in_chunk = index == chunk_start;
        let added = id_bytes + if first_in_chunk { 0 } else { separator_bytes };
        // A chunk always takes its first id, so an endpoint too long for even one id still
        // yields queries (which Salesforce then refuses as too long) rather than none.
        if !first_in_chunk && chunk_bytes + added > MAX_QUERY_URL_BYTES {
            queries.push(query(&ids[chunk_start..index]));
            chunk_start = index;
            chunk_bytes = base_bytes + id_bytes;
        } else {
            chunk_bytes += added;
        }
    }
    if chunk_start < ids.len() {
        queries.push(query(&ids[chunk_start..]));
    }
    queries
}

/// The records of `object` changed at or after `since` — deleted and merged ones included when
/// sent through `queryAll` — with the lookup naming the account each belongs to, if any. The
/// object and lookup names come from settings and are checked to be API names before they
/// reach a query.
pub fn changed_query(
    object: &ApiName,
    account_lookup: Option<&ApiName>,
    since: DateTime<Utc>,
) -> String {
    let since = since.format("%Y-%m-%dT%H:%M:%SZ");
    match account_lookup {
        Some(lookup) => {
            format!("SELECT Id, {lookup} FROM {object} WHERE SystemModstamp >= {since}")
        }
        None => format!("SELECT Id FROM {object} WHERE SystemModstamp >= {since}"),
    }
}

/// The account query's conditions on child rows that depend on the date — the subscription's
/// and the charge's end on or after `end_date` — applied to a record read on an earlier day:
/// a stored record then shows the rows a full read would return today (the other conditions
/// are on the rows' own fields, so a change to them is a change the feed shows).
pub fn keep_rows_in_term(record: &mut serde_json::Value, end_date: NaiveDate) {
    for (relationship, end_field) in [
        ("Zuora__Subscriptions__r", "Zuora__SubscriptionEndDate__c"),
        (
            "Zuora__R00N40000001lGjTEAU__r",
            "Zuora__EffectiveEndDate__c",
        ),
    ] {
        let Some(rows) = record
            .get_mut(relationship)
            .and_then(|set| set.get_mut("records"))
            .and_then(serde_json::Value::as_array_mut)
        else {
            continue;
        };
        let before = rows.len();
        rows.retain(|row| {
            row.get(end_field)
                .and_then(serde_json::Value::as_str)
                .and_then(|date| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok())
                .is_some_and(|end| end >= end_date)
        });
        if rows.len() != before {
            let kept = rows.len();
            if let Some(set) = record.get_mut(relationship) {
                set["totalSize"] = kept.into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn id(n: u64) -> SalesforceId {
        SalesforceId::parse(&format!("0014M{n:010}")).unwrap()
    }

    fn endpoint() -> QueryEndpoint {
        QueryEndpoint {
            instance_url: "https://gitlab.my.salesforce.com".into(),
            api_version: "v62.0".into(),
        }
    }

    /// The builders' output is valid SOQL for the emulated org (whose describe lists the
    /// sync's objects and fields as GitLab's org has them).
    fn assert_valid_soql(soql: &str) {
        if let Err(e) = zdsync_sandbox::salesforce::soql::compile(soql, &BTreeMap::new()) {
            panic!("{}", e.message(soql));
        }
    }

    #[test]
    fn the_account_query_uses_an_unquoted_end_date() {
        let soql = accounts_query(NaiveDate::from_ymd_opt(2023, 6, 30).unwrap());
        assert_eq!(soql.matches(">= 2023-06-30)").count(), 2, "{soql}");
        assert!(!soql.contains("'2023-06-30'"));
        assert!(!soql.contains("#{"));
        assert_valid_soql(&soql);
    }

    #[test]
    fn the_partner_query_names_the_configured_alliance() {
        let alliance = SalesforceId::parse("0014M00001sDiGE").unwrap();
        let soql = partners_query(&alliance);
        assert!(
            soql.contains("Account_ID_18__c = '0014M00001sDiGEQA0' OR ("),
            "{soql}"
        );
        assert_valid_soql(&soql);
    }

    #[test]
    fn the_contact_query_quotes_each_id() {
        let soql = contacts_query(&[id(1), id(2)]);
        assert!(
            soql.ends_with(&format!("IN ('{}','{}')", id(1), id(2))),
            "{soql}"
        );
        assert_valid_soql(&soql);
    }

    #[test]
    fn contact_chunks_fill_but_never_exceed_the_url_budget() {
        let ids: Vec<SalesforceId> = (0..2_000).map(id).collect();
        let endpoint = endpoint();
        let queries = contacts_queries(&ids, &endpoint);
        assert!(queries.len() > 1);
        let lengths: Vec<usize> = queries.iter().map(|q| endpoint.url_for(q).len()).collect();
        assert!(
            lengths.iter().all(|&l| l <= MAX_QUERY_URL_BYTES),
            "{lengths:?}"
        );
        // Full chunks are full: one more id (24 bytes encoded plus a 3-byte comma) would not fit.
        for &length in &lengths[..lengths.len() - 1] {
            assert!(length + 27 > MAX_QUERY_URL_BYTES, "{lengths:?}");
        }
        let mut seen: Vec<String> = queries
            .iter()
            .flat_map(|q| {
                q.split('\'')
                    .filter(|part| part.starts_with("0014M") && part.len() == 18)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(seen.len(), 2_000);
        seen.dedup();
        assert_eq!(seen.len(), 2_000, "every id exactly once, in order");
    }

    #[test]
    fn no_ids_need_no_query_and_few_ids_need_one() {
        assert!(contacts_queries(&[], &endpoint()).is_empty());
        assert_eq!(
            contacts_queries(&[id(7)], &endpoint()),
            [contacts_query(&[id(7)])]
        );
    }

    #[test]
    fn a_restricted_query_keeps_the_full_reads_conditions_and_adds_the_ids() {
        let alliance = SalesforceId::parse("0014M00001sDiGE").unwrap();
        let ids: Vec<SalesforceId> = (0..1_500).map(id).collect();
        for query in [
            accounts_query(NaiveDate::from_ymd_opt(2023, 6, 30).unwrap()),
            partners_query(&alliance),
        ] {
            let restricted = restricted_queries(&query, &ids, &endpoint());
            assert!(restricted.len() > 1, "1 500 ids do not fit one URL");
            for soql in &restricted {
                assert!(soql.starts_with(&format!("{query} AND Id IN ('")), "{soql}");
                assert!(endpoint().url_for(soql).len() <= MAX_QUERY_URL_BYTES);
                assert_valid_soql(soql);
            }
            let named: usize = restricted
                .iter()
                .map(|q| q.matches("'0014M000000").count())
                .sum();
            assert_eq!(named, 1_500);
        }
        assert!(
            restricted_queries("SELECT Id FROM Account WHERE Name != ''", &[], &endpoint())
                .is_empty()
        );
    }

    #[test]
    fn change_queries_name_checked_objects_and_an_unquoted_datetime() {
        let since = DateTime::parse_from_rfc3339("2026-12-06T05:55:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let subscription = ApiName::parse("Zuora__Subscription__c").unwrap();
        let lookup = ApiName::parse("Zuora__Account__c").unwrap();
        let soql = changed_query(&subscription, Some(&lookup), since);
        assert_eq!(
            soql,
            "SELECT Id, Zuora__Account__c FROM Zuora__Subscription__c \
             WHERE SystemModstamp >= 2026-12-06T05:55:00Z"
        );
        assert_valid_soql(&soql);
        let account = ApiName::parse("Account").unwrap();
        assert_valid_soql(&changed_query(&account, None, since));
        for bad in ["", "1Account", "Account WHERE", "Zuora__Account__c'", "a-b"] {
            assert!(ApiName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stored_rows_past_the_horizon_drop_out_as_the_query_would_drop_them() {
        let mut record = serde_json::json!({
            "Id": "0014M00001sDiGEQA0",
            "Zuora__Subscriptions__r": {"totalSize": 2, "done": true, "records": [
                {"Id": "s1", "Zuora__SubscriptionEndDate__c": "2023-06-29"},
                {"Id": "s2", "Zuora__SubscriptionEndDate__c": "2023-06-30"}]},
            "Zuora__R00N40000001lGjTEAU__r": {"totalSize": 1, "done": true, "records": [
                {"Id": "c1", "Zuora__EffectiveEndDate__c": "2024-01-01"}]},
        });
        keep_rows_in_term(&mut record, NaiveDate::from_ymd_opt(2023, 6, 30).unwrap());
        assert_eq!(
            record["Zuora__Subscriptions__r"],
            serde_json::json!({"totalSize": 1, "done": true, "records": [
                {"Id": "s2", "Zuora__SubscriptionEndDate__c": "2023-06-30"}]})
        );
        assert_eq!(record["Zuora__R00N40000001lGjTEAU__r"]["totalSize"], 1);
        let mut empty = serde_json::json!({"Id": "x", "Zuora__Subscriptions__r": null});
        keep_rows_in_term(&mut empty, NaiveDate::from_ymd_opt(2023, 6, 30).unwrap());
        assert_eq!(empty["Zuora__Subscriptions__r"], serde_json::Value::Null);
    }

    #[test]
    fn urls_are_form_encoded_exactly_once() {
        let url = endpoint().url_for("SELECT Name FROM Account WHERE Name = 'a&b'");
        assert_eq!(
            url,
            "https://gitlab.my.salesforce.com/services/data/v62.0/query?q=\
             SELECT+Name+FROM+Account+WHERE+Name+%3D+%27a%26b%27"
        );
    }
}
