//! The partner sync's rules (SPEC §9, seed 003): a record of the partner query → a partner
//! account → the Global partner organization it should have.

use serde_json::{Map, Value};

use super::account_mapping::{
    account_id, account_name, checkbox, lookup_text, record_fields, reject_shared_ids, rejection,
    text,
};
use crate::model::instance::{PARTNER_FIELD_KEYS, field};
use crate::model::{
    DesiredOrg, PartnerAccount, PartnerAccounts, PartnerType, RejectedRecord, SalesforceId,
};

const RESTRICTED_PARTY: &str = "Restricted Party";
const ESCALATED_RISK: &str = "At Risk - Escalated";

/// Maps every record of the partner query. Records sharing one id are all rejected (and so
/// their org is held), as for customer accounts.
pub fn map_partners(records: &[Value], alliance_id: &SalesforceId) -> PartnerAccounts {
    let mapped = records
        .iter()
        .map(|r| map_partner(r, alliance_id))
        .collect();
    let (accounts, rejected) = reject_shared_ids(mapped, |a| &a.salesforce_id, |a| a.name);
    PartnerAccounts { accounts, rejected }
}

/// One partner record, or why it cannot be synced: an account that is neither the alliance
/// account nor on the Open or Select track gets no partner org.
pub fn map_partner(
    record: &Value,
    alliance_id: &SalesforceId,
) -> Result<PartnerAccount, RejectedRecord> {
    let fields = record_fields(record)?;
    partner_fields(fields, alliance_id).map_err(|reason| rejection(fields, reason))
}

fn partner_fields(
    record: &Map<String, Value>,
    alliance_id: &SalesforceId,
) -> Result<PartnerAccount, String> {
    let salesforce_id = account_id(record)?;
    let track = text(record, "Partner_Track__c")?.map(str::trim);
    let account_type = partner_type(&salesforce_id, alliance_id, track).ok_or_else(|| {
        format!(
            "not a partner the sync knows: Partner_Track__c is {} (expected Open or Select) and the account is not the alliance partner {alliance_id}",
            track.map_or("empty".to_owned(), |t| format!("{t:?}"))
        )
    })?;
    Ok(PartnerAccount {
        name: account_name(record)?,
        account_type,
        account_owner: text(record, "Account_Owner_Calc__c")?.map(str::to_owned),
        technical_account_manager: text(record, "Technical_Account_Manager_Name__c")?
            .map(str::to_owned),
        solutions_architect: lookup_text(record, "Solutions_Architect_Lookup__r", "Name")?,
        restricted: text(record, "Restricted_Account__c")?
            .is_some_and(|v| v.trim() == RESTRICTED_PARTY),
        escalated: text(record, "Account_Risk_Level__c")?
            .is_some_and(|v| v.trim() == ESCALATED_RISK),
        support_hold: checkbox(record, "Support_Hold__c")?,
        salesforce_id,
    })
}

/// SPEC §9: the alliance account is `alliance_partner` whatever its track; otherwise the track
/// decides (`Open`, `Select`, as Salesforce spells the picklist values).
pub fn partner_type(
    id: &SalesforceId,
    alliance_id: &SalesforceId,
    track: Option<&str>,
) -> Option<PartnerType> {
    if id == alliance_id {
        return Some(PartnerType::AlliancePartner);
    }
    match track {
        Some("Open") => Some(PartnerType::OpenPartner),
        Some("Select") => Some(PartnerType::SelectPartner),
        _ => None,
    }
}

/// The Global partner organization a partner account should have: exactly the fields of
/// SPEC §9 ([`PARTNER_FIELD_KEYS`]), and `mark_for_deletion: false` so a returning partner is
/// un-marked.
pub fn partner_object(account: &PartnerAccount) -> DesiredOrg {
    let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
    let mut fields = Map::new();
    for key in PARTNER_FIELD_KEYS {
        let value = match *key {
            field::SALESFORCE_ID => account.salesforce_id.as_str().into(),
            field::SFDC_SHORT_ID => account.salesforce_id.short().into(),
            field::ACCOUNT_TYPE => account.account_type.as_str().into(),
            field::ACCOUNT_OWNER => text(&account.account_owner),
            field::TECHNICAL_ACCOUNT_MANAGER => text(&account.technical_account_manager),
            field::SOLUTIONS_ARCHITECT => text(&account.solutions_architect),
            field::RESTRICTED_ACCOUNT => account.restricted.into(),
            field::ORG_IN_ESCALATED_STATE => account.escalated.into(),
            field::SUPPORT_HOLD => account.support_hold.into(),
            field::MARK_FOR_DELETION => false.into(),
            other => unreachable!("PARTNER_FIELD_KEYS has {other}, which partner_object lacks"),
        };
        fields.insert((*key).to_owned(), value);
    }
    DesiredOrg {
        salesforce_id: account.salesforce_id.clone(),
        name: account.name.clone(),
        organization_fields: fields,
        sold_tos: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALLIANCE: &str = "0014M00001sDiGEQA0";
    const OTHER: &str = "0011U00000V0tkDQAR";

    fn alliance() -> SalesforceId {
        SalesforceId::parse(ALLIANCE).unwrap()
    }

    /// A record shaped as the partner query returns it.
    fn record(id: &str, track: Value) -> Value {
        json!({
            "attributes": {"type": "Account", "url": format!("/services/data/v62.0/sobjects/Account/{id}")},
            "Account_ID_18__c": id, "Name": " Partner Co ", "Account_Owner_Calc__c": "Sam Owner",
            "Technical_Account_Manager_Name__c": null, "Restricted_Account__c": "Restricted Party",
            "Solutions_Architect_Lookup__r": {"attributes": {"type": "User"}, "Name": "Kim SA"},
            "Partner_Track__c": track, "Support_Hold__c": null,
            "Account_Risk_Level__c": "At Risk - Escalated", "Type": "Partner",
            "Partners_Partner_Status__c": "Authorized"
        })
    }

    #[test]
    fn the_track_or_the_alliance_id_gives_the_type() {
        for (id, track, expected) in [
            (OTHER, json!("Open"), PartnerType::OpenPartner),
            (OTHER, json!("Select"), PartnerType::SelectPartner),
            (ALLIANCE, json!(null), PartnerType::AlliancePartner),
            (ALLIANCE, json!("Open"), PartnerType::AlliancePartner),
        ] {
            let account = map_partner(&record(id, track), &alliance()).unwrap();
            assert_eq!(account.account_type, expected);
        }
        let account = map_partner(&record(OTHER, json!("Open")), &alliance()).unwrap();
        assert_eq!(account.name, "Partner Co");
        assert!(account.restricted && account.escalated && !account.support_hold);
        assert_eq!(account.solutions_architect.as_deref(), Some("Kim SA"));
    }

    #[test]
    fn a_record_of_no_known_partner_type_is_rejected_with_the_reason() {
        for track in [json!("Technology"), json!(null), json!("open")] {
            let rejected = map_partner(&record(OTHER, track.clone()), &alliance()).unwrap_err();
            assert_eq!(rejected.valid_id().unwrap().as_str(), OTHER, "{track}");
            assert!(
                rejected.reason.contains("Partner_Track__c"),
                "{}",
                rejected.reason
            );
        }
        let mut bad_id = record("0011U' OR '1'='1", json!("Open"));
        bad_id["Name"] = json!("x");
        let rejected = map_partner(&bad_id, &alliance()).unwrap_err();
        assert!(rejected.reason.contains("Account_ID_18__c"));
        assert_eq!(rejected.valid_id(), None);
    }

    #[test]
    fn records_sharing_an_id_are_all_rejected() {
        let records = [
            record(OTHER, json!("Open")),
            record(OTHER, json!("Select")),
            record(ALLIANCE, json!(null)),
        ];
        let partners = map_partners(&records, &alliance());
        assert_eq!(partners.accounts.len(), 1);
        assert_eq!(partners.rejected.len(), 2);
        assert!(partners.rejected[0].reason.contains("2 records"));
    }

    #[test]
    fn the_partner_object_has_exactly_the_partner_fields() {
        let account = map_partner(&record(OTHER, json!("Select")), &alliance()).unwrap();
        let object = partner_object(&account);
        let keys: Vec<&str> = object
            .organization_fields
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, PARTNER_FIELD_KEYS);
        assert_eq!(
            object.organization_fields["account_type"],
            json!("select_partner")
        );
        assert_eq!(
            object.organization_fields["sfdc_short_id"],
            json!(&OTHER[..15])
        );
        assert_eq!(
            object.organization_fields["mark_for_deletion"],
            json!(false)
        );
        assert_eq!(
            object.organization_fields["technical_account_manager"],
            json!(null)
        );
        assert!(object.sold_tos.is_empty());
    }
}
