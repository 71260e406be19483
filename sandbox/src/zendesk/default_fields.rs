//! The custom fields an instance has when the fixture does not list them: the keys zdsync
//! writes (SPEC §6) and the agent-owned ones it must never touch.

use crate::fixture::{FieldDefinition, FieldType};
use crate::instance::ZendeskInstance;

pub(crate) const GLOBAL_FLAGS: &[&str] = &[
    "sub_edu",
    "sub_oss",
    "sub_community_other",
    "sub_consumption_cicd_minutes",
    "sub_consumption_eap",
    "sub_consumption_duo_enterprise",
    "sub_consumption_duo_amazon_q",
    "sub_consumption_duo_premium",
    "sub_consumption_storage",
    "sub_dotcom_premium",
    "sub_dotcom_ultimate",
    "sub_gitlab_dedicated",
    "sub_sm_premium",
    "sub_sm_ultimate",
    "sub_ss_ase",
    "sub_ss_growth",
    "sub_ss_enterprise",
];

pub(crate) const USGOV_FLAGS: &[&str] = &[
    "sub_consumption_duo_enterprise",
    "sub_consumption_duo_amazon_q",
    "sub_consumption_duo_premium",
    "sub_gitlab_dedicated",
    "sub_sm_premium",
    "sub_sm_ultimate",
    "sub_ss_ase",
    "sub_usgov_12x5",
    "sub_usgov_24x7",
];

/// The `support_level` tags, highest first as SPEC §5.3 ranks them; `expired` last.
pub(crate) const SUPPORT_LEVELS: &[&str] = &[
    "ultimate",
    "gold",
    "premium",
    "silver",
    "consumption_only",
    "custom",
    "community",
    "expired",
];

pub(crate) const ACCOUNT_TYPES: &[&str] = &[
    "customer",
    "former_customer",
    "alliance_partner",
    "open_partner",
    "select_partner",
];

pub(crate) fn organization_fields(instance: ZendeskInstance) -> Vec<FieldDefinition> {
    let text = |key| FieldDefinition::new(key, FieldType::Text);
    let checkbox = |key| FieldDefinition::new(key, FieldType::Checkbox);
    let mut fields = vec![
        text("salesforce_id"),
        text("sfdc_short_id"),
        text("account_owner"),
        text("technical_account_manager"),
        text("solutions_architect"),
    ];
    match instance {
        ZendeskInstance::Global => {
            fields.push(FieldDefinition::new("aar", FieldType::Decimal));
            fields.push(text("sales_segmentation"));
            fields.push(FieldDefinition::dropdown(
                "org_region",
                &["amer", "apj", "emea"],
            ));
        }
        ZendeskInstance::Usgov => {
            fields.push(FieldDefinition::new("arr", FieldType::Decimal));
            fields.push(text("market_segment"));
        }
    }
    fields.extend([
        checkbox("restricted_account"),
        checkbox("org_in_escalated_state"),
        checkbox("support_hold"),
        FieldDefinition::dropdown("account_type", ACCOUNT_TYPES),
        FieldDefinition::dropdown("support_level", SUPPORT_LEVELS),
        FieldDefinition::new("expiration_date", FieldType::Date),
    ]);
    match instance {
        ZendeskInstance::Global => {
            fields.push(FieldDefinition::new("seats_decimal", FieldType::Decimal));
            fields.extend(GLOBAL_FLAGS.iter().map(|flag| checkbox(flag)));
        }
        ZendeskInstance::Usgov => {
            fields.push(FieldDefinition::new("number_of_seats", FieldType::Integer));
            fields.push(checkbox("emergency_support_24x7"));
            fields.extend(USGOV_FLAGS.iter().map(|flag| checkbox(flag)));
        }
    }
    fields.push(checkbox("mark_for_deletion"));
    // Owned by agents and the deletion job; the sync must leave them alone.
    fields.extend([
        text("am_project_id"),
        text("assigned_se"),
        checkbox("ignore_deletion"),
        checkbox("migrating"),
    ]);
    fields
}

pub(crate) fn user_fields() -> Vec<FieldDefinition> {
    vec![FieldDefinition::new("not_in_sfdc", FieldType::Checkbox)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zendesk::fields::FieldSet;

    #[test]
    fn defaults_are_valid_field_sets_with_instance_specific_keys() {
        let global = FieldSet::new(organization_fields(ZendeskInstance::Global)).expect("valid");
        let usgov = FieldSet::new(organization_fields(ZendeskInstance::Usgov)).expect("valid");
        let keys = |set: &FieldSet| {
            set.definitions()
                .iter()
                .map(|d| d.key.clone())
                .collect::<Vec<_>>()
        };
        assert!(keys(&global).contains(&"org_region".to_owned()));
        assert!(!keys(&usgov).contains(&"org_region".to_owned()));
        assert!(keys(&usgov).contains(&"emergency_support_24x7".to_owned()));
        assert!(keys(&global).contains(&"am_project_id".to_owned()));
    }
}
