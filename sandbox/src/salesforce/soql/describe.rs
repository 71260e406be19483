//! What the emulated org's objects look like (Salesforce's "describe"): which fields, lookups
//! and child relationships each object has, so a query naming anything else fails with
//! `INVALID_FIELD` / `INVALID_TYPE` as it would in a real org.
//!
//! Two sources are merged: a built-in describe of the objects and fields the sync's queries
//! use (so those queries are valid even against an empty fixture, as they are against the real
//! org), and every key found in the fixture's records (so a fixture may add fields freely).
//! Names are matched case-insensitively, as SOQL does, and reported in their canonical case.

use std::collections::BTreeMap;

use serde_json::Value;

/// One object's fields and relationships, keyed by lower-cased name.
#[derive(Debug, Clone, Default)]
pub struct ObjectDescribe {
    pub name: String,
    fields: BTreeMap<String, String>,
    /// Lookup (child-to-parent) relationship name → (canonical name, target object).
    lookups: BTreeMap<String, (String, String)>,
    /// Child relationship name → (canonical name, child object).
    children: BTreeMap<String, (String, String)>,
}

impl ObjectDescribe {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The canonical relationship name and the object it points to.
    pub fn lookup(&self, name: &str) -> Option<(&str, &str)> {
        self.lookups
            .get(&name.to_ascii_lowercase())
            .map(|(n, t)| (n.as_str(), t.as_str()))
    }

    /// The canonical child relationship name and the child object.
    pub fn child(&self, name: &str) -> Option<(&str, &str)> {
        self.children
            .get(&name.to_ascii_lowercase())
            .map(|(n, t)| (n.as_str(), t.as_str()))
    }

    fn add_field(&mut self, name: &str) {
        let key = name.to_ascii_lowercase();
        if !self.lookups.contains_key(&key) && !self.children.contains_key(&key) {
            self.fields.entry(key).or_insert_with(|| name.to_owned());
        }
    }

    fn add_lookup(&mut self, name: &str, target: &str) {
        let key = name.to_ascii_lowercase();
        self.fields.remove(&key);
        self.lookups
            .entry(key)
            .or_insert_with(|| (name.to_owned(), target.to_owned()));
    }

    fn add_child(&mut self, name: &str, object: &str) {
        let key = name.to_ascii_lowercase();
        self.fields.remove(&key);
        self.children
            .entry(key)
            .or_insert_with(|| (name.to_owned(), object.to_owned()));
    }
}

/// The describe of every object in the emulated org.
#[derive(Debug, Clone, Default)]
pub struct Describe {
    objects: BTreeMap<String, ObjectDescribe>,
}

impl Describe {
    /// The built-in describe extended with everything the fixture's records contain.
    pub fn of_org(objects: &BTreeMap<String, Vec<Value>>) -> Self {
        let mut describe = Self::built_in();
        for (object, records) in objects {
            describe.ensure_object(object);
            for record in records {
                describe.learn_record(object, record);
            }
        }
        describe
    }

    pub fn object(&self, name: &str) -> Option<&ObjectDescribe> {
        self.objects.get(&name.to_ascii_lowercase())
    }

    fn ensure_object(&mut self, name: &str) -> &mut ObjectDescribe {
        self.objects
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| {
                let mut object = ObjectDescribe {
                    name: name.to_owned(),
                    ..ObjectDescribe::default()
                };
                // Every sObject has an Id, a last-modified stamp and a recycle-bin flag.
                object.add_field("Id");
                object.add_field("SystemModstamp");
                object.add_field("IsDeleted");
                object
            })
    }

    /// Adds the keys of one record of `object` (and of its nested lookups and children).
    fn learn_record(&mut self, object: &str, record: &Value) {
        let Some(fields) = record.as_object() else {
            return;
        };
        for (key, value) in fields {
            if key == "attributes" {
                continue;
            }
            let known = self.object(object);
            let known_child = known.and_then(|o| o.child(key)).map(|(_, c)| c.to_owned());
            let known_lookup = known.and_then(|o| o.lookup(key)).map(|(_, t)| t.to_owned());
            match value {
                Value::Array(children) => {
                    let child_object = known_child
                        .or_else(|| children.iter().find_map(declared_type))
                        .unwrap_or_else(|| derived_object_name(key));
                    self.ensure_object(object).add_child(key, &child_object);
                    self.ensure_object(&child_object);
                    for child in children {
                        self.learn_record(&child_object, child);
                    }
                }
                Value::Object(_) => {
                    let target = known_lookup
                        .or_else(|| declared_type(value))
                        .unwrap_or_else(|| derived_object_name(key));
                    self.ensure_object(object).add_lookup(key, &target);
                    self.ensure_object(&target);
                    self.learn_record(&target, value);
                }
                _ if known_lookup.is_some() || known_child.is_some() => {}
                _ => self.ensure_object(object).add_field(key),
            }
        }
    }

    /// The objects and fields the sync's three queries read (seeds 000, 001, 003), with the
    /// relationships between them as they exist in GitLab's org.
    fn built_in() -> Self {
        let mut describe = Self::default();
        describe.define(
            "Account",
            &[
                "Name",
                "Type",
                "Account_ID_18__c",
                "CARR_This_Account__c",
                "Ultimate_Parent_Sales_Segment_Employees__c",
                "Account_Owner_Calc__c",
                "Technical_Account_Manager_Name__c",
                "Restricted_Account__c",
                "Account_Demographics_Geo__c",
                "Account_Demographics_Region__c",
                "Partner_Track__c",
                "Partners_Partner_Type__c",
                "Partners_Partner_Status__c",
                "Support_Hold__c",
                "Account_Risk_Level__c",
                "Support_Instance__c",
                "MasterRecordId",
            ],
        );
        describe.define("User", &["Name", "Email"]);
        describe.define(
            "Contact",
            &[
                "Name",
                "Email",
                "AccountId",
                "Inactive_Contact__c",
                "Role__c",
                "MasterRecordId",
            ],
        );
        describe.define(
            "Zuora__Subscription__c",
            &[
                "Name",
                "Subscription_ID_18__c",
                "Zuora__Status__c",
                "Zuora__SubscriptionStartDate__c",
                "Zuora__SubscriptionEndDate__c",
                "Sold_To_Email__c",
                "Zuora__Account__c",
            ],
        );
        describe.define(
            "Zuora__SubscriptionProductCharge__c",
            &[
                "Name",
                "Zuora__SubscriptionRatePlanChargeName__c",
                "Zuora__Subscription__c",
                "Zuora__EffectiveStartDate__c",
                "Zuora__EffectiveEndDate__c",
                "Zuora__Quantity__c",
                "Subscription_Status__c",
                "Zuora__Account__c",
            ],
        );
        let account = describe.ensure_object("Account");
        account.add_lookup("Solutions_Architect_Lookup__r", "User");
        account.add_lookup("Latest_Sold_To_Contact__r", "Contact");
        account.add_child("Zuora__Subscriptions__r", "Zuora__Subscription__c");
        account.add_child(
            "Zuora__R00N40000001lGjTEAU__r",
            "Zuora__SubscriptionProductCharge__c",
        );
        account.add_child("Contacts", "Contact");
        describe
            .ensure_object("Contact")
            .add_lookup("Account", "Account");
        describe
    }

    fn define(&mut self, object: &str, fields: &[&str]) {
        let object = self.ensure_object(object);
        for field in fields {
            object.add_field(field);
        }
    }
}

/// The type a fixture record declares in its own `attributes`, if any.
fn declared_type(record: &Value) -> Option<String> {
    record
        .pointer("/attributes/type")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The object behind a relationship nobody described: custom relationships `X__r` point at
/// `X__c`; standard ones are named after their object.
fn derived_object_name(relationship: &str) -> String {
    match relationship.strip_suffix("__r") {
        Some(stem) => format!("{stem}__c"),
        None => relationship.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_built_in_describe_covers_the_sync_queries() {
        let describe = Describe::of_org(&BTreeMap::new());
        let account = describe.object("account").unwrap();
        assert_eq!(account.name, "Account");
        assert_eq!(account.field("account_id_18__c"), Some("Account_ID_18__c"));
        assert_eq!(
            account.lookup("Solutions_Architect_Lookup__r"),
            Some(("Solutions_Architect_Lookup__r", "User"))
        );
        assert_eq!(
            account.child("zuora__r00n40000001lgjteau__r"),
            Some((
                "Zuora__R00N40000001lGjTEAU__r",
                "Zuora__SubscriptionProductCharge__c"
            ))
        );
        assert_eq!(account.field("Nope__c"), None);
        for object in ["Account", "Contact", "User", "Zuora__Subscription__c"] {
            let object = describe.object(object).unwrap();
            for field in ["Id", "SystemModstamp", "IsDeleted"] {
                assert_eq!(object.field(field), Some(field), "{}", object.name);
            }
        }
        assert_eq!(account.field("masterrecordid"), Some("MasterRecordId"));
        for object in [
            "Zuora__Subscription__c",
            "Zuora__SubscriptionProductCharge__c",
        ] {
            assert_eq!(
                describe.object(object).unwrap().field("Zuora__Account__c"),
                Some("Zuora__Account__c")
            );
        }
    }

    #[test]
    fn fixture_records_add_fields_lookups_and_children() {
        let objects = BTreeMap::from([(
            "Widget__c".to_owned(),
            vec![json!({
                "Colour__c": "red",
                "Maker__r": {"Name": "Acme", "Founded__c": 1901},
                "Parts__r": [{"attributes": {"type": "Part__c"}, "Size__c": 3}],
                "Empty__r": null
            })],
        )]);
        let describe = Describe::of_org(&objects);
        let widget = describe.object("Widget__c").unwrap();
        assert_eq!(widget.field("colour__c"), Some("Colour__c"));
        assert_eq!(widget.field("Id"), Some("Id"));
        assert_eq!(widget.lookup("Maker__r"), Some(("Maker__r", "Maker__c")));
        assert_eq!(widget.child("Parts__r"), Some(("Parts__r", "Part__c")));
        assert_eq!(
            describe.object("Maker__c").unwrap().field("Founded__c"),
            Some("Founded__c")
        );
        assert_eq!(
            describe.object("Part__c").unwrap().field("Size__c"),
            Some("Size__c")
        );
    }
}
