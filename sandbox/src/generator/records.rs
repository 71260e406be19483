//! The Salesforce records the generator makes, and their SObject JSON.

use chrono::NaiveDate;
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AccountType {
    Customer,
    FormerCustomer,
    Partner,
    Prospect,
}

impl AccountType {
    fn as_str(&self) -> &'static str {
        match self {
            AccountType::Customer => "Customer",
            AccountType::FormerCustomer => "Former Customer",
            AccountType::Partner => "Partner",
            AccountType::Prospect => "Prospect",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub id: String,
    pub name: String,
    pub account_type: AccountType,
    pub arr: Option<f64>,
    pub segment: Option<&'static str>,
    pub owner: String,
    pub technical_account_manager: Option<String>,
    pub solutions_architect: Option<String>,
    pub geo: Option<&'static str>,
    pub region: Option<&'static str>,
    pub restricted: Option<&'static str>,
    pub risk: Option<&'static str>,
    pub support_hold: Option<bool>,
    pub support_instance: Option<&'static str>,
    pub partner_track: Option<&'static str>,
    pub partner_type: Option<&'static str>,
    pub partner_status: Option<&'static str>,
    pub sold_to: Option<(String, String)>,
    pub subscriptions: Vec<Subscription>,
    pub domain: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    pub id: String,
    pub name: String,
    pub status: &'static str,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub sold_to_email: Option<String>,
    pub charges: Vec<Charge>,
}

#[derive(Clone, Debug)]
pub(crate) struct Charge {
    pub id: String,
    pub name: String,
    pub charge_name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub quantity: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct Contact {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub inactive: bool,
    pub roles: &'static str,
    pub account_id: String,
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

impl Account {
    pub(crate) fn charges(&self) -> impl Iterator<Item = &Charge> {
        self.subscriptions.iter().flat_map(|s| &s.charges)
    }

    pub(crate) fn to_json(&self) -> Value {
        let subscriptions: Vec<Value> = self
            .subscriptions
            .iter()
            .map(|s| {
                json!({
                    "Id": s.id,
                    "Name": s.name,
                    "Subscription_ID_18__c": s.id,
                    "Zuora__Status__c": s.status,
                    "Zuora__SubscriptionStartDate__c": date(s.start),
                    "Zuora__SubscriptionEndDate__c": date(s.end),
                    "Sold_To_Email__c": s.sold_to_email,
                })
            })
            .collect();
        let charges: Vec<Value> = self
            .subscriptions
            .iter()
            .flat_map(|s| {
                s.charges.iter().map(move |c| {
                    json!({
                        "Id": c.id,
                        "Name": c.name,
                        "Zuora__SubscriptionRatePlanChargeName__c": c.charge_name,
                        "Zuora__Subscription__c": s.id,
                        "Zuora__EffectiveStartDate__c": date(c.start),
                        "Zuora__EffectiveEndDate__c": date(c.end),
                        "Zuora__Quantity__c": c.quantity,
                        "Subscription_Status__c": s.status,
                    })
                })
            })
            .collect();
        json!({
            "Id": self.id,
            "Account_ID_18__c": self.id,
            "Name": self.name,
            "CARR_This_Account__c": self.arr,
            "Type": self.account_type.as_str(),
            "Ultimate_Parent_Sales_Segment_Employees__c": self.segment,
            "Account_Owner_Calc__c": self.owner,
            "Technical_Account_Manager_Name__c": self.technical_account_manager,
            "Restricted_Account__c": self.restricted,
            "Solutions_Architect_Lookup__r": self.solutions_architect.as_ref().map(|name| json!({"Name": name})),
            "Account_Demographics_Geo__c": self.geo,
            "Account_Demographics_Region__c": self.region,
            "Latest_Sold_To_Contact__r": self.sold_to.as_ref().map(|(name, email)| json!({"Name": name, "Email": email})),
            "Partner_Track__c": self.partner_track,
            "Partners_Partner_Type__c": self.partner_type,
            "Partners_Partner_Status__c": self.partner_status,
            "Support_Hold__c": self.support_hold,
            "Account_Risk_Level__c": self.risk,
            "Support_Instance__c": self.support_instance,
            "Zuora__Subscriptions__r": subscriptions,
            "Zuora__R00N40000001lGjTEAU__r": charges,
        })
    }
}

impl Contact {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "Id": self.id,
            "Name": self.name,
            "Email": self.email,
            "Inactive_Contact__c": self.inactive,
            "Role__c": self.roles,
            "AccountId": self.account_id,
            "Account": {"Account_ID_18__c": self.account_id},
        })
    }
}
