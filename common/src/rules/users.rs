//! The user sync's rules (SPEC §9, seed 000): which Zendesk users the sync owns, Salesforce
//! contacts → the end-users they should be, and which emails are left alone.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::account_mapping::{lookup_text, record_fields, text};
use crate::model::instance::field;
use crate::model::{
    AmbiguousEmail, Contact, DesiredUser, ForeignRecord, HeldContact, Instance, RejectedRecord,
    SalesforceContacts, SalesforceId, ZendeskUser, ZendeskUsers, email_key,
};

/// Users the sync never touches: staff (their email domain is protected) and listed emails.
#[derive(Debug, Clone, Default)]
pub struct Protection {
    domains: BTreeSet<String>,
    emails: BTreeSet<String>,
}

impl Protection {
    pub fn new<'a>(
        domains: impl IntoIterator<Item = &'a String>,
        emails: impl IntoIterator<Item = &'a String>,
    ) -> Protection {
        let normal = |s: &String| s.trim().trim_start_matches('@').to_lowercase();
        Protection {
            domains: domains
                .into_iter()
                .map(normal)
                .filter(|d| !d.is_empty())
                .collect(),
            emails: emails.into_iter().filter_map(|e| email_key(e)).collect(),
        }
    }

    /// `email` is a lower-cased key. A domain protects exactly that domain (`gitlab.com`, not
    /// `gitlab.com.example`).
    pub fn is_protected(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain);
        self.emails.contains(email) || self.domains.contains(domain)
    }
}

/// SPEC §9: the user sync owns the end-users of the instance whose email is not protected.
/// Everyone else (agents, admins, protected users) is kept only as a [`ForeignRecord`], so no
/// contact is ever created over them.
pub fn owned_users(
    instance: Instance,
    users: Vec<ZendeskUser>,
    protection: &Protection,
) -> ZendeskUsers {
    let mut gathered = ZendeskUsers {
        instance,
        users: Vec::new(),
        others: Vec::new(),
        protected: 0,
        not_end_users: 0,
    };
    for user in users {
        let protected = user
            .email_key()
            .is_some_and(|email| protection.is_protected(&email));
        if protected {
            gathered.protected += 1;
        } else if !user.is_end_user() {
            gathered.not_end_users += 1;
        } else {
            gathered.users.push(user);
            continue;
        }
        gathered.others.push(ForeignRecord {
            id: user.id,
            name: user.name.clone(),
            key: user.email_key(),
        });
    }
    gathered
}

/// One record of the contact query, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub name: Option<String>,
    /// Lower-cased; `None` when Salesforce sent none (the contact is dropped).
    pub email: Option<String>,
    pub account: SalesforceId,
}

/// Reads one record of the contact query (`Name`, `Email`, `Account.Account_ID_18__c`).
pub fn map_contact(record: &Value) -> Result<ContactRecord, RejectedRecord> {
    let fields = record_fields(record)?;
    contact_fields(fields).map_err(|reason| RejectedRecord {
        salesforce_id: lookup_text(fields, "Account", "Account_ID_18__c")
            .ok()
            .flatten(),
        name: text(fields, "Name").ok().flatten().map(str::to_owned),
        reason,
    })
}

fn contact_fields(record: &Map<String, Value>) -> Result<ContactRecord, String> {
    let account = lookup_text(record, "Account", "Account_ID_18__c")?
        .ok_or("Account.Account_ID_18__c is missing")?;
    let account = SalesforceId::parse(account.trim())
        .map_err(|e| format!("Account.Account_ID_18__c: {e}"))?;
    Ok(ContactRecord {
        name: text(record, "Name")?
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        email: text(record, "Email")?.and_then(email_key),
        account,
    })
}

/// The contacts artifact from every record of the contact queries (SPEC §9):
/// - contacts without an email are dropped and counted, protected emails likewise;
/// - an email held by two or more contacts (case-insensitive) is ambiguous: no contact of it
///   is kept, and its user is neither created, moved nor marked;
/// - each remaining contact goes to the US Gov org of its account (`orgs`: Salesforce id →
///   the ids of the US Gov orgs carrying it); an account with several orgs holds its contacts.
pub fn collect_contacts(
    mapped: Vec<Result<ContactRecord, RejectedRecord>>,
    orgs: &BTreeMap<SalesforceId, Vec<u64>>,
    protection: &Protection,
) -> SalesforceContacts {
    let mut contacts = SalesforceContacts::default();
    let mut by_email: BTreeMap<String, Vec<ContactRecord>> = BTreeMap::new();
    for result in mapped {
        let record = match result {
            Ok(record) => record,
            Err(rejected) => {
                contacts.rejected.push(rejected);
                continue;
            }
        };
        match &record.email {
            None => contacts.without_email += 1,
            Some(email) if protection.is_protected(email) => contacts.protected += 1,
            Some(email) => by_email.entry(email.clone()).or_default().push(record),
        }
    }
    for (email, mut records) in by_email {
        if records.len() > 1 {
            contacts.ambiguous_emails.push(AmbiguousEmail {
                email,
                salesforce_ids: records.into_iter().map(|r| r.account).collect(),
            });
            continue;
        }
        let record = records.pop().expect("every email has a contact");
        let held = |reason: String| HeldContact {
            email: email.clone(),
            salesforce_id: Some(record.account.clone()),
            reason,
        };
        match orgs.get(&record.account).map(Vec::as_slice) {
            Some([organization_id]) => contacts.contacts.push(Contact {
                name: record.name.clone().unwrap_or_else(|| email.clone()),
                email: email.clone(),
                salesforce_id: record.account.clone(),
                organization_id: *organization_id,
            }),
            Some(several) if several.len() > 1 => contacts.held.push(held(format!(
                "account {} is on {} US Gov organizations ({})",
                record.account,
                several.len(),
                several
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            _ => contacts.held.push(held(format!(
                "account {} has no US Gov organization",
                record.account
            ))),
        }
    }
    contacts
}

/// The end-user each contact should be: in the org of its account, not flagged `not_in_sfdc`.
pub fn desired_users(contacts: &SalesforceContacts) -> Vec<DesiredUser> {
    contacts
        .contacts
        .iter()
        .map(|c| {
            let mut user_fields = Map::new();
            user_fields.insert(field::NOT_IN_SFDC.into(), false.into());
            DesiredUser {
                name: c.name.clone(),
                email: c.email.clone(),
                organization_id: c.organization_id,
                salesforce_id: c.salesforce_id.clone(),
                user_fields,
            }
        })
        .collect()
}

/// Emails whose users are left exactly as they are: ambiguous, held, or of a contact record
/// that could not be read (its user must not be marked for a data glitch).
pub fn held_emails(contacts: &SalesforceContacts) -> BTreeSet<String> {
    contacts
        .ambiguous_emails
        .iter()
        .map(|a| a.email.clone())
        .chain(contacts.held.iter().map(|h| h.email.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACME: &str = "0011U00000V0tkDQAR";
    const BETA: &str = "001D000000IRFmaIAH";
    const TWIN: &str = "0013l00002PMMqSAAX";

    fn id(s: &str) -> SalesforceId {
        SalesforceId::parse(s).unwrap()
    }

    fn record(name: &str, email: Value, account: &str) -> Value {
        json!({"attributes": {"type": "Contact"}, "Name": name, "Email": email,
               "Account": {"attributes": {"type": "Account"}, "Account_ID_18__c": account}})
    }

    fn protection() -> Protection {
        Protection::new(
            &["gitlab.com".to_owned()],
            &["Ops@Partner.example".to_owned()],
        )
    }

    fn orgs() -> BTreeMap<SalesforceId, Vec<u64>> {
        BTreeMap::from([
            (id(ACME), vec![10]),
            (id(BETA), vec![20]),
            (id(TWIN), vec![30, 31]),
        ])
    }

    fn collect(records: &[Value]) -> SalesforceContacts {
        collect_contacts(
            records.iter().map(map_contact).collect(),
            &orgs(),
            &protection(),
        )
    }

    #[test]
    fn contacts_go_to_the_org_of_their_account_keyed_on_the_lower_cased_email() {
        let contacts = collect(&[record(" Ana Silva ", json!("Ana.Silva@Acme.example"), ACME)]);
        assert_eq!(
            contacts.contacts,
            vec![Contact {
                name: "Ana Silva".into(),
                email: "ana.silva@acme.example".into(),
                salesforce_id: id(ACME),
                organization_id: 10
            }]
        );
        let desired = desired_users(&contacts);
        assert_eq!(
            desired[0].user_fields,
            json!({"not_in_sfdc": false}).as_object().cloned().unwrap()
        );
    }

    #[test]
    fn an_email_on_two_contacts_in_any_case_is_ambiguous_and_held() {
        let contacts = collect(&[
            record("Pat Lee", json!("Pat.Lee@shared.example"), ACME),
            record("Pat Lee", json!("pat.lee@shared.example"), BETA),
            record("Solo", json!("solo@acme.example"), ACME),
        ]);
        assert_eq!(contacts.contacts.len(), 1);
        assert_eq!(contacts.ambiguous_emails.len(), 1);
        assert_eq!(contacts.ambiguous_emails[0].email, "pat.lee@shared.example");
        assert_eq!(
            contacts.ambiguous_emails[0].salesforce_ids,
            vec![id(ACME), id(BETA)]
        );
        assert!(held_emails(&contacts).contains("pat.lee@shared.example"));
    }

    #[test]
    fn contacts_without_email_or_with_a_protected_one_are_dropped_and_counted() {
        let contacts = collect(&[
            record("No Mail", json!(null), ACME),
            record("Blank", json!("  "), ACME),
            record("Staff", json!("someone@GitLab.com"), ACME),
            record("Listed", json!("ops@partner.example"), ACME),
            record("Lookalike", json!("x@gitlab.com.example"), ACME),
        ]);
        assert_eq!(contacts.without_email, 2);
        assert_eq!(contacts.protected, 2);
        assert_eq!(
            contacts.contacts.len(),
            1,
            "only the exact domain is protected"
        );
    }

    #[test]
    fn an_account_on_two_orgs_holds_its_contacts_and_bad_records_are_rejected() {
        let contacts = collect(&[
            record("Twin", json!("twin@twin.example"), TWIN),
            record("Bad", json!("bad@x.example"), "not-an-id"),
            json!(["not", "a", "record"]),
        ]);
        assert!(contacts.contacts.is_empty());
        assert_eq!(contacts.held.len(), 1);
        assert!(contacts.held[0].reason.contains("2 US Gov organizations"));
        assert_eq!(contacts.rejected.len(), 2);
        assert!(
            contacts.rejected[0]
                .reason
                .contains("Account.Account_ID_18__c")
        );
    }

    fn user(id: u64, email: &str, role: &str) -> ZendeskUser {
        ZendeskUser::from_api(
            json!({"id": id, "name": format!("User {id}"), "email": email, "role": role})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_sync_owns_unprotected_end_users_and_keeps_the_others_foreign() {
        let gathered = owned_users(
            Instance::Usgov,
            vec![
                user(1, "customer@acme.example", "end-user"),
                user(2, "agent@acme.example", "agent"),
                user(3, "staff@gitlab.com", "end-user"),
                user(4, "admin@gitlab.com", "admin"),
            ],
            &protection(),
        );
        assert_eq!(
            gathered.users.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!((gathered.protected, gathered.not_end_users), (2, 1));
        let foreign: Vec<_> = gathered
            .others
            .iter()
            .map(|o| o.key.as_deref().unwrap())
            .collect();
        assert_eq!(
            foreign,
            vec!["agent@acme.example", "staff@gitlab.com", "admin@gitlab.com"]
        );
    }
}
